"""Sphinx configuration of the skderm documentation.

Build it with::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

Everything here works offline: the theme is Sphinx's bundled ``alabaster``
and no intersphinx inventories are fetched.
"""

from __future__ import annotations

import importlib.util
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

# MyST renders the Markdown benchmark pages (docs/benchmarks/*.md); their links
# between pages and to the changelog resolve as site references.
HAVE_MYST = importlib.util.find_spec("myst_parser") is not None
if HAVE_MYST:
    extensions.append("myst_parser")
    myst_all_links_external = False

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
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
