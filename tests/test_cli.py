"""The skderm command: demo end to end, backbones, one-line errors."""

import os
import re
import subprocess
import sys

import pytest

from skderm.cli import main


def _run(*args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "skderm", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_demo_on_synthetic_data_prints_scores():
    proc = _run("demo", "--n-synthetic", "150", "--folds", "2", "--epochs", "2",
                "--image-size", "48", "64", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"balanced accuracy (\d\.\d+) \+/- .*MCC (-?\d\.\d+)", proc.stdout)
    assert m, proc.stdout
    assert 0.0 <= float(m.group(1)) <= 1.0 and -1.0 <= float(m.group(2)) <= 1.0
    assert "fold" in proc.stdout


@pytest.mark.realdata
def test_demo_on_real_folder(ham10000_root):
    proc = _run("demo", "--data", str(ham10000_root), "--max-images", "300", "--folds", "2",
                "--epochs", "1", "--image-size", "48", "64", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "balanced accuracy" in proc.stdout


def test_backbones_lists_registry_and_offline_weights(capsys):
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"tf_efficientnet_lite0 .*available", out)
    assert re.search(r"resnet50 .*(available|missing)", out)
    assert "hub/checkpoints" in out


def test_errors_are_one_line_with_nonzero_exit(tmp_path, capsys):
    code = main(["demo", "--data", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("skderm: error:") and "nowhere" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_debug_shows_the_traceback(tmp_path):
    from skderm.exceptions import DatasetError

    with pytest.raises(DatasetError):
        main(["--debug", "demo", "--data", str(tmp_path / "nowhere")])


def test_version_and_help():
    proc = _run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("skderm ")
    assert _run("--help").stdout.count("demo") >= 1
