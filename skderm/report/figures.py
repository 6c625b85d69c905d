"""The report's figures, each rendered to PNG bytes so the page can inline it.

Built on :mod:`skderm.plotting`; the gallery of top losses draws each image
with its saliency map over it when a saliency function is given.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from skderm.plotting import (
    plot_confusion_matrices,
    plot_precision_recall,
    plot_reliability_diagram,
    plot_risk_coverage,
    plot_roc,
)
from skderm.plotting.figure import new_figure

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from matplotlib.figure import Figure

    from skderm.report.tables import Evaluation

__all__ = ["png_data_uri", "report_figures", "plot_top_losses"]

#: Size the gallery decodes images to (HAM10000's aspect ratio).
GALLERY_IMAGE_SIZE = (150, 200)


def png_data_uri(fig: Figure, *, dpi: int = 90) -> str:
    """``data:image/png;base64,...`` of a figure: an image the page carries inside itself."""
    buffer = io.BytesIO()
    # no "Software" text chunk: the page should name no URL, even inside an image
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _overlay(ax, image: np.ndarray, saliency: np.ndarray) -> None:
    """The image, and the saliency map resized to it in a translucent heat colour map."""
    from skderm.images import resize_array

    smap = np.asarray(saliency, dtype=float)
    if smap.ndim != 2:
        raise ValueError(f"saliency must return one 2-D map per image, got shape {smap.shape}")
    span = np.ptp(smap)
    smap = (smap - smap.min()) / span if span > 0 else np.zeros_like(smap)
    # resize as an 8-bit grey image: the one resizer skderm has
    grey = np.repeat((smap * 255).astype(np.uint8)[..., None], 3, axis=2)
    smap = resize_array(grey, image.shape[:2])[..., 0] / 255.0
    ax.imshow(image)
    ax.imshow(smap, cmap="jet", alpha=0.4, vmin=0.0, vmax=1.0)


def plot_top_losses(paths: Sequence[str], losses, *,
                    saliency: Callable[[list[str]], Sequence[np.ndarray]] | None = None,
                    columns: int = 4) -> Figure:
    """The most confidently wrong images, titled ``true / predicted (p)``, saliency over them."""
    from skderm.images import load_images

    rows = list(losses.index)
    chosen = [str(paths[i]) for i in rows]
    images = load_images(chosen, GALLERY_IMAGE_SIZE)
    maps = None
    if saliency is not None:
        maps = list(saliency(chosen))
        if len(maps) != len(chosen):
            raise ValueError(f"saliency returned {len(maps)} maps for {len(chosen)} images; "
                             "it must return one map per path")
    n_rows = -(-len(rows) // columns)
    height, width = GALLERY_IMAGE_SIZE
    fig = new_figure((2.4 * columns, n_rows * (2.4 * height / width + 0.5)))
    axes = np.atleast_2d(fig.subplots(n_rows, columns, squeeze=False)).ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for j, (ax, (_, row)) in enumerate(zip(axes, losses.iterrows(), strict=False)):
        if maps is None:
            ax.imshow(images[j])
        else:
            _overlay(ax, images[j], maps[j])
        ax.set_title(f"{row['true']} / {row['pred']} ({row['p_pred']:.2f})", fontsize="medium")
    return fig


def report_figures(ev: Evaluation, *, images: Sequence[str] | None = None,
                   saliency: Callable | None = None) -> dict[str, tuple[str, str]]:
    """Every figure of the report: ``name -> (data URI, caption)``, in page order."""
    labels = ev.per_class.index.tolist()
    figures: dict[str, tuple[Any, str]] = {
        "confusion": (plot_confusion_matrices(ev.y_true, ev.y_pred, labels=labels),
                      "Confusion matrices of the decisions: counts, and rows normalised "
                      "(the diagonal is each class's recall)."),
        "roc": (plot_roc(ev.y_true, ev.proba, classes=ev.classes),
                "One-vs-rest ROC curves with each class's AUC."),
        "pr": (plot_precision_recall(ev.y_true, ev.proba, classes=ev.classes),
               "One-vs-rest precision-recall curves: they show what ROC hides for the rare "
               "classes."),
        "reliability": (plot_reliability_diagram(ev.y_true, ev.proba, classes=ev.classes),
                        "Reliability diagram of the top-label probability: a calibrated "
                        "model lies on the diagonal."),
        "risk_coverage": (plot_risk_coverage(ev.y_true, ev.proba, classes=ev.classes),
                          "Risk-coverage: error rate on the images kept when the least "
                          "confident are referred."),
    }
    if images is not None and ev.losses is not None and len(ev.losses):
        figures["top_losses"] = (
            plot_top_losses(images, ev.losses, saliency=saliency),
            "Top losses: the most confidently wrong images, titled true / predicted "
            "(the argmax of the probabilities, with its probability)"
            + (", with the model's saliency map over each." if saliency is not None
               else "."))
    return {name: (png_data_uri(fig), caption) for name, (fig, caption) in figures.items()}
