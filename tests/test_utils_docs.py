"""The shared parameter descriptions of skderm._utils.docs."""

from __future__ import annotations

import inspect

import pytest

import skderm.metrics
import skderm.plotting
from skderm._utils.docs import DOCS, fill_doc


def test_fill_doc_indents_the_shared_entry_as_the_placeholder_was():
    @fill_doc
    def f(y_true):
        """Do it.

        Parameters
        ----------
        %(y_true)s
        """

    assert "\n        y_true : array-like of shape (n_samples,)\n            True labels.\n" \
        in f.__doc__


def test_an_unknown_placeholder_is_named_with_the_choices():
    with pytest.raises(KeyError, match=r"%\(y_score\)s.*'y_true'"):
        @fill_doc
        def f():
            """%(y_score)s"""


@pytest.mark.parametrize("module", [skderm.metrics, skderm.plotting])
def test_public_docstrings_hold_no_unfilled_placeholder(module):
    for name in module.__all__:
        doc = inspect.getdoc(getattr(module, name)) or ""
        assert "%(" not in doc, f"{module.__name__}.{name}"
    assert any(DOCS["y_proba"].splitlines()[1].strip() in (inspect.getdoc(getattr(module, n)) or "")
               for n in module.__all__)
