"""Percentile bootstrap intervals that resample whole lesions.

HAM10000 photographs many lesions more than once, and the images of one
lesion are not independent: resampling images understates the uncertainty,
so every interval here can resample lesions (``groups``) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from skderm._utils.docs import fill_doc
from skderm.metrics.confusion import (
    CONFUSION_METRICS,
    canonical_metric,
    confusion_from_codes,
    warn_absent_classes,
)
from skderm.metrics.validation import check_pair, encode_labels, group_codes

__all__ = ["bootstrap_ci", "bootstrap_report", "resample_groups", "as_generator",
           "check_bootstrap_params", "summarise_bootstrap"]


def as_generator(random_state: Any) -> np.random.Generator | np.random.RandomState:
    """A numpy Generator from a seed; a Generator or RandomState passes through."""
    if isinstance(random_state, np.random.Generator | np.random.RandomState):
        return random_state
    return np.random.default_rng(random_state)


def check_bootstrap_params(n_boot: int, confidence: float) -> None:
    """Fail with the value when ``n_boot`` or ``confidence`` cannot give an interval."""
    if not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _boot_confusions(
    codes_true: np.ndarray,
    codes_pred: np.ndarray,
    gid: np.ndarray,
    k: int,
    n_boot: int,
    rng: Any,
) -> np.ndarray:
    """Confusion matrices of ``n_boot`` resamples of whole groups, shape (n_boot, k, k).

    Drawing ``n_groups`` groups with replacement only matters through how many
    times each *kind* of group (its confusion counts) is drawn, so groups with
    identical counts are pooled and the draw is one multinomial over kinds.
    This is exactly the percentile bootstrap, without a loop over resamples.
    """
    n_groups = int(gid.max()) + 1
    cells = codes_true * k + codes_pred
    per_group = np.bincount(gid * k * k + cells, minlength=n_groups * k * k)
    kinds, kind_counts = np.unique(per_group.reshape(n_groups, k * k), axis=0, return_counts=True)
    draws = rng.multinomial(n_groups, kind_counts / n_groups, size=n_boot)
    return (draws @ kinds).reshape(n_boot, k, k)


def resample_groups(
    codes: np.ndarray, n_boot: int, rng: np.random.Generator | np.random.RandomState
) -> Iterator[np.ndarray]:
    """Row indices of ``n_boot`` resamples that draw whole groups with replacement.

    Parameters
    ----------
    codes : ndarray of int, shape (n_samples,)
        Group code of each row, ``0 .. n_groups - 1``
        (:func:`skderm.metrics.validation.group_codes`).
    n_boot : int
        Number of resamples.
    rng : numpy Generator or RandomState
        Source of the draws.

    Yields
    ------
    ndarray of int
        The rows of each drawn group, all of them, concatenated; a group drawn
        twice appears twice.
    """
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n_groups = len(sizes)
    for _ in range(n_boot):
        drawn = (
            rng.integers(n_groups, size=n_groups)
            if isinstance(rng, np.random.Generator)
            else rng.randint(n_groups, size=n_groups)
        )
        lengths = sizes[drawn]
        # row positions of every drawn group, concatenated, without a Python loop
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        yield order[np.repeat(starts[drawn], lengths) + offsets]


def summarise_bootstrap(
    estimate: float, boots: np.ndarray, confidence: float
) -> dict[str, float]:
    """``estimate``, the percentile interval ``low``/``high`` and ``std`` of ``boots``."""
    alpha = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(boots, [alpha, 1.0 - alpha])
    return {
        "estimate": float(estimate),
        "low": float(low),
        "high": float(high),
        "std": float(np.nanstd(boots, ddof=1)),
    }


def _prepare(y_true: Any, y_pred: Any, groups: Any | None):
    y_true, y_pred = check_pair(y_true, y_pred)
    gid = group_codes(groups, len(y_true))
    labels = np.unique(np.concatenate([y_true, y_pred]))
    return y_true, y_pred, gid, labels


@fill_doc
def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    *,
    metric: str | Callable[[Any, Any], float] = "balanced_accuracy",
    groups: Any | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
) -> dict[str, float]:
    """Percentile bootstrap confidence interval of a classification metric.

    Parameters
    ----------
    %(y_true)s
    %(y_pred)s
    metric : {"balanced_accuracy", "bacc", "mcc", "accuracy"} or callable, \
