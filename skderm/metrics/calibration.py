"""Does a predicted 0.9 mean 90%? Calibration error, Brier score and reliability data.

All three read class probabilities (``predict_proba``) and the true labels.
Bins are equal-width on [0, 1]: bin ``b`` of ``n_bins`` holds the confidences
in ``((b - 1) / n_bins, b / n_bins]``, the first bin also holds 0. Empty bins
add nothing to the calibration error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from skderm._utils.docs import fill_doc
from skderm.metrics.validation import check_integer, check_scored

__all__ = ["reliability_curve", "expected_calibration_error", "brier_score"]

RELIABILITY_COLUMNS = ("bin_low", "bin_high", "count", "confidence", "accuracy")


def _confidence_and_outcome(y_true, proba, classes, label):
    """Top-label (``label=None``) or one-vs-rest confidence, and whether it came true."""
    if label is None:
        top = proba.argmax(axis=1)
        return proba[np.arange(len(proba)), top], classes[top] == y_true
    column = np.flatnonzero(classes == label)
    if len(column) == 0:
        raise ValueError(f"label={label!r} is not one of classes={classes.tolist()}")
    return proba[:, column[0]], y_true == label


def _bin_table(confidence: np.ndarray, outcome: np.ndarray, n_bins: int) -> pd.DataFrame:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # rounded first so that 0.7 * 10 = 7.000000000000001 stays on its edge, in bin (0.6, 0.7]
    scaled = np.round(confidence * n_bins, 9)
    index = np.clip(np.ceil(scaled).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=outcome.astype(float), minlength=n_bins) / count
    return pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "count": count,
                         "confidence": mean_conf, "accuracy": accuracy})


@fill_doc
def reliability_curve(
    y_true: Any,
    y_proba: Any,
    *,
    classes: Sequence | None = None,
    n_bins: int = 15,
    label: Any = None,
) -> pd.DataFrame:
    """The data of a reliability diagram: confidence against accuracy, per bin.

    Parameters
    ----------
    %(scored)s
    n_bins : int, default=15
        Number of equal-width confidence bins on [0, 1].
    label : class label, default=None
        ``None``: the top label (confidence is the largest probability,
        accuracy whether that class was right). A class: its one-vs-rest
        probability against how often the sample was of that class.

    Returns
    -------
    curve : pandas.DataFrame
        One row per bin: ``bin_low, bin_high, count, confidence`` (the mean
        confidence in the bin) and ``accuracy`` (the share that came true);
        NaN in empty bins. A calibrated model has ``accuracy == confidence``.
    """
    n_bins = check_integer(n_bins, "n_bins", 1, example=15)
    y_true, proba, classes = check_scored(y_true, y_proba, classes)
    confidence, outcome = _confidence_and_outcome(y_true, proba, classes, label)
    return _bin_table(confidence, outcome, n_bins)


def _ece(table: pd.DataFrame) -> float:
    filled = table[table["count"] > 0]
    gap = (filled["accuracy"] - filled["confidence"]).abs()
    return float((gap * filled["count"]).sum() / filled["count"].sum())


@fill_doc
def expected_calibration_error(
    y_true: Any,
    y_proba: Any,
    *,
    classes: Sequence | None = None,
    n_bins: int = 15,
    per_class: bool = False,
) -> float | pd.Series:
    """Expected calibration error: the count-weighted mean gap between confidence
    and accuracy over equal-width bins (Guo et al., 2017).

    Parameters
    ----------
    %(scored)s
    n_bins : int, default=15
        Number of equal-width bins. More bins see finer miscalibration but
        add noise on small test sets.
    per_class : bool, default=False
        ``False``: the top-label ECE, one number. ``True``: each class's
        one-vs-rest ECE (its probability against whether the sample is of
        that class), so a rare class's miscalibration is not hidden by nv;
        their mean is the class-wise ECE of Kull et al. (2019).

    Returns
    -------
    ece : float or pandas.Series
        In [0, 1], 0 when perfectly calibrated; a Series indexed by class
        with ``per_class=True``.

    Examples
    --------
    >>> from skderm.metrics.calibration import expected_calibration_error
    >>> expected_calibration_error(["a", "b"], [[0.9, 0.1], [0.9, 0.1]], n_bins=10)
    0.4
    """
    n_bins = check_integer(n_bins, "n_bins", 1, example=15)
    y_true, proba, classes = check_scored(y_true, y_proba, classes)
    if not per_class:
        return _ece(_bin_table(*_confidence_and_outcome(y_true, proba, classes, None), n_bins))
    values = [_ece(_bin_table(*_confidence_and_outcome(y_true, proba, classes, c), n_bins))
              for c in classes]
    return pd.Series(values, index=pd.Index(classes.tolist(), dtype=object), name="ece")


@fill_doc
def brier_score(y_true: Any, y_proba: Any, *, classes: Sequence | None = None) -> float:
    """Multiclass Brier score: mean over samples of the squared distance between the
    probability vector and the one-hot truth.

    It is a proper score (lower is better), so unlike ECE it cannot be gamed
    by predicting the class frequencies: it rewards calibration and
    discrimination together. Ranges from 0 to 2; sklearn's
    ``brier_score_loss(..., scale_by_half=True)`` is half of it.

    Parameters
    ----------
    %(scored)s

    Returns
    -------
    score : float
    """
    y_true, proba, classes = check_scored(y_true, y_proba, classes)
    onehot = (y_true[:, None] == classes[None, :]).astype(float)
    return float(((proba - onehot) ** 2).sum(axis=1).mean())
