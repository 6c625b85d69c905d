"""Figures for evaluating a lesion classifier: confusion matrices, learning
curves, ROC curves and sample-image grids.

matplotlib is an optional dependency (``pip install 'skderm[plot]'``); it is
imported only when a function here is called. Figures are built as
``matplotlib.figure.Figure`` objects, not through pyplot's global state,
so they work headless (servers, CI, the ``skderm`` command) and are freed
when the last reference goes; nothing here opens a window. In a notebook,
display a returned figure by leaving it as the cell's last expression.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skderm.metrics import _check_pair, _check_proba, _resolve_labels

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_confusion_matrix",
    "plot_confusion_matrices",
    "plot_learning_curves",
    "plot_roc",
    "plot_image_grid",
    "save_figure",
]

_MISSING_MPL = "skderm.plotting needs matplotlib: pip install 'skderm[plot]'"
_NORMALIZE = (None, "true", "pred", "all")
_CORRECT, _WRONG = "#1a7f37", "#cf222e"  # green / red, readable on white


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A pyplot-free figure with constrained layout (no overlapping labels)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_MISSING_MPL) from exc
    return Figure(figsize=figsize, layout="constrained")


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(_MISSING_MPL) from exc


def _root_figure(ax: Axes) -> Figure:
    """The top-level Figure holding ``ax`` (``ax.figure`` may be a SubFigure)."""
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10 has no root=
        fig = ax.figure
        while getattr(fig, "figure", fig) is not fig:
            fig = fig.figure
        return fig


# --------------------------------------------------------------------------
# confusion matrices
# --------------------------------------------------------------------------


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
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    labels : sequence, default=None
        Row and column order. Must contain every label of ``y_true`` and
        ``y_pred``; may add absent classes (e.g. ``DX_CLASSES``). Default:
        the sorted union of both.
    normalize : {None, "true", "pred", "all"}, default=None
        ``None`` shows counts; ``"true"`` divides each row by its class's
        count, so the diagonal is each class's recall (sensitivity), the view
        ISIC 2018 ranks by; ``"pred"`` divides columns, ``"all"`` the total.
    ax : matplotlib Axes, default=None
        Where to draw; ``None`` creates a new figure.
    title : str, default=None
        Axes title; ``None`` says what the numbers are.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the plot (``ax``'s figure when ``ax`` is given).
    """
    _require_matplotlib()
    y_true, y_pred = _check_pair(y_true, y_pred)
    labels = _resolve_labels(y_true, y_pred, labels)
    if ax is None:
        fig = _new_figure(_confusion_size(len(labels)))
        ax = fig.add_subplot()
    else:
        fig = _root_figure(ax)
    _draw_confusion(ax, y_true, y_pred, labels, normalize, title)
    return fig


def _confusion_size(n_labels: int) -> tuple[float, float]:
    side = max(4.0, 0.6 * n_labels + 2.0)
    return side + 1.0, side  # the extra inch is the colorbar


def plot_confusion_matrices(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Sequence | None = None,
) -> Figure:
    """Plot counts and the row-normalised confusion matrix side by side.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    labels : sequence, default=None
        Row and column order (see :func:`plot_confusion_matrix`).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: counts; right: rows normalised to sum to 1 (diagonal = recall).
    """
    _require_matplotlib()
    y_true, y_pred = _check_pair(y_true, y_pred)
    labels = _resolve_labels(y_true, y_pred, labels)
    width, height = _confusion_size(len(labels))
    fig = _new_figure((2 * width, height))
    left, right = fig.subplots(1, 2)
    _draw_confusion(left, y_true, y_pred, labels, None, "Counts")
    _draw_confusion(right, y_true, y_pred, labels, "true", "Row-normalised (recall)")
    return fig


# --------------------------------------------------------------------------
# learning curves
# --------------------------------------------------------------------------

_LOSS_KEYS = {"train_loss": "train loss", "valid_loss": "valid loss"}
_SCORE_KEYS = {"valid_bacc": "valid balanced accuracy", "valid_mcc": "valid MCC"}


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
    _require_matplotlib()
    from matplotlib.ticker import MaxNLocator

    rows = _history_rows(history)
    epochs = _column(rows, "epoch")
    if epochs is None or np.isnan(epochs).any():
        epochs = np.arange(1, len(rows) + 1, dtype=float)
    if ax is None:
        fig = _new_figure((11.0, 4.0))
        loss_ax, score_ax = fig.subplots(1, 2)
    else:
        loss_ax, score_ax = _two_axes(ax)
        fig = _root_figure(loss_ax)

    panels = [a for a, keys, name in ((loss_ax, _LOSS_KEYS, "loss"),
                                      (score_ax, _SCORE_KEYS, "score"))
              if _draw_curves(a, epochs, rows, keys, name)]
    loss_ax.set_title("Loss")
    score_ax.set_title("Validation scores")

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


