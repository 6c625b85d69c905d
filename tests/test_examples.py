"""Every example runs end to end in its quick mode (synthetic lesions)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_every_example_is_listed():
    assert set(SCRIPTS) >= {"grid_search.py", "cross_val_score.py", "features_fusion_smote.py",
                            "soft_voting_ensemble.py"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_quick(script):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick"], cwd=EXAMPLES,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.lower()
    assert "balanced accuracy" in out
