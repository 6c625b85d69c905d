"""Sensitivity at a fixed specificity, and the reverse, with lesion-bootstrap intervals.

Clinicians read a classifier at an operating point: "at 90% specificity, how
many melanomas does it find?". The positive side is one class or several:
:data:`MALIGNANT` (akiec, bcc, mel) against the benign rest, scored by the sum
of their probabilities. Points are read off the empirical ROC curve, without
interpolation: the sensitivity reached at a specificity of *at least* the
target, so a reported point is one the model can actually be run at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from skderm._utils.docs import fill_doc
from skderm.metrics.bootstrap import (
    as_generator,
    check_bootstrap_params,
    resample_groups,
    summarise_bootstrap,
)
from skderm.metrics.validation import check_scored, check_share, group_codes

__all__ = [
    "MALIGNANT",
    "binary_scores",
    "sensitivity_at_specificity",
    "specificity_at_sensitivity",
    "operating_points",
]

#: The malignant HAM10000 classes: actinic keratosis / intraepithelial carcinoma,
#: basal cell carcinoma and melanoma.
MALIGNANT = ("akiec", "bcc", "mel")


@fill_doc
def binary_scores(
    y_true: Any, y_proba: Any, *, positive: Any, classes: Sequence | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest truth and score for a class or a set of classes.

    Parameters
    ----------
    %(y_true)s
    %(y_proba)s
    positive : label or sequence of labels
        The positive class (``"mel"``) or classes (:data:`MALIGNANT`).
    %(classes)s

    Returns
    -------
    is_positive : ndarray of bool, shape (n_samples,)
    score : ndarray of float, shape (n_samples,)
        The summed probability of the positive classes.
    """
    y_true, proba, classes = check_scored(y_true, y_proba, classes)
    several = isinstance(positive, tuple | list | set | np.ndarray)
    wanted = list(positive) if several else [positive]
    unknown = [p for p in wanted if p not in classes.tolist()]
    if unknown or len(wanted) == 0:
        raise ValueError(f"positive={positive!r} must name classes of classes="
                         f"{classes.tolist()}; not found: {unknown}")
    columns = np.isin(classes, wanted)
    return np.isin(y_true, wanted), proba[:, columns].sum(axis=1)


def _roc(is_positive: np.ndarray, score: np.ndarray):
    """Empirical ROC at every distinct threshold: ``fpr, tpr, thresholds``, from (0, 0)."""
    order = np.argsort(-score, kind="stable")
    score, pos = score[order], is_positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(pos)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    n_pos, n_neg = int(pos.sum()), len(pos) - int(pos.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    return (np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos], np.r_[np.inf, score[last_of_tie]])


def _point(roc, kind: str, target: float) -> tuple[float, float]:
    """Best ``(value, threshold)`` of the other rate where ``kind`` reaches ``target``."""
    if roc is None:
        return float("nan"), float("nan")
    fpr, tpr, thresholds = roc
    if kind == "sensitivity":  # best sensitivity where specificity >= target
        ok = (1.0 - fpr) >= target - 1e-12
        best = np.flatnonzero(ok)[np.argmax(tpr[ok])]
        return float(tpr[best]), float(thresholds[best])
    ok = tpr >= target - 1e-12  # best specificity where sensitivity >= target
    best = np.flatnonzero(ok)[np.argmax(1.0 - fpr[ok])]
    return float(1.0 - fpr[best]), float(thresholds[best])


def _check_target(value: Any, name: str) -> float:
    return check_share(value, name, "a rate in [0, 1] (e.g. 0.9)")


def _single(y_true, y_proba, positive, classes, kind, target) -> float:
    is_pos, score = binary_scores(y_true, y_proba, positive=positive, classes=classes)
    roc = _roc(is_pos, score)
    if roc is None:
        raise ValueError(f"y_true needs both positive ({positive!r}) and negative samples "
                         "for an operating point")
    return _point(roc, kind, target)[0]