default="balanced_accuracy"
        The named metrics are computed from resampled confusion matrices
        (vectorised over the resamples, so fast). A callable
        ``metric(y_true, y_pred) -> float`` is called once per resample.
    groups : array-like of shape (n_samples,), default=None
        Lesion id of each image. When given, whole lesions are resampled (all
        images of a drawn lesion together), which accounts for images of one
        lesion being correlated; otherwise images are resampled.
    n_boot : int, default=1000
        Number of bootstrap resamples (>= 2).
    confidence : float, default=0.95
        Coverage of the interval, in (0, 1).
    random_state : int, numpy Generator or RandomState, default=None
        Seed for reproducible intervals.

    Returns
    -------
    ci : dict
        ``estimate`` (the metric on all the data), ``low`` and ``high`` (the
        percentile interval), ``std`` (standard deviation of the resampled
        values: a bootstrap standard error).

    Notes
    -----
    A resample can miss a rare class entirely; balanced accuracy then
    averages over the classes it holds, as it would on such a test set.
    """
    check_bootstrap_params(n_boot, confidence)
    y_true, y_pred, gid, labels = _prepare(y_true, y_pred, groups)
    rng = as_generator(random_state)
    if callable(metric):
        boots = np.array([metric(y_true[idx], y_pred[idx])
                          for idx in resample_groups(gid, n_boot, rng)])
        return summarise_bootstrap(metric(y_true, y_pred), boots, confidence)
    name = canonical_metric(metric)
    return _bootstrap_named(y_true, y_pred, gid, labels, [name], n_boot, confidence, rng)[name]


def _bootstrap_named(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    gid: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    n_boot: int,
    confidence: float,
    rng: Any,
) -> dict[str, dict[str, float]]:
    k = len(labels)
    codes_true, codes_pred = encode_labels(y_true, labels), encode_labels(y_pred, labels)
    cm = confusion_from_codes(codes_true, codes_pred, k)
    if "balanced_accuracy" in names:
        warn_absent_classes(labels, cm.sum(axis=1), stacklevel=4)
    boots = _boot_confusions(codes_true, codes_pred, gid, k, n_boot, rng)
    return {
        name: summarise_bootstrap(CONFUSION_METRICS[name](cm), CONFUSION_METRICS[name](boots), confidence)
        for name in names
    }


@fill_doc
def bootstrap_report(
    y_true: Any,
    y_pred: Any,
    groups: Any | None = None,
    *,
    metrics: Sequence[str] = ("balanced_accuracy", "mcc"),
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
) -> pd.DataFrame:
    """Bootstrap intervals of several metrics, from the same resamples.

    Parameters
    ----------
    %(y_true)s
    %(y_pred)s
    groups : array-like of shape (n_samples,), default=None
        Lesion ids; when given, lesions are resampled (see :func:`bootstrap_ci`).
    metrics : sequence of str, default=("balanced_accuracy", "mcc")
        Any of ``"balanced_accuracy"`` (alias ``"bacc"``), ``"mcc"``,
        ``"accuracy"``.
    n_boot : int, default=1000
        Number of resamples.
    confidence : float, default=0.95
        Coverage of the intervals.
    random_state : int, numpy Generator or RandomState, default=None
        Seed.

    Returns
    -------
    report : pandas.DataFrame
        One row per metric (index: canonical name, e.g. ``"balanced_accuracy"``),
        columns ``estimate, low, high, std``. All metrics share the same
        resamples, so their intervals are paired.
    """
    check_bootstrap_params(n_boot, confidence)
    names = list(dict.fromkeys(canonical_metric(m) for m in metrics))
    if not names:
        raise ValueError("metrics is empty: name at least one metric")
    y_true, y_pred, gid, labels = _prepare(y_true, y_pred, groups)
    result = _bootstrap_named(
        y_true, y_pred, gid, labels, names, n_boot, confidence, as_generator(random_state)
    )
    return pd.DataFrame.from_dict(result, orient="index")[["estimate", "low", "high", "std"]]
