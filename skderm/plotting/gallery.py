"""Grids of sample images, titled with their true and predicted classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from skderm.plotting.figure import new_figure, require_matplotlib

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_image_grid"]

_CORRECT, _WRONG = "#1a7f37", "#cf222e"  # green / red, readable on white


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
    require_matplotlib()
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
    fig = new_figure((cell_w * per_class + 0.6, len(groups) * (cell_w * height / width + 0.45)))
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
