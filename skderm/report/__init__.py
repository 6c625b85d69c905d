"""The evaluation report: one self-contained HTML page, and its text for a terminal.

:func:`write_report` measures a model's predictions on held-out images and
writes ``report.html``: the per-class table with lesion-bootstrap intervals,
confusion matrices, ROC and precision-recall curves, the reliability diagram,
risk-coverage, operating points, the top losses and most-confused pairs, the
model's settings, a data summary and a model card. Every figure is inlined as
a PNG data URI; the page loads nothing from anywhere else and runs no script.
:func:`format_summary` gives the per-class table and the intervals as text.

Modules: :mod:`~skderm.report.tables` (the numbers),
:mod:`~skderm.report.figures` (the figures), :mod:`~skderm.report.page`
(the HTML).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skderm._utils.files import atomic_write
from skderm._utils.paths import check_output_path
from skderm.exceptions import OutputPathError
from skderm.report.figures import report_figures
from skderm.report.page import GENERATOR, INTENDED_USE, KNOWN_LIMITS, render_page
from skderm.report.tables import Evaluation, evaluate, format_summary

__all__ = ["write_report", "format_summary", "evaluate", "Evaluation", "INTENDED_USE",
           "KNOWN_LIMITS", "REPORT_NAME"]

#: The file :func:`write_report` writes into its folder.
REPORT_NAME = "report.html"


def _check_replaceable(path: Path) -> None:
    """Refuse to replace a file that is not a report skderm wrote."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace")
    if f'<meta name="generator" content="{GENERATOR}">' not in head:
        raise OutputPathError(f"{str(path)!r} exists and is not a skderm report; move it away "
                              "or choose another out_dir")


def write_report(
    out_dir: str | os.PathLike,
    *,
    y_true: Any,
    proba: Any,
    classes: Sequence,
    groups: Any = None,
    images: Sequence[str | os.PathLike] | None = None,
    model_info: Mapping[str, Any] | None = None,
    data_summary: Mapping[str, Any] | None = None,
    saliency: Callable[[list[str]], Sequence[np.ndarray]] | None = None,
    decision_labels: Any = None,
    n_boot: int = 1000,
    random_state: int = 0,
    title: str = "skderm evaluation report",
) -> Path:
    """Write ``out_dir/report.html`` for predictions on held-out images; return its path.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to write into (created if missing). An existing
        ``report.html`` is replaced only if skderm wrote it.
    y_true : array-like of shape (n_images,)
        True labels.
    proba : array-like of shape (n_images, n_classes)
        Predicted probabilities; column ``j`` belongs to ``classes[j]``.
    classes : sequence
        The class of each column (``model.classes_``).
    groups : array-like of shape (n_images,), default=None
        Lesion ids: intervals then resample whole lesions.
    images : sequence of paths, default=None
        The image of each row, for the top-losses gallery; ``None``: no gallery.
    model_info : mapping, default=None
        The model's settings, shown as a table; the keys ``training_data``,
        ``recipe`` and ``limits`` (a list) also fill the model card.
    data_summary : mapping, default=None
        What the evaluation data are, shown as a table; the key ``protocol``
        (how the images were held out) goes to the model card.
    saliency : callable, default=None
        ``saliency(paths) -> maps``, one 2-D map per path (any size), drawn over
        the gallery images; ``None`` draws the images alone.
    decision_labels : array-like of shape (n_images,), default=None
        The labels the model decided, when its decision rule is not the
        argmax of ``proba`` (pooling, thresholds); the tables and confusion
        matrices use them.
    n_boot : int, default=1000
        Bootstrap resamples of each interval.
    random_state : int, default=0
        Seed of the resamples.
    title : str, default="skderm evaluation report"

    Returns
    -------
    path : pathlib.Path
        The report written.
    """
    out = check_output_path(out_dir, kind="dir", what="report folder")
    # only report.html is written: images may live in out_dir, but never under that name
    target = check_output_path(out / REPORT_NAME, kind="file",
                               inputs=() if images is None else images, what="report")
    _check_replaceable(target)
    if images is not None and len(images) != len(np.asarray(y_true)):
        raise ValueError(f"images must hold one path per row of y_true ({len(np.asarray(y_true))})"
                         f", got {len(images)}")
    ev = evaluate(y_true, proba, classes, groups=groups, decision_labels=decision_labels,
                  n_boot=n_boot, random_state=random_state)
    paths = None if images is None else [os.fspath(p) for p in images]
    figures = report_figures(ev, images=paths, saliency=saliency)
    page = render_page(ev, figures, model_info=dict(model_info or {}),
                       data_summary=dict(data_summary or {}), title=title, images=paths)
    with atomic_write(target, "wb") as fh:
        fh.write(page.encode("utf-8"))
    return target
