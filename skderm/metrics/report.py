"""The per-class report and specificity, the numbers a skin-lesion paper tabulates.

The headline metric of ISIC 2018 Task 3 is *balanced accuracy*: the mean,
over the classes present in ``y_true``, of each class's recall. It equals
:func:`sklearn.metrics.balanced_accuracy_score`. Matthews correlation (MCC)
is reported beside it because it also rewards specificity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from skderm._utils.docs import fill_doc
from skderm.metrics.confusion import (
    CONFUSION_METRICS,
    confusion_from_codes,
    nan_weighted_mean,
    per_class_counts,
    safe_ratio,
    warn_absent_classes,
)
from skderm.metrics.validation import (
    check_pair,
    check_proba,
    encode_labels,
    resolve_labels,
)

__all__ = [
    "REPORT_COLUMNS",
    "classification_report_frame",
    "specificity_score",
    "roc_auc_per_class",
]

#: Columns of :func:`classification_report_frame`, in order.
REPORT_COLUMNS = ("precision", "recall", "specificity", "f1", "support", "auc", "value")

_PER_CLASS_COLUMNS = ("precision", "recall", "specificity", "f1", "auc")
_OVERALL_ROWS = ("balanced_accuracy", "mcc", "accuracy")


@fill_doc
def specificity_score(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence | None = None,
    average: str | None = None,
) -> np.ndarray | float:
    """Specificity (true negative rate) of each class, one-vs-rest.

    ``specificity = TN / (TN + FP)`` where, for class ``c``, negatives are the
    samples whose true label is not ``c``.

    Parameters
    ----------
    %(y_true)s
    %(y_pred)s
    labels : sequence, default=None
        Classes to score, in order. Must contain every label of ``y_true`` and
        ``y_pred``; may add absent ones. Default: sorted union of both.
    average : {None, "macro", "weighted", "micro"}, default=None
        ``None`` returns one value per label. ``"macro"`` is the NaN-skipping
        mean over labels, ``"weighted"`` weights by true-class support,
        ``"micro"`` pools TN and FP over classes.

    Returns
    -------
    specificity : ndarray of shape (n_labels,) or float
        NaN for a class with no negatives (every sample belongs to it).
    """
    if average not in (None, "macro", "weighted", "micro"):
        raise ValueError(
            f"average={average!r} is not supported: use None, 'macro', 'weighted' or 'micro'"
        )
    y_true, y_pred = check_pair(y_true, y_pred)
    labels = resolve_labels(y_true, y_pred, labels)
    k = len(labels)
    cm = confusion_from_codes(encode_labels(y_true, labels), encode_labels(y_pred, labels), k)
    counts = per_class_counts(cm)
    spec = safe_ratio(counts["tn"], counts["tn"] + counts["fp"])
    if average is None:
        return spec
    if average == "micro":
        return float(safe_ratio(counts["tn"].sum(), (counts["tn"] + counts["fp"]).sum()))
    weights = np.ones(k) if average == "macro" else cm.sum(axis=1).astype(float)
    return nan_weighted_mean(spec, weights)


def roc_auc_per_class(
    y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """One-vs-rest ROC AUC of each of ``labels``.

    ``proba[:, j]`` scores ``classes[j]``. NaN where a label has no column,
    no positive or no negative sample: the AUC is undefined there, not 0.5.
    """
    out = np.full(len(labels), np.nan)
    for i, label in enumerate(labels):
        col = np.flatnonzero(classes == label)
        positives = y_true == label
        if len(col) == 0 or positives.all() or not positives.any():
            continue
        out[i] = roc_auc_score(positives, proba[:, col[0]])
    return out


@fill_doc
def classification_report_frame(
    y_true: Any,
    y_pred: Any,
    y_proba: Any | None = None,
    *,
    labels: Sequence | None = None,
    classes: Sequence | None = None,
) -> pd.DataFrame:
    """Per-class, averaged and overall metrics as one tidy DataFrame.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (strings or integers).
    %(y_pred)s
    y_proba : array-like of shape (n_samples, n_classes), default=None
        Predicted probabilities (``model.predict_proba(X)``); column ``j``
        belongs to ``classes[j]``. Needed for the ``auc`` column.
    labels : sequence, default=None
        Row order of the per-class rows. Must contain every label of
        ``y_true`` and ``y_pred``; may add absent classes (for example
        ``DX_CLASSES``), which get NaN rows and a warning. Default: sorted
        union of ``y_true``, ``y_pred`` and ``classes``.
    classes : sequence, default=None
        Class of each column of ``y_proba``, as ``model.classes_``.
        Default: the sorted labels.

    Returns
    -------
    report : pandas.DataFrame
        Columns ``precision, recall, specificity, f1, support, auc, value``
        (see :data:`REPORT_COLUMNS`). Rows, in order:

        - one row per class, indexed by the label: ``recall`` is the
          sensitivity; ``support`` the number of true samples; ``auc`` the
          one-vs-rest ROC AUC from that class's ``y_proba`` column (NaN
          without ``y_proba`` or when the class is absent from ``y_true``);
          ``value`` is NaN.
        - ``"macro avg"``: NaN-skipping mean of the class rows;
          ``"weighted avg"``: support-weighted mean. Their ``support`` is
          the total number of samples.
        - ``"balanced_accuracy"``, ``"mcc"``, ``"accuracy"``: the scalar is
          in ``value``; other columns are NaN.

        So ``report.loc["mel", "recall"]`` and
        ``report.loc["balanced_accuracy", "value"]``. ``support`` is a
        nullable integer column (``<NA>`` on the overall rows).

    Warns
    -----
    UserWarning
        When a label is absent from ``y_true``: balanced accuracy and the
        macro recall then average over the classes present in ``y_true``
        only, as the ISIC 2018 challenge does.

    Notes
    -----
    Undefined ratios are NaN (a class never predicted has NaN precision), so
    the rows agree with ``sklearn.metrics.precision_recall_fscore_support(...,
    zero_division=np.nan)``; ``"macro avg"`` recall equals balanced accuracy.
    """
    y_true, y_pred = check_pair(y_true, y_pred)
    extra = () if classes is None else np.asarray(classes)
    labels = resolve_labels(y_true, y_pred, labels, extra=extra if labels is None else ())
    k = len(labels)
    cm = confusion_from_codes(encode_labels(y_true, labels), encode_labels(y_pred, labels), k)
    support = cm.sum(axis=1)
    warn_absent_classes(labels, support)

    counts = per_class_counts(cm)
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    per_class = pd.DataFrame(
        {
            "precision": safe_ratio(tp, tp + fp),
            "recall": safe_ratio(tp, tp + fn),
            "specificity": safe_ratio(tn, tn + fp),
            "f1": safe_ratio(2 * tp, 2 * tp + fp + fn),
            "support": support,
            "auc": _report_auc(y_true, y_proba, labels, classes),
        },
        index=pd.Index(labels.tolist(), dtype=object),
    )

    n = int(support.sum())
    summary = {}
    for name, weights in (("macro avg", np.ones(k)), ("weighted avg", support.astype(float))):
        row = {
            col: nan_weighted_mean(per_class[col].to_numpy(float), weights)
            for col in _PER_CLASS_COLUMNS
        }
        summary[name] = {**row, "support": n}
    overall = {name: {"value": float(CONFUSION_METRICS[name](cm))} for name in _OVERALL_ROWS}

    report = pd.concat(
        [
            per_class,
            pd.DataFrame.from_dict(summary, orient="index"),
            pd.DataFrame.from_dict(overall, orient="index"),
        ]
    )
    report = report.reindex(columns=list(REPORT_COLUMNS))
    report["support"] = report["support"].astype("Int64")
    return report


def _report_auc(
    y_true: np.ndarray, y_proba: Any | None, labels: np.ndarray, classes: Sequence | None
) -> np.ndarray:
    if y_proba is None:
        return np.full(len(labels), np.nan)
    classes = labels if classes is None else np.asarray(classes)
    proba = check_proba(y_proba, len(y_true), classes)
    return roc_auc_per_class(y_true, proba, classes, labels)
