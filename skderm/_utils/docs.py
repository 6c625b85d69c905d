"""Parameter descriptions that many metrics and plotting functions share, in one place.

A docstring line holding only ``%(name)s`` becomes ``DOCS[name]``, indented as
the line was (MNE-Python's ``fill_doc`` does the same), so ``help()`` and the
API pages show the whole text and a wording is changed once.
"""

from __future__ import annotations

import re

__all__ = ["DOCS", "fill_doc"]

DOCS = {
    "y_true": """\
y_true : array-like of shape (n_samples,)
    True labels.""",
    "y_pred": """\
y_pred : array-like of shape (n_samples,)
    Predicted labels.""",
    "y_proba": """\
y_proba : array-like of shape (n_samples, n_classes)
    Predicted probabilities; column ``j`` belongs to ``classes[j]``.""",
    "classes": """\
classes : sequence, default=None
    Class of each column of ``y_proba`` (``model.classes_``); default: the
    sorted labels of ``y_true``.""",
    "ax": """\
ax : matplotlib Axes, default=None
    Where to draw; ``None`` creates a new figure.""",
}
# the three arguments of every score of probabilities, in their order
DOCS["scored"] = "\n".join(DOCS[k] for k in ("y_true", "y_proba", "classes"))
# the per-class curves (ROC, precision-recall): a model's classes_ are required
DOCS["curves"] = "\n".join([DOCS["y_true"], """\
y_proba : array-like of shape (n_samples, n_classes)
    Predicted probabilities (``model.predict_proba(X)``).
classes : sequence
    Class of each column of ``y_proba``, as ``model.classes_``.""", DOCS["ax"]])

_PLACEHOLDER = re.compile(r"^( *)%\((\w+)\)s$", re.MULTILINE)


def fill_doc(func):
    """Replace each ``%(name)s`` line of ``func.__doc__`` with ``DOCS[name]``."""
    def entry(match):
        indent, name = match.groups()
        if name not in DOCS:
            raise KeyError(f"{func.__qualname__}'s docstring asks for %({name})s, which "
                           f"skderm._utils.docs.DOCS lacks; it has {sorted(DOCS)}")
        return "\n".join(indent + line for line in DOCS[name].splitlines())

    if func.__doc__:
        func.__doc__ = _PLACEHOLDER.sub(entry, func.__doc__)
    return func
