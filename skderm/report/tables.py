"""The numbers of an evaluation: per-class table with lesion-bootstrap intervals, summaries.

Everything the report page and the terminal summary show is computed here,
once, into an :class:`Evaluation`; the page and the text only lay it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from skderm.metrics import (
    MALIGNANT,
    bootstrap_report,
    brier_score,
    classification_report_frame,
    expected_calibration_error,
    most_confused,
    operating_points,
    referral_balanced_accuracy,
    top_losses,
)
from skderm.metrics.bootstrap import as_generator, resample_groups, summarise_bootstrap
from skderm.metrics.validation import check_scored, encode_labels, group_codes

__all__ = ["Evaluation", "evaluate", "per_class_intervals", "per_class_text", "interval_note",
           "format_summary"]

#: Rates given an interval in the per-class table.
INTERVAL_RATES = ("recall", "precision", "specificity")


@dataclass
class Evaluation:
    """What one evaluation measured; every table is a pandas DataFrame."""

    y_true: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    y_pred: np.ndarray
    groups: np.ndarray | None
    per_class: pd.DataFrame
    overall: pd.DataFrame
    calibration: dict[str, float]
    ece_per_class: pd.Series
    operating: dict[str, pd.DataFrame | str] = field(default_factory=dict)
    referral: dict[float, float] = field(default_factory=dict)
    losses: pd.DataFrame | None = None
    confused: pd.DataFrame | None = None
    n_boot: int = 1000
    confidence: float = 0.95
    decided: bool = False  # decisions came from the model's rule, not the argmax


def _rates(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Recall, precision and specificity per class of confusion matrices (..., k, k)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    support = cm.sum(axis=-1)
    called = cm.sum(axis=-2)
    total = cm.sum(axis=(-2, -1))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"recall": tp / support, "precision": tp / called,
                "specificity": (total - support - called + tp) / (total - support)}


def _summary(estimate: float, boots: np.ndarray, confidence: float) -> dict[str, float]:
    """As summarise_bootstrap; a rate undefined in every resample gets a NaN interval."""
    if np.isnan(boots).all():  # a class never predicted has no precision anywhere
        return {"estimate": float(estimate), "low": np.nan, "high": np.nan, "std": np.nan}
    return summarise_bootstrap(estimate, boots, confidence)


def per_class_intervals(y_true: Any, y_pred: Any, *, labels: Sequence, groups: Any = None,
                        n_boot: int = 1000, confidence: float = 0.95,
                        random_state: Any = 0) -> pd.DataFrame:
    """Recall, precision and specificity of each class with percentile intervals.

    Whole lesions are resampled when ``groups`` holds lesion ids (images of one
    lesion are not independent). Returns one row per label with columns
    ``<rate>``, ``<rate>_low`` and ``<rate>_high``; an undefined rate is NaN.
    """
    labels = np.asarray(labels)
    k = len(labels)
    t, p = encode_labels(np.asarray(y_true), labels), encode_labels(np.asarray(y_pred), labels)
    cells = t * k + p
    cm = np.bincount(cells, minlength=k * k).reshape(k, k)
    codes = group_codes(groups, len(t))
    boots = np.stack([np.bincount(cells[idx], minlength=k * k).reshape(k, k)
                      for idx in resample_groups(codes, n_boot, as_generator(random_state))])
    point, resampled = _rates(cm), _rates(boots)
    table = {}
    for rate in INTERVAL_RATES:
        summaries = [_summary(point[rate][j], resampled[rate][:, j], confidence)
                     for j in range(k)]
        table[rate] = [s["estimate"] for s in summaries]
        table[f"{rate}_low"] = [s["low"] for s in summaries]
        table[f"{rate}_high"] = [s["high"] for s in summaries]
    return pd.DataFrame(table, index=pd.Index(labels.tolist(), dtype=object, name="class"))


def _operating(y_true, proba, classes, groups, n_boot, confidence, seed) -> dict:
    """Sensitivity at specificity 0.8 and 0.9: melanoma, and malignant vs benign."""
    out: dict[str, pd.DataFrame | str] = {}
    for name, positive in (("melanoma (mel)", "mel"),
                           ("malignant vs benign (" + ", ".join(MALIGNANT) + ")", MALIGNANT)):
        try:
            out[name] = operating_points(
                y_true, proba, positive=positive, classes=classes, specificities=(0.8, 0.9),
                sensitivities=(), groups=groups, n_boot=n_boot, confidence=confidence,
                random_state=seed)
        except ValueError as exc:  # no mel column, or no positive / negative images
            out[name] = f"not available: {exc}"
    return out


def evaluate(y_true: Any, proba: Any, classes: Sequence, *, groups: Any = None,
             decision_labels: Any = None, n_boot: int = 1000, confidence: float = 0.95,
             random_state: int = 0, top_k: int = 8) -> Evaluation:
    """Measure everything the report shows, once, for the page and the text to lay out.

    The arguments are those of :func:`skderm.report.write_report`; ``top_k``
    is the number of top losses kept. Returns an :class:`Evaluation`.
    """
    y_true, proba, classes = check_scored(y_true, proba, classes)
    n = len(y_true)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must hold one lesion id per image ({n}), got shape "
                             f"{groups.shape}")
    if decision_labels is None:
        y_pred = classes[proba.argmax(axis=1)]
    else:
        y_pred = np.asarray(decision_labels)
        if y_pred.shape != (n,):
            raise ValueError(f"decision_labels must hold one label per image ({n}), got "
                             f"shape {y_pred.shape}")
    # the model's classes in its order, then any label only the decision or the truth has
    extra = sorted((set(y_true.tolist()) | set(y_pred.tolist())) - set(classes.tolist()), key=str)
    labels = np.asarray(classes.tolist() + extra, dtype=object)
    report = classification_report_frame(y_true, y_pred, proba, labels=labels, classes=classes)
    intervals = per_class_intervals(y_true, y_pred, labels=labels, groups=groups,
                                    n_boot=n_boot, confidence=confidence,
                                    random_state=random_state)
    per_class = report.loc[labels.tolist(), ["support", "f1", "auc"]].join(intervals)
    overall = bootstrap_report(y_true, y_pred, groups,
                               metrics=("balanced_accuracy", "mcc", "accuracy"),
                               n_boot=n_boot, confidence=confidence, random_state=random_state)
    calibration = {
        "ece": float(expected_calibration_error(y_true, proba, classes=classes)),
        "brier": float(brier_score(y_true, proba, classes=classes)),
    }
    ece_class = expected_calibration_error(y_true, proba, classes=classes, per_class=True)
    calibration["ece_per_class_mean"] = float(ece_class.mean())
    referral = {share: float(referral_balanced_accuracy(y_true, proba, classes=classes,
                                                        refer=share))
                for share in (0.1, 0.2, 0.3)}
    return Evaluation(
        y_true=y_true, proba=proba, classes=classes, y_pred=y_pred, groups=groups,
        per_class=per_class, overall=overall, calibration=calibration,
        ece_per_class=ece_class,
        operating=_operating(y_true, proba, classes, groups, n_boot, confidence, random_state),
        referral=referral, losses=top_losses(y_true, proba, classes=classes, k=top_k),
        confused=most_confused(y_true, y_pred).head(10), n_boot=n_boot, confidence=confidence,
        decided=decision_labels is not None)


def _cell(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def per_class_text(ev: Evaluation) -> pd.DataFrame:
    """The per-class table as strings ``estimate [low, high]``, for text and HTML."""
    rows = {}
    for label, r in ev.per_class.iterrows():
        rows[label] = {"support": str(int(r["support"])),
                       **{rate: _cell(r[rate], r[f"{rate}_low"], r[f"{rate}_high"])
                          for rate in INTERVAL_RATES},
                       "f1": "n/a" if not np.isfinite(r["f1"]) else f"{r['f1']:.3f}",
                       "auc": "n/a" if not np.isfinite(r["auc"]) else f"{r['auc']:.3f}"}
    return pd.DataFrame.from_dict(rows, orient="index")


def interval_note(ev: Evaluation) -> str:
    """How the intervals were made, in one phrase."""
    unit = "lesions" if ev.groups is not None else "images"
    return (f"{ev.confidence:.0%} intervals: percentile bootstrap, {ev.n_boot} resamples of "
            f"{unit}")


def format_summary(y_true: Any, proba: Any, classes: Sequence, *, groups: Any = None,
                   decision_labels: Any = None, n_boot: int = 1000, confidence: float = 0.95,
                   random_state: int = 0, evaluation: Evaluation | None = None) -> str:
    """The per-class table and the intervals as plain text, for a terminal.

    Pass ``evaluation`` (from :func:`evaluate`) to reuse numbers already
    measured; otherwise they are measured from the other arguments.
    """
    ev = evaluation if evaluation is not None else evaluate(
        y_true, proba, classes, groups=groups, decision_labels=decision_labels,
        n_boot=n_boot, confidence=confidence, random_state=random_state)
    n = len(ev.y_true)
    head = f"{n} images" + ("" if ev.groups is None else
                            f", {len(pd.unique(ev.groups))} lesions")
    lines = [head + f"; {interval_note(ev)}", "", per_class_text(ev).to_string(), ""]
    for name, r in ev.overall.iterrows():
        lines.append(f"{name:<18} {_cell(r['estimate'], r['low'], r['high'])}")
    cal = ev.calibration
    lines.append(f"{'ECE (top label)':<18} {cal['ece']:.4f}   mean per-class ECE "
                 f"{cal['ece_per_class_mean']:.4f}   Brier {cal['brier']:.4f}")
    for name, points in ev.operating.items():
        if isinstance(points, str):
            lines.append(f"{name}: {points}")
            continue
        for _, r in points.iterrows():
            lines.append(f"{name}: sensitivity at specificity >= {r['target']:.2f}: "
                         f"{_cell(r['estimate'], r['low'], r['high'])}")
    return "\n".join(lines) + "\n"
