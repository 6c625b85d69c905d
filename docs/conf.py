"""Sphinx configuration of the skderm documentation.

Build it with::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

Everything here works offline: the theme is Sphinx's bundled ``alabaster``
and no intersphinx inventories are fetched.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# build from a plain checkout too (skderm's dependencies must be importable)
sys.path.insert(0, str(ROOT))

import skderm  # noqa: E402

# -- project -----------------------------------------------------------------

project = "skderm"
author = "skderm developers"
copyright = "skderm developers"
version = release = skderm.__version__

# -- extensions --------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
]

# MyST renders benchmarks/README.md inside benchmarks.rst. It is optional: without
# it that page shows the file as plain text.
HAVE_MYST = importlib.util.find_spec("myst_parser") is not None
if HAVE_MYST:
    extensions.append("myst_parser")
    # the README's relative links point at files of the repository, not at pages
    # of this site: render them as plain links instead of unresolved references
    myst_all_links_external = True

source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# -- autodoc / autosummary / numpydoc ----------------------------------------

# Every object page is written by hand in api/*.rst; autosummary only draws the
# summary tables, so no stub files are generated into the source tree.
autosummary_generate = False
autodoc_typehints = "none"  # types are in the numpydoc "Parameters" sections
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False
autoclass_content = "class"

# Members are listed explicitly on each class (LesionClassifier inherits dozens
# of skorch methods whose docstrings are not numpydoc).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- HTML --------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"skderm {release}"
html_theme_options = {
    "description": "scikit-learn compatible classifiers for dermatoscopic lesion images",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
    "show_relbars": True,
}
html_sidebars = {
    "**": ["about.html", "navigation.html", "relations.html", "searchbox.html"],
}
html_show_sourcelink = False

# -- the benchmarks page -----------------------------------------------------

BENCHMARKS_README = ROOT / "benchmarks" / "README.md"


def _benchmarks_results(app, docname, source):
    """Append benchmarks/README.md to the benchmarks page when the file exists.

    The README is written alongside the benchmark scripts and may be absent
    from a checkout; the page then keeps only its reproduction instructions.
    """
    if docname != "benchmarks":
        return
    # re-read this page when the README changes, appears or disappears
    # (a dependency that does not exist marks the page outdated on every build)
    app.env.note_dependency(str(BENCHMARKS_README))
    if not BENCHMARKS_README.is_file():
        source[0] += (
            "\n\n.. note::\n\n   ``benchmarks/README.md`` is not in this checkout, so no "
            "results are shown here;\n   run the commands above to produce them.\n"
        )
        return
    rel = os.path.relpath(BENCHMARKS_README, DOCS).replace(os.sep, "/")
    if HAVE_MYST:
        include = f"\n\n.. include:: {rel}\n   :parser: myst_parser.sphinx_\n"
    else:
        include = f"\n\n.. literalinclude:: {rel}\n   :language: markdown\n"
    source[0] += "\n\nResults\n-------\n" + include


def setup(app):
    app.connect("source-read", _benchmarks_results)
    return {"parallel_read_safe": True}
