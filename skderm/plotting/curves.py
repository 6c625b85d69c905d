"""Ranking curves from probabilities: ROC and precision-recall, one per class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from skderm._utils.docs import fill_doc
from skderm.metrics.validation import check_scored
from skderm.plotting.figure import figure_and_axes, require_matplotlib

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_roc", "plot_precision_recall"]


def _one_vs_rest_input(y_true, y_proba, classes, what: str):
    """Checked input and the columns of the classes that have a curve (positives and
    negatives both present)."""
    y_true, proba, classes = check_scored(y_true, y_proba, classes)
    plotted = [j for j, c in enumerate(classes) if 0 < np.sum(y_true == c) < len(y_true)]
    if not plotted:
        raise ValueError(
            f"y_true holds only {np.unique(y_true).tolist()}: {what} curves need samples of at "
            "least two classes"
        )
    return y_true, proba, classes, plotted


@fill_doc
def plot_roc(
    y_true: Any,
    y_proba: Any,
    *,
    classes: Sequence,
    ax: Axes | None = None,
) -> Figure:
    """Plot one-vs-rest ROC curves, one per class, with each class's AUC.

    Parameters
    ----------
    %(curves)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        One curve per class present in ``y_true`` (a class with no positive
        sample has no ROC curve and is left out of the legend). The title
        gives the macro-average AUC over the plotted classes.
    """
    require_matplotlib()
    from sklearn.metrics import roc_auc_score, roc_curve

    y_true, proba, classes, plotted = _one_vs_rest_input(y_true, y_proba, classes, "ROC")
    fig, ax = figure_and_axes(ax, (6.0, 5.5))
    aucs = []
    for j in plotted:
        positives = y_true == classes[j]
        fpr, tpr, _ = roc_curve(positives, proba[:, j])
        auc = roc_auc_score(positives, proba[:, j])
        aucs.append(auc)
        ax.plot(fpr, tpr, linewidth=1.5, label=f"{classes[j]} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="_chance")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal",
           xlabel="false positive rate (1 - specificity)",
           ylabel="true positive rate (sensitivity)")
    ax.set_title(f"ROC, one-vs-rest (macro AUC {np.mean(aucs):.3f})")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


@fill_doc
def plot_precision_recall(
    y_true: Any,
    y_proba: Any,
    *,
    classes: Sequence,
    ax: Axes | None = None,
) -> Figure:
    """Plot one-vs-rest precision-recall curves, one per class, with average precision.

    For a rare class (df, vasc make up about 1% of HAM10000 each) the ROC
    curve looks good even when most positive calls are wrong; precision
    shows it, so the two belong side by side.

    Parameters
    ----------
    %(curves)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        One curve per class present in ``y_true``, labelled with its average
        precision (AP) and its prevalence, the precision of a random ranking.
        The title gives the macro-average AP over the plotted classes.
    """
    require_matplotlib()
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y_true, proba, classes, plotted = _one_vs_rest_input(y_true, y_proba, classes,
                                                         "precision-recall")
    fig, ax = figure_and_axes(ax, (6.0, 5.5))
    aps = []
    for j in plotted:
        positives = y_true == classes[j]
        precision, recall, _ = precision_recall_curve(positives, proba[:, j])
        ap = average_precision_score(positives, proba[:, j])
        aps.append(ap)
        ax.step(recall, precision, where="post", linewidth=1.5,
                label=f"{classes[j]} (AP {ap:.3f}, prevalence {positives.mean():.3f})")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal",
           xlabel="recall (sensitivity)", ylabel="precision")
    ax.set_title(f"Precision-recall, one-vs-rest (macro AP {np.mean(aps):.3f})")
    ax.legend(loc="lower left", fontsize="small")
    ax.grid(alpha=0.3)
    return fig
