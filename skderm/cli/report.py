"""The report folder of evaluate and demo: metrics.json, report.csv and PNG plots."""

from __future__ import annotations

import importlib
import json
import math
import os

from skderm._utils.files import atomic_write

__all__ = ["metrics_dict", "plotting_or_none", "write_report"]


def _number(value):
    value = float(value)
    return None if math.isnan(value) else value


def metrics_dict(report, n_images: int) -> dict:
    """The overall scores and per-class recall, specificity, AUC and support."""
    overall = ("balanced_accuracy", "mcc", "accuracy")
    per_class = [i for i in report.index if i not in overall + ("macro avg", "weighted avg")]
    out = {name: _number(report.loc[name, "value"]) for name in overall}
    out["n_images"] = int(n_images)
    out["per_class"] = {str(c): {col: _number(report.loc[c, col])
                                 for col in ("recall", "specificity", "auc")}
                        | {"support": int(report.loc[c, "support"])}
                        for c in per_class}
    return out


def plotting_or_none(log):
    """skderm.plotting, or None (with a one-line notice) when it or matplotlib is missing."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only: never open a window
    try:
        return importlib.import_module("skderm.plotting")
    except ImportError as exc:
        log(f"note: no plots ({exc}); install matplotlib for PNGs")
        return None


def write_report(out, y_true, y_pred, proba, classes, report, log) -> list[str]:
    """Write the report files into folder ``out``; return the names written."""
    metrics = metrics_dict(report, len(y_true))
    with atomic_write(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(metrics, fh, indent=2)
    with atomic_write(os.path.join(out, "report.csv"), "w") as fh:
        report.to_csv(fh, index_label="label")
    written = ["metrics.json", "report.csv"]
    plotting = plotting_or_none(log)
    if plotting is not None:
        labels = sorted(set(y_true) | set(classes))
        fig = plotting.plot_confusion_matrices(y_true, y_pred, labels=labels)
        plotting.save_figure(fig, os.path.join(out, "confusion_matrix.png"))
        fig = plotting.plot_roc(y_true, proba, classes=classes)
        plotting.save_figure(fig, os.path.join(out, "roc.png"))
        written += ["confusion_matrix.png", "roc.png"]
    return written
