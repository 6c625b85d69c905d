"""Learning curves: loss and validation scores per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from skderm.plotting.figure import new_figure, require_matplotlib, root_figure

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_learning_curves"]

_LOSS_KEYS = {"train_loss": "train loss", "valid_loss": "valid loss"}
_SCORE_KEYS = {"valid_bacc": "valid balanced accuracy", "valid_mcc": "valid MCC",
               "train_bacc": "balanced accuracy on clean training images"}


def _history_rows(history: Any) -> list[dict]:
    """Per-epoch dicts from a fitted net, a skorch History or a list of dicts."""
    if hasattr(history, "module_") or hasattr(history, "initialize"):
        net = history
        history = getattr(net, "history_", None)
        if history is None:
            raise ValueError(
                f"{type(net).__name__} has no history: fit it before plotting learning curves"
            )
    if isinstance(history, dict) or not isinstance(history, Sequence):
        raise TypeError(
            "history must be a fitted LesionClassifier, its history_ or a list of per-epoch "
            f"dicts, got {type(history).__name__}"
        )
    rows = list(history)
    if not rows:
        raise ValueError("history is empty: fit the classifier for at least one epoch")
    return rows


def _column(rows: list[dict], key: str) -> np.ndarray | None:
    """Values of ``key`` per epoch as floats (NaN where missing); None if absent."""
    if not any(key in row for row in rows):
        return None
    values = [row.get(key) for row in rows]
    return np.array([np.nan if v is None else float(v) for v in values])


def plot_learning_curves(history: Any, *, ax: Sequence[Axes] | None = None) -> Figure:
    """Plot loss and validation scores per epoch.

    Parameters
    ----------
    history : LesionClassifier, skorch History or list of dict
        A fitted classifier (its ``history_`` is used) or the per-epoch
        records themselves, with keys among ``epoch``, ``train_loss``,
        ``valid_loss``, ``valid_bacc`` and ``valid_mcc``. Absent keys are
        skipped: a model fitted with ``valid_size=None`` has training loss
        only.
    ax : pair of matplotlib Axes, default=None
        Where to draw the loss and the scores; ``None`` creates a figure
        with two panels side by side.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left panel: train and valid loss; right panel: valid balanced
        accuracy and MCC. When ``valid_bacc`` is recorded, a dashed vertical
        line marks the epoch with the best balanced accuracy on both panels.
    """
    require_matplotlib()
    from matplotlib.ticker import MaxNLocator

    rows = _history_rows(history)
    epochs = _column(rows, "epoch")
    if epochs is None or np.isnan(epochs).any():
        epochs = np.arange(1, len(rows) + 1, dtype=float)
    if ax is None:
        fig = new_figure((11.0, 4.0))
        loss_ax, score_ax = fig.subplots(1, 2)
    else:
        loss_ax, score_ax = _two_axes(ax)
        fig = root_figure(loss_ax)

    panels = [a for a, keys, name in ((loss_ax, _LOSS_KEYS, "loss"),
                                      (score_ax, _SCORE_KEYS, "score"))
              if _draw_curves(a, epochs, rows, keys, name)]
    loss_ax.set_title("Loss")
    score_ax.set_title("Scores")

    bacc = _column(rows, "valid_bacc")
    if bacc is not None and not np.isnan(bacc).all():
        best = int(np.nanargmax(bacc))
        label = f"best epoch {epochs[best]:g} (bacc {bacc[best]:.3f})"
        for a in panels:
            a.axvline(epochs[best], color="0.4", linestyle="--", linewidth=1,
                      label=label if a is score_ax else "_best")
        score_ax.legend(loc="best", fontsize="small")
    for a in panels:
        a.set_xlabel("epoch")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.grid(alpha=0.3)
    return fig


def _two_axes(ax: Any) -> tuple[Axes, Axes]:
    try:
        loss_ax, score_ax = np.ravel(np.asarray(ax, dtype=object))
    except ValueError:
        raise ValueError(
            "ax must be a pair of Axes (loss, scores), e.g. fig.subplots(1, 2); "
            f"got {ax!r}"
        ) from None
    return loss_ax, score_ax


def _draw_curves(ax: Axes, epochs: np.ndarray, rows, keys: dict[str, str], ylabel: str) -> int:
    """Plot the recorded ``keys``; return how many curves were drawn."""
    drawn = 0
    for key, label in keys.items():
        values = _column(rows, key)
        if values is None or np.isnan(values).all():
            continue
        ax.plot(epochs, values, marker="o", markersize=3, label=label)
        drawn += 1
    if drawn:
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize="small")
    else:
        # an empty panel with 0..1 ticks reads as "scores were 0": say why instead
        hint = "\n(fitted with valid_size=None?)" if ylabel == "score" else ""
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, f"no {ylabel} recorded{hint}", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
    return drawn
