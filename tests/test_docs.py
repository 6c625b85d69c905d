"""The documentation builds with Sphinx, warning-free (``-W``), from the docstrings as they are.

A broken cross-reference, a malformed numpydoc section or a docstring that no
longer parses fails here, not on the documentation site. The benchmark pages
show the tables the scripts last wrote, and the links of the README and those
pages lead to files that exist.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = DOCS / "benchmarks"

# the benchmark pages are Markdown, read by myst-parser
_MISSING = [name for name in ("sphinx", "numpydoc", "myst_parser")
            if importlib.util.find_spec(name) is None]
needs_sphinx = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"building the docs needs {', '.join(_MISSING)}: pip install -e '.[docs]'",
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


@needs_sphinx
def test_docs_build_without_warnings(html):
    pages = ["index", "getting_started", "user_guide/index", "user_guide/training",
             "user_guide/model_selection", "examples", "benchmarks", "changelog", "license",
             "api/index", "api/skderm", "api/metrics",
             *(f"benchmarks/{p.stem}" for p in sorted(PAGES.glob("*.md")))]
    missing = [p for p in pages if not (html / f"{p}.html").is_file()]
    assert not missing, f"pages not built: {missing}"


@needs_sphinx
def test_api_reference_documents_the_public_api_from_docstrings(html):
    api = (html / "api" / "skderm.html").read_text(encoding="utf-8")
    # rendered from the docstrings: a parameter of LesionClassifier, the samplers'
    # inherited fit_resample, the signature of load_ham10000
    for expected in ('id="skderm.LesionClassifier"', "freeze_until",
                     'id="skderm.LesionClassifier.fit"',
                     'id="skderm.OverRateSampler.fit_resample"', 'id="skderm.load_ham10000"'):
        assert expected in api, f"{expected!r} not in api/skderm.html"
    # only LesionClassifier's own members: skorch's inherited, non-numpydoc ones stay out
    assert 'id="skderm.LesionClassifier.initialize_module"' not in api
    assert 'id="skderm.LesionClassifier.get_loss"' not in api


@needs_sphinx
def test_user_guide_links_resolve_to_the_api_reference(html):
    guide = (html / "user_guide" / "model_selection.html").read_text(encoding="utf-8")
    assert "../api/model_selection.html#skderm.model_selection.check_lesion_cv" in guide
    assert "../api/skderm.html#skderm.lesion_train_test_split" in guide


# -- the benchmark pages and the links (no Sphinx needed) ---------------------

_COPIED = re.compile(r"<!-- copied from (\S+): update both together -->")


def test_every_benchmark_script_has_a_page_in_the_benchmarks_toctree():
    scripts = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py"))
    pages = sorted(p.stem for p in PAGES.glob("*.md"))
    assert pages == scripts, "one page in docs/benchmarks/ per script in benchmarks/"
    index = (DOCS / "benchmarks.rst").read_text(encoding="utf-8")
    missing = [p for p in pages if f"benchmarks/{p}\n" not in index]
    assert not missing, f"pages not in docs/benchmarks.rst's toctree: {missing}"


@pytest.mark.parametrize("page", sorted(PAGES.glob("*.md")), ids=lambda p: p.stem)
def test_benchmark_page_shows_the_current_results_table(page):
    """Each table a page copies from benchmarks/results/ is the one the script last wrote."""
    text = page.read_text(encoding="utf-8")
    sources = _COPIED.findall(text)
    assert sources, f"{page.name} shows no table from benchmarks/results/"
    for source in sources:
        rows = [line for line in (ROOT / source).read_text(encoding="utf-8").splitlines()
                if line.startswith("|")]
        assert rows, f"{source} has no table"
        stale = [row for row in rows if row not in text]
        assert not stale, f"{page.name} does not show these rows of {source}: {stale[:3]}"


_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", ["README.md", "benchmarks/README.md",
                                 *(f"docs/benchmarks/{p.name}" for p in sorted(PAGES.glob("*.md")))])
def test_relative_links_lead_to_files_that_exist(doc):
    path = ROOT / doc
    targets = [t for t in _LINK.findall(path.read_text(encoding="utf-8")) if "://" not in t]
    broken = [t for t in targets if not (path.parent / t).exists()]
    assert not broken, f"{doc} links to missing files: {broken}"


def test_readme_carries_the_test_command_that_ci_runs():
    """.ci/run runs the README's test command verbatim: the two must not drift apart."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    marker = next(i for i, line in enumerate(ci) if line.startswith("# ---") and "verbatim" in line)
    command = ci[marker + 1].strip()
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert command in (line.strip() for line in readme), f"README.md lacks {command!r}"
