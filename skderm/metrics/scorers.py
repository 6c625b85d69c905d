"""The scorers for ``GridSearchCV(scoring=...)`` and ``cross_validate``.

:func:`get_scorers` is the one way to get them, so a search, a cross-validation
and the command line rank models by the same numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, get_scorer, make_scorer, matthews_corrcoef, recall_score

from skderm.metrics.report import roc_auc_per_class
from skderm.metrics.validation import check_1d

__all__ = ["get_scorers"]


def _auc_ovr_scorer(estimator: Any, X: Any, y_true: Any) -> float:
    """Macro one-vs-rest ROC AUC that survives folds missing a class.

    ``make_scorer(roc_auc_score, response_method="predict_proba",
    multi_class="ovr")`` fails on such folds: without ``labels`` it raises
    when the test fold lacks a class, with ``labels`` it returns NaN, and it
    raises when the training fold lacked a class (fewer proba columns).
    This scorer aligns the columns on ``estimator.classes_`` and averages
    over the classes present in ``y_true``; a class the model never saw gets
    a constant zero score (AUC 0.5).
    """
    y_true = check_1d(y_true, "y_true")
    proba = np.asarray(estimator.predict_proba(X), dtype=float)
    model_classes = np.asarray(estimator.classes_)
    present = np.unique(y_true)
    if len(present) < 2:
        warnings.warn(
            f"auc_ovr: y_true holds a single class {present.tolist()}; ROC AUC is undefined "
            "and scored NaN",
            UserWarning,
            stacklevel=2,
        )
        return float("nan")
    unseen = np.setdiff1d(present, model_classes)
    classes = np.concatenate([model_classes, unseen]) if len(unseen) else model_classes
    if len(unseen):
        proba = np.hstack([proba, np.zeros((len(proba), len(unseen)))])
    return float(np.mean(roc_auc_per_class(y_true, proba, classes, present)))


def get_scorers(*, classes: Iterable | None = None, probabilities: bool = True) -> dict[str, Any]:
    """Scorers for ``GridSearchCV(scoring=...)`` and ``cross_validate``.

    Use ``refit="bacc"`` with them: balanced accuracy is the ISIC 2018 Task 3
    metric.

    Parameters
    ----------
    classes : iterable, default=None
        Classes that get a ``"recall_<class>"`` scorer (sensitivity of that
        class), for example ``DX_CLASSES``.
    probabilities : bool, default=True
        Include ``"auc_ovr"``, which calls ``predict_proba``: for a network,
        a second pass over each test fold beside ``predict``. ``False``
        keeps the label-based scorers only.

    Returns
    -------
    scorers : dict of str to scorer
        - ``"bacc"``: balanced accuracy (ISIC 2018 Task 3 metric);
        - ``"mcc"``: Matthews correlation coefficient;
        - ``"f1_macro"``: macro F1 over the classes in the fold;
        - ``"auc_ovr"``: macro one-vs-rest ROC AUC from ``predict_proba``,
          averaged over the classes present in the test fold. Unlike sklearn's
          ``"roc_auc_ovr"`` it does not fail when a fold misses a class in
          its test part (the class is skipped) or its training part (the
          model gives it probability 0). NaN when the test fold has a single
          class.
        - ``"recall_<class>"`` for each of ``classes``: NaN on a fold whose
          test part has no sample of that class, so average with
          ``np.nanmean`` (or use at least as many lesions of each class as
          folds).

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> search = GridSearchCV(model, grid, scoring=get_scorers(), refit="bacc")  # doctest: +SKIP
    """
    scorers: dict[str, Any] = {
        "bacc": get_scorer("balanced_accuracy"),
        "mcc": make_scorer(matthews_corrcoef),
        "f1_macro": make_scorer(f1_score, average="macro", zero_division=0.0),
    }
    if probabilities:
        scorers["auc_ovr"] = _auc_ovr_scorer
    for cls in classes or ():
        name = f"recall_{cls}"
        if name in scorers:
            raise ValueError(f"classes contains {cls!r} twice (or it clashes with {name!r})")
        scorers[name] = make_scorer(
            recall_score, labels=[cls], average="macro", zero_division=np.nan
        )
    return scorers
