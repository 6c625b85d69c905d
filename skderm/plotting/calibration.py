"""How sure and how right: the reliability diagram and the risk-coverage curve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from skderm._utils.docs import fill_doc
from skderm.metrics.abstention import risk_coverage_curve
from skderm.metrics.calibration import expected_calibration_error, reliability_curve
from skderm.plotting.figure import figure_and_axes, require_matplotlib

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_reliability_diagram", "plot_risk_coverage"]


@fill_doc
def plot_reliability_diagram(
    y_true: Any,
    y_proba: Any,
    *,
    classes: Sequence | None = None,
    n_bins: int = 15,
    label: Any = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot accuracy against confidence per bin: a calibrated model lies on the diagonal.

    Parameters
    ----------
    %(scored)s
    n_bins : int, default=15
        Equal-width confidence bins (:func:`skderm.metrics.reliability_curve`).
    label : class label, default=None
        ``None`` for the top label, or one class's one-vs-rest probability.
    %(ax)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        Bars of each non-empty bin's accuracy at its mean confidence, the
        diagonal, and the share of samples per bin as a grey histogram
        underneath; the title gives the ECE.
    """
    require_matplotlib()
    curve = reliability_curve(y_true, y_proba, classes=classes, n_bins=n_bins, label=label)
    ece = expected_calibration_error(y_true, y_proba, classes=classes, n_bins=n_bins,
                                     per_class=label is not None)
    if label is not None:
        ece = ece.loc[label]
    what = "top label" if label is None else f"{label} vs rest"
    fig, ax = figure_and_axes(ax, (5.5, 5.5))
    width = curve["bin_high"] - curve["bin_low"]
    share = curve["count"] / curve["count"].sum()
    ax.bar(curve["bin_low"], share, width=width, align="edge", color="0.85",
           edgecolor="0.6", label="share of samples")
    filled = curve[curve["count"] > 0]
    ax.bar(filled["bin_low"], filled["accuracy"], width=width[filled.index], align="edge",
           color="#4c72b0", alpha=0.7, edgecolor="#2d4a7a", label="accuracy")
    ax.plot(filled["confidence"], filled["accuracy"], "o", color="#2d4a7a", markersize=3,
            label="_mean confidence")
    ax.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1, label="calibrated")
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="confidence",
           ylabel="accuracy" if label is None else f"share of {label}")
    ax.set_title(f"Reliability ({what}, ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize="small")
    return fig


@fill_doc
def plot_risk_coverage(
    y_true: Any,
    y_proba: Any,
    *,
    classes: Sequence | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot error rate and balanced accuracy against the share of images the model keeps.

    The images kept are the most confident ones; the rest would be referred
    to a dermatologist (:func:`skderm.metrics.referral_balanced_accuracy`).

    Parameters
    ----------
    %(scored)s
    %(ax)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        Risk (error rate) and balanced accuracy of the kept images against
        coverage; the title gives the area under the risk-coverage curve
        (lower is better).
    """
    require_matplotlib()
    curve = risk_coverage_curve(y_true, y_proba, classes=classes)
    fig, ax = figure_and_axes(ax, (6.0, 4.5))
    ax.plot(curve["coverage"], curve["risk"], linewidth=1.5, label="risk (error rate)")
    ax.plot(curve["coverage"], curve["balanced_accuracy"], linewidth=1.5,
            label="balanced accuracy")
    ax.set(xlim=(0, 1), ylim=(-0.01, 1.01), xlabel="coverage (share of images kept)",
           ylabel="on the kept images")
    ax.set_title(f"Risk-coverage (area {np.mean(curve['risk']):.3f})")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return fig
