"""How good is the model on the cases it is sure of? Risk-coverage and referral.

A screening model may refer the images it is least sure of to a
dermatologist. Confidence is the largest class probability; keeping the most
confident share ``coverage`` of the images traces the risk-coverage curve
(Geifman and El-Yaniv, 2017), and the balanced accuracy on the kept images is
what a clinic would see from the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from skderm._utils.docs import fill_doc
from skderm.metrics.confusion import balanced_accuracy_from_confusion, confusion_from_codes
from skderm.metrics.validation import check_scored, check_share, encode_labels

__all__ = ["risk_coverage_curve", "referral_balanced_accuracy", "referral_mask"]


def _confidence_order(proba: np.ndarray) -> np.ndarray:
    """Rows from most to least confident; ties keep their order (a stable sort)."""
    return np.argsort(-proba.max(axis=1), kind="stable")


def referral_mask(y_proba: Any, *, refer: float = 0.1) -> np.ndarray:
    """Which images to refer: the ``refer`` share with the lowest top probability.

    Parameters
    ----------
    y_proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities.
    refer : float, default=0.1
        Share of the images to refer, in [0, 1); ``round(refer * n)`` images.

    Returns
    -------
    referred : ndarray of bool, shape (n_samples,)
        True for the referred images.
    """
    proba = np.asarray(y_proba, dtype=float)
    if proba.ndim != 2 or len(proba) == 0:
        raise ValueError(f"y_proba must be 2-D of shape (n_samples, n_classes) with at least "
                         f"one row, got shape {proba.shape}")
    refer = check_share(refer, "refer", "the share of images to refer, in [0, 1) (e.g. 0.1 "
                        "refers the least confident 10%)", include_one=False)
    n_refer = int(round(refer * len(proba)))
    referred = np.zeros(len(proba), dtype=bool)
    if n_refer:
        referred[_confidence_order(proba)[-n_refer:]] = True
    return referred


@fill_doc
def referral_balanced_accuracy(
    y_true: Any, y_proba: Any, *, refer: float = 0.1, classes: Sequence | None = None
) -> float:
    """Balanced accuracy on the images kept when the least confident ``refer`` share
    is referred to a dermatologist.

    Parameters
    ----------
    %(y_true)s
    %(y_proba)s
    refer : float, default=0.1
        Share of the images referred, in [0, 1); 0 is the plain balanced
        accuracy.
    %(classes)s

    Returns
    -------
    bacc : float
        Mean recall over the classes present among the kept images.
    """
    y_true, proba, classes = check_scored(y_true, y_proba, classes)
    kept = ~referral_mask(proba, refer=refer)
    pred = proba[kept].argmax(axis=1)
    cm = confusion_from_codes(encode_labels(y_true[kept], classes), pred, len(classes))
    return float(balanced_accuracy_from_confusion(cm))


@fill_doc
def risk_coverage_curve(
    y_true: Any, y_proba: Any, *, classes: Sequence | None = None
) -> pd.DataFrame:
    """Risk and balanced accuracy at every coverage, keeping the most confident images.

    Parameters
    ----------
    %(scored)s

    Returns
    -------
    curve : pandas.DataFrame
        One row per number of kept images ``1 .. n``, most confident first:
        ``coverage`` (share kept), ``threshold`` (the lowest top probability
        kept), ``risk`` (error rate on the kept images) and
        ``balanced_accuracy`` (mean recall over the classes present among
        them). ``risk.mean()`` is the area under the risk-coverage curve.
    """
    y_true, proba, classes = check_scored(y_true, y_proba, classes)
    order = _confidence_order(proba)
    true_codes = encode_labels(y_true[order], classes)
    correct = proba[order].argmax(axis=1) == true_codes
    n, k = len(order), len(classes)
    kept = np.arange(1, n + 1)
    # per class, cumulative counts of kept samples and of those right: recall at every coverage
    onehot = np.zeros((n, k))
    onehot[np.arange(n), true_codes] = 1.0
    support = np.cumsum(onehot, axis=0)
    hits = np.cumsum(onehot * correct[:, None], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / support, np.nan)
    bacc = np.nanmean(recall, axis=1)
    return pd.DataFrame({
        "coverage": kept / n,
        "threshold": proba[order].max(axis=1),
        "risk": 1.0 - np.cumsum(correct) / kept,
        "balanced_accuracy": bacc,
    })
