"""Figure plumbing shared by the plotting modules: creation without pyplot, saving.

matplotlib is imported only inside these functions, so importing
:mod:`skderm.plotting` never needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MISSING_MATPLOTLIB", "figure_and_axes", "new_figure", "require_matplotlib",
           "root_figure", "save_figure"]

#: The ImportError message when matplotlib is absent: it names the extra.
MISSING_MATPLOTLIB = "skderm.plotting needs matplotlib: pip install 'skderm[plot]'"


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A pyplot-free figure with constrained layout (no overlapping labels)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc
    return Figure(figsize=figsize, layout="constrained")


def require_matplotlib() -> None:
    """Raise an ImportError naming the extra when matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc


def root_figure(ax: Axes) -> Figure:
    """The top-level Figure holding ``ax`` (``ax.figure`` may be a SubFigure)."""
    try:
        return ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10 has no root=
        fig = ax.figure
        while getattr(fig, "figure", fig) is not fig:
            fig = fig.figure
        return fig


def figure_and_axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``size`` inches with one Axes."""
    if ax is None:
        fig = new_figure(size)
        return fig, fig.add_subplot()
    return root_figure(ax), ax


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
