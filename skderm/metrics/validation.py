"""Input checks shared by the metrics and the figures drawn from them.

Public so that :mod:`skderm.plotting` and every metrics module validate labels,
probabilities and lesion ids the same way, with the same error messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = [
    "check_1d",
    "check_pair",
    "resolve_labels",
    "encode_labels",
    "check_proba",
    "check_scored",
    "group_codes",
    "check_integer",
    "check_share",
]


def check_1d(y: Any, name: str) -> np.ndarray:
    """``y`` as a 1-D array; the error names ``name`` and the shape."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sample), got shape {arr.shape}")
    return arr


def check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two non-empty 1-D label arrays of the same length."""
    y_true = check_1d(y_true, "y_true")
    y_pred = check_1d(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}"
        )
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty: need at least one sample")
    return y_true, y_pred


def resolve_labels(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence | None, extra: Sequence = ()
) -> np.ndarray:
    """The label order: ``labels`` if given (checked to hold every label), else the sorted
    union of ``y_true``, ``y_pred`` and ``extra``."""
    parts = [y_true, y_pred] + ([np.asarray(extra)] if len(extra) else [])
    present = np.unique(np.concatenate(parts))
    if labels is None:
        return present
    labels = np.asarray(labels)
    if len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels contains duplicates: {labels.tolist()}")
    missing = np.setdiff1d(np.unique(np.concatenate([y_true, y_pred])), labels)
    if len(missing):
        raise ValueError(
            f"labels={labels.tolist()} does not contain {missing.tolist()}, found in "
            "y_true/y_pred: labels must list every class (it sets the row order and may "
            "add classes absent from the data)"
        )
    return labels


def encode_labels(y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Integer position of each ``y`` in ``labels`` (every value of ``y`` must be there)."""
    order = np.argsort(labels, kind="stable")
    pos = np.searchsorted(labels[order], y)
    return order[np.clip(pos, 0, len(labels) - 1)]


def check_proba(y_proba: Any, n: int, classes: np.ndarray) -> np.ndarray:
    """``y_proba`` as a finite float array of shape ``(n, len(classes))``."""
    proba = np.asarray(y_proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(
            f"y_proba must be 2-D of shape (n_samples, n_classes), got shape {proba.shape}"
        )
    if proba.shape != (n, len(classes)):
        raise ValueError(
            f"y_proba has shape {proba.shape}, expected ({n}, {len(classes)}): one row per "
            f"sample and one column per class of classes={classes.tolist()}; pass "
            "classes=model.classes_ if the columns follow other classes"
        )
    if not np.isfinite(proba).all():
        raise ValueError("y_proba contains NaN or infinite values")
    return proba


def check_scored(
    y_true: Any, y_proba: Any, classes: Sequence | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check true labels against the probabilities of ``classes``.

    Returns ``(y_true, proba, classes)``; ``classes`` defaults to the sorted
    labels of ``y_true``, and every true label must name a column.
    """
    y_true = check_1d(y_true, "y_true")
    if len(y_true) == 0:
        raise ValueError("y_true is empty: need at least one sample")
    classes = np.unique(y_true) if classes is None else np.asarray(classes)
    proba = check_proba(y_proba, len(y_true), classes)
    unknown = np.setdiff1d(np.unique(y_true), classes)
    if len(unknown):
        raise ValueError(
            f"y_true holds {unknown.tolist()}, not in classes={classes.tolist()}: classes must "
            "name the column of y_proba for every true label (use model.classes_)"
        )
    return y_true, proba, classes


def group_codes(groups: Any | None, n: int) -> np.ndarray:
    """Integer code of each sample's group (lesion); each sample its own group if None."""
    if groups is None:
        return np.arange(n)
    groups = check_1d(groups, "groups")
    if len(groups) != n:
        raise ValueError(
            f"groups has length {len(groups)} but y_true has {n}: one lesion id per sample"
        )
    return np.unique(groups, return_inverse=True)[1].ravel()


def check_integer(value: Any, name: str, minimum: int, example: int | None = None) -> int:
    """``value`` as an int of at least ``minimum`` (a bool is no count); the error names
    ``name`` and, when given, an ``example`` value."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        hint = f" (e.g. {example})" if example is not None else ""
        raise ValueError(f"{name}={value!r} is not valid; use an integer >= {minimum}{hint}")
    return int(value)


def check_share(value: Any, name: str, use: str, *, include_one: bool = True) -> float:
    """``value`` as a float in [0, 1] (in [0, 1) with ``include_one=False``); the error
    names ``name`` and says what to ``use``."""
    in_range = isinstance(value, Real) and (0 <= value <= 1 if include_one else 0 <= value < 1)
    if isinstance(value, bool) or not in_range:
        raise ValueError(f"{name}={value!r} is not valid; use {use}")
    return float(value)