@fill_doc
def sensitivity_at_specificity(
    y_true: Any, y_proba: Any, *, positive: Any, specificity: float = 0.9,
    classes: Sequence | None = None,
) -> float:
    """The highest sensitivity at a threshold whose specificity is at least ``specificity``.

    Parameters
    ----------
    %(y_true)s
    %(y_proba)s
    positive : label or sequence of labels
        The positive class or classes (:data:`MALIGNANT`).
    specificity : float, default=0.9
        The specificity to reach, in [0, 1].
    %(classes)s

    Returns
    -------
    sensitivity : float
    """
    target = _check_target(specificity, "specificity")
    return _single(y_true, y_proba, positive, classes, "sensitivity", target)


def specificity_at_sensitivity(
    y_true: Any, y_proba: Any, *, positive: Any, sensitivity: float = 0.9,
    classes: Sequence | None = None,
) -> float:
    """The highest specificity at a threshold whose sensitivity is at least ``sensitivity``.

    Parameters are those of :func:`sensitivity_at_specificity`, with
    ``sensitivity`` the rate to reach.

    Returns
    -------
    specificity : float
    """
    target = _check_target(sensitivity, "sensitivity")
    return _single(y_true, y_proba, positive, classes, "specificity", target)


def operating_points(
    y_true: Any,
    y_proba: Any,
    *,
    positive: Any = MALIGNANT,
    specificities: Sequence[float] = (0.8, 0.9, 0.95),
    sensitivities: Sequence[float] = (0.8, 0.9, 0.95),
    classes: Sequence | None = None,
    groups: Any | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Operating points with percentile bootstrap intervals that resample lesions.

    Parameters
    ----------
    y_true, y_proba, positive, classes
        As in :func:`sensitivity_at_specificity`; ``positive`` defaults to
        :data:`MALIGNANT` (malignant vs benign).
    specificities : sequence of float, default=(0.8, 0.9, 0.95)
        Fixed specificities at which to read the sensitivity.
    sensitivities : sequence of float, default=(0.8, 0.9, 0.95)
        Fixed sensitivities at which to read the specificity.
    groups : array-like of shape (n_samples,), default=None
        Lesion id of each image: whole lesions are resampled
        (:func:`~skderm.metrics.bootstrap_ci`); otherwise images are.
    n_boot : int, default=1000
        Number of resamples; every point shares them.
    confidence : float, default=0.95
        Coverage of the intervals.
    random_state : int or numpy Generator, default=None
        Seed.

    Returns
    -------
    points : pandas.DataFrame
        One row per point: ``fixed`` (``"specificity"`` or ``"sensitivity"``),
        ``target``, ``metric`` (the rate read off), ``estimate``, ``low``,
        ``high``, ``std`` and ``threshold`` (a sample is called positive when
        its summed positive probability is at least this).
    """
    check_bootstrap_params(n_boot, confidence)
    wanted = ([("specificity", _check_target(s, "specificities")) for s in specificities]
              + [("sensitivity", _check_target(s, "sensitivities")) for s in sensitivities])
    if not wanted:
        raise ValueError("specificities and sensitivities are both empty: name a point")
    is_pos, score = binary_scores(y_true, y_proba, positive=positive, classes=classes)
    roc = _roc(is_pos, score)
    if roc is None:
        raise ValueError(f"y_true needs both positive ({positive!r}) and negative samples "
                         "for an operating point")
    # the kind of a point names the rate read off: the other one is fixed
    read = [("sensitivity" if fixed == "specificity" else "specificity", t) for fixed, t in wanted]
    codes = group_codes(groups, len(is_pos))
    boots = np.array([[_point(_roc(is_pos[idx], score[idx]), kind, t)[0] for kind, t in read]
                      for idx in resample_groups(codes, n_boot, as_generator(random_state))])
    rows = []
    for j, ((fixed, target), (kind, _)) in enumerate(zip(wanted, read, strict=True)):
        value, threshold = _point(roc, kind, target)
        rows.append({"fixed": fixed, "target": target, "metric": kind,
                     **summarise_bootstrap(value, boots[:, j], confidence),
                     "threshold": threshold})
    return pd.DataFrame(rows)
