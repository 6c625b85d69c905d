"""Metrics computed from one confusion matrix or a batch of them.

The report and the bootstrap share these, so a resampled balanced accuracy is
computed exactly as the reported one; they work on ``(k, k)`` and on
``(n_boot, k, k)`` arrays alike, which keeps the bootstrap vectorised.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

__all__ = [
    "confusion_from_codes",
    "safe_ratio",
    "nan_weighted_mean",
    "per_class_counts",
    "balanced_accuracy_from_confusion",
    "mcc_from_confusion",
    "accuracy_from_confusion",
    "CONFUSION_METRICS",
    "METRIC_ALIASES",
    "canonical_metric",
    "warn_absent_classes",
]


def confusion_from_codes(codes_true: np.ndarray, codes_pred: np.ndarray, k: int) -> np.ndarray:
    """``(k, k)`` counts, true classes as rows, from integer label codes."""
    return np.bincount(codes_true * k + codes_pred, minlength=k * k).reshape(k, k)


def safe_ratio(num, den) -> np.ndarray:
    """``num / den``, NaN where ``den`` is 0 (an undefined ratio is never 0)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def nan_weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean over the finite values with positive weight; NaN if none."""
    ok = ~np.isnan(values) & (weights > 0)
    if not ok.any():
        return float("nan")
    return float(np.average(values[ok], weights=weights[ok]))


def per_class_counts(cm: np.ndarray) -> dict[str, np.ndarray]:
    """One-vs-rest ``tp, fp, fn, tn`` of each class of a ``(k, k)`` matrix."""
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def balanced_accuracy_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Mean recall over the classes present (rows with samples), as ISIC 2018 defines it."""
    diag = np.diagonal(cm, axis1=-2, axis2=-1)
    recall = safe_ratio(diag, cm.sum(axis=-1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN only if empty
        return np.nanmean(recall, axis=-1)


def mcc_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Multiclass MCC (Gorodkin's R_K), 0 where undefined, as sklearn does."""
    cm = cm.astype(float)
    t = cm.sum(axis=-1)  # true counts per class
    p = cm.sum(axis=-2)  # predicted counts per class
    c = np.trace(cm, axis1=-2, axis2=-1)
    s = cm.sum(axis=(-2, -1))
    cov_ytyp = c * s - (t * p).sum(axis=-1)
    cov_ypyp = s**2 - (p * p).sum(axis=-1)
    cov_ytyt = s**2 - (t * t).sum(axis=-1)
    den = cov_ytyt * cov_ypyp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, cov_ytyp / np.sqrt(np.where(den > 0, den, 1.0)), 0.0)


def accuracy_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Share of samples on the diagonal."""
    return np.trace(cm, axis1=-2, axis2=-1) / cm.sum(axis=(-2, -1))


#: Metrics by canonical name, each taking a matrix or a batch of matrices.
CONFUSION_METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "balanced_accuracy": balanced_accuracy_from_confusion,
    "mcc": mcc_from_confusion,
    "accuracy": accuracy_from_confusion,
}

#: Names accepted for :data:`CONFUSION_METRICS`.
METRIC_ALIASES = {
    "balanced_accuracy": "balanced_accuracy",
    "bacc": "balanced_accuracy",
    "mcc": "mcc",
    "accuracy": "accuracy",
}


def canonical_metric(metric: str) -> str:
    """The canonical name of a named metric; the error lists the names."""
    try:
        return METRIC_ALIASES[metric]
    except (KeyError, TypeError):
        raise ValueError(
            f"metric={metric!r} is not supported: use one of {sorted(METRIC_ALIASES)} "
            "or a callable metric(y_true, y_pred) -> float"
        ) from None


def warn_absent_classes(labels: np.ndarray, support: np.ndarray, stacklevel: int = 3) -> None:
    """Warn that classes with no true sample are left out of balanced accuracy.

    ``stacklevel`` counts from this function: 3 points at the caller of the
    metric that calls it.
    """
    absent = labels[support == 0]
    if len(absent):
        warnings.warn(
            f"classes {absent.tolist()} are not in y_true: balanced accuracy and macro "
            f"averages use only the {int((support > 0).sum())} classes present in y_true "
            "(ISIC 2018 definition)",
            UserWarning,
            stacklevel=stacklevel,
        )