# --------------------------------------------------------------------------
# ROC curves
# --------------------------------------------------------------------------


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
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities (``model.predict_proba(X)``).
    classes : sequence
        Class of each column of ``y_proba``, as ``model.classes_``.
    ax : matplotlib Axes, default=None
        Where to draw; ``None`` creates a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One curve per class present in ``y_true`` (a class with no positive
        sample has no ROC curve and is left out of the legend). The title
        gives the macro-average AUC over the plotted classes.
    """
    _require_matplotlib()
    from sklearn.metrics import roc_auc_score, roc_curve

    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D (one label per sample), got shape {y_true.shape}")
    classes = np.asarray(classes)
    proba = _check_proba(y_proba, len(y_true), classes)
    unknown = np.setdiff1d(np.unique(y_true), classes)
    if len(unknown):
        raise ValueError(
            f"y_true holds {unknown.tolist()}, not in classes={classes.tolist()}: classes must "
            "name the column of y_proba for every true label (use model.classes_)"
        )
    plotted = [j for j, c in enumerate(classes) if 0 < np.sum(y_true == c) < len(y_true)]
    if not plotted:
        raise ValueError(
            f"y_true holds only {np.unique(y_true).tolist()}: ROC curves need samples of at "
            "least two classes"
        )

    if ax is None:
        fig = _new_figure((6.0, 5.5))
        ax = fig.add_subplot()
    else:
        fig = _root_figure(ax)
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


# --------------------------------------------------------------------------
# image grid
# --------------------------------------------------------------------------


def _paths_of(X: Any, path_column: str) -> np.ndarray:
    columns = getattr(X, "columns", None)
    if columns is None:
        return np.asarray(X, dtype=object).ravel()
    if path_column not in columns:
        raise ValueError(
            f"X has no column {path_column!r} (columns: {list(columns)}): pass "
            "path_column= naming the column of image paths"
        )
    return X[path_column].to_numpy(dtype=object)


def _check_labels(y: Any, n: int, name: str) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must be 1-D with one label per row of X ({n}), got shape "
                         f"{y.shape}")
    return y


def _sample_rows(keys: np.ndarray, per_class: int, rng: np.random.Generator):
    """``(class, row indices)`` for each class, at most ``per_class`` rows, in row order."""
    out = []
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        take = rng.choice(rows, size=min(per_class, len(rows)), replace=False)
        out.append((key, np.sort(take)))
    return out


def plot_image_grid(
    X: Any,
    y_true: Any | None = None,
    y_pred: Any | None = None,
    *,
    per_class: int = 4,
    path_column: str = "path",
    image_size: tuple[int, int] = (150, 200),
    random_state: int | None = 0,
) -> Figure:
    """Show a few images of each class, one row per class.

    Parameters
    ----------
    X : DataFrame or sequence of str
        Images: a frame with a ``path_column`` column, or the paths themselves.
    y_true : array-like of shape (n_samples,), default=None
        True labels; rows of the grid are their classes.
    y_pred : array-like of shape (n_samples,), default=None
        Predicted labels. With ``y_true``, each image is titled
        ``"true / pred"`` in green when they agree and red when not.
        Without ``y_true``, rows are the predicted classes.
    per_class : int, default=4
        Images drawn (at random, without replacement) per class; fewer when
        a class has fewer.
    path_column : str, default="path"
        Column of ``X`` holding image paths.
    image_size : (height, width), default=(150, 200)
        Size images are decoded to (HAM10000's own size by default).
    random_state : int or None, default=0
        Seed of the sample; the same seed shows the same images.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``per_class`` columns and one row per class (a single unlabelled row
        when neither ``y_true`` nor ``y_pred`` is given).
    """
    _require_matplotlib()
    from skderm.images import load_images

    if not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    paths = _paths_of(X, path_column)
    if len(paths) == 0:
        raise ValueError("X is empty: need at least one image")
    y_true = _check_labels(y_true, len(paths), "y_true")
    y_pred = _check_labels(y_pred, len(paths), "y_pred")
    keys = y_true if y_true is not None else y_pred
    if keys is None:
        keys = np.full(len(paths), "", dtype=object)

    groups = _sample_rows(keys, int(per_class), np.random.default_rng(random_state))
    height, width = image_size
    cell_w = 2.2
    fig = _new_figure((cell_w * per_class + 0.6, len(groups) * (cell_w * height / width + 0.45)))
    axes = np.atleast_2d(fig.subplots(len(groups), per_class, squeeze=False))
    chosen = np.concatenate([rows for _, rows in groups])
    images = dict(zip(chosen.tolist(), load_images(paths[chosen], image_size), strict=True))

    for r, (key, rows) in enumerate(groups):
        axes[r, 0].set_ylabel(str(key), fontsize="large")
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(rows):
                ax.set_frame_on(False)
                continue
            i = int(rows[c])
            ax.imshow(images[i])
            _title_cell(ax, None if y_true is None else y_true[i],
                        None if y_pred is None else y_pred[i])
    return fig


def _title_cell(ax: Axes, true: Any, pred: Any) -> None:
    if pred is None:
        return  # the row label already names the class
    if true is None:
        ax.set_title(f"pred {pred}", fontsize="small")
        return
    ax.set_title(f"{true} / {pred}", fontsize="small",
                 color=_CORRECT if true == pred else _WRONG)


# --------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 100) -> str:
    """Write a figure to a PNG file, creating missing parent folders.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    path : str or path-like
        Output file; it must end in ``.png`` or have no suffix (then
        ``.png`` is added).
    dpi : int, default=100
        Pixels per inch: the image is ``fig.get_size_inches() * dpi`` pixels.

    Returns
    -------
    path : str
        The file written.
    """
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(".png")
    elif path.suffix.lower() != ".png":
        raise ValueError(
            f"save_figure writes PNG files, but path={str(path)!r} ends in {path.suffix!r}: "
            "use a .png name, or call fig.savefig() for other formats"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return str(path)
