"""The documentation builds with Sphinx, warning-free (``-W``), from the docstrings as they are.

A broken cross-reference, a malformed numpydoc section or a docstring that no
longer parses fails here, not on the documentation site.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

_MISSING = [name for name in ("sphinx", "numpydoc") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"building the docs needs {' and '.join(_MISSING)}: pip install -e '.[docs]'",
)


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """Build the HTML docs once into a temporary folder (never into docs/)."""
    out = tmp_path_factory.mktemp("docs")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    # one torch thread: autodoc imports torch, and the machine may be shared
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, (
        f"sphinx-build -W failed (exit {result.returncode}):\n{result.stderr[-6000:]}"
    )
    return out / "html"


def test_docs_build_without_warnings(html):
    pages = ["index", "getting_started", "user_guide/index", "user_guide/training",
             "user_guide/model_selection", "examples", "benchmarks", "changelog", "license",
             "api/index", "api/skderm", "api/metrics"]
    missing = [p for p in pages if not (html / f"{p}.html").is_file()]
    assert not missing, f"pages not built: {missing}"


def test_api_reference_documents_the_public_api_from_docstrings(html):
    api = (html / "api" / "skderm.html").read_text(encoding="utf-8")
    # rendered from the docstrings: a parameter of LesionClassifier, the samplers'
    # inherited fit_resample, the signature of load_ham10000
    for expected in ('id="skderm.LesionClassifier"', "backbone_lr",
                     'id="skderm.LesionClassifier.fit"',
                     'id="skderm.OverRateSampler.fit_resample"', 'id="skderm.load_ham10000"'):
        assert expected in api, f"{expected!r} not in api/skderm.html"
    # only LesionClassifier's own members: skorch's inherited, non-numpydoc ones stay out
    assert 'id="skderm.LesionClassifier.initialize_module"' not in api
    assert 'id="skderm.LesionClassifier.get_loss"' not in api


def test_user_guide_links_resolve_to_the_api_reference(html):
    guide = (html / "user_guide" / "model_selection.html").read_text(encoding="utf-8")
    assert "../api/model_selection.html#skderm.model_selection.check_lesion_cv" in guide
    assert "../api/skderm.html#skderm.lesion_train_test_split" in guide
