"""Confusion matrices, true classes as rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from skderm._utils.docs import fill_doc
from skderm.metrics.validation import check_pair, resolve_labels
from skderm.plotting.figure import figure_and_axes, new_figure, require_matplotlib

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_confusion_matrix", "plot_confusion_matrices"]

_NORMALIZE = (None, "true", "pred", "all")


def _draw_confusion(ax: Axes, y_true, y_pred, labels, normalize, title) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    if normalize not in _NORMALIZE:
        raise ValueError(
            f"normalize={normalize!r} is not supported: use None (counts), 'true' "
            "(rows sum to 1: per-class recall), 'pred' or 'all'"
        )
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        normalize=normalize,
        ax=ax,
        cmap="Blues",
        colorbar=True,
        values_format="d" if normalize is None else ".2f",
        xticks_rotation=45,
    )
    # rotated labels read best when anchored at their right end
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
        tick.set_rotation_mode("anchor")
    if title is None:
        title = "Confusion matrix (counts)" if normalize is None else (
            "Confusion matrix (row-normalised: recall)" if normalize == "true"
            else f"Confusion matrix (normalize={normalize!r})"
        )
    ax.set_title(title)


@fill_doc
def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence | None = None,
    normalize: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Plot a confusion matrix with true classes as rows.

    Parameters
    ----------
    %(y_true)s
    %(y_pred)s
    labels : sequence, default=None
        Row and column order. Must contain every label of ``y_true`` and
        ``y_pred``; may add absent classes (e.g. ``DX_CLASSES``). Default:
        the sorted union of both.
    normalize : {None, "true", "pred", "all"}, default=None
        ``None`` shows counts; ``"true"`` divides each row by its class's
        count, so the diagonal is each class's recall (sensitivity), the view
        ISIC 2018 ranks by; ``"pred"`` divides columns, ``"all"`` the total.
    %(ax)s
    title : str, default=None
        Axes title; ``None`` says what the numbers are.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the plot (``ax``'s figure when ``ax`` is given).
    """
    require_matplotlib()
    y_true, y_pred = check_pair(y_true, y_pred)
    labels = resolve_labels(y_true, y_pred, labels)
    fig, ax = figure_and_axes(ax, _confusion_size(len(labels)))
    _draw_confusion(ax, y_true, y_pred, labels, normalize, title)
    return fig


def _confusion_size(n_labels: int) -> tuple[float, float]:
    side = max(4.0, 0.6 * n_labels + 2.0)
    return side + 1.0, side  # the extra inch is the colorbar


@fill_doc
def plot_confusion_matrices(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence | None = None,
) -> Figure:
    """Plot counts and the row-normalised confusion matrix side by side.

    Parameters
    ----------
    %(y_true)s
    %(y_pred)s
    labels : sequence, default=None
        Row and column order (see :func:`plot_confusion_matrix`).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: counts; right: rows normalised to sum to 1 (diagonal = recall).
    """
    require_matplotlib()
    y_true, y_pred = check_pair(y_true, y_pred)
    labels = resolve_labels(y_true, y_pred, labels)
    width, height = _confusion_size(len(labels))
    fig = new_figure((2 * width, height))
    left, right = fig.subplots(1, 2)
    _draw_confusion(left, y_true, y_pred, labels, None, "Counts")
    _draw_confusion(right, y_true, y_pred, labels, "true", "Row-normalised (recall)")
    return fig
