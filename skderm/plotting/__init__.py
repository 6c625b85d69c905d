"""Figures for evaluating a lesion classifier.

Confusion matrices, learning curves, ROC and precision-recall curves, the
reliability diagram, the risk-coverage curve and sample-image grids, one
concept per module.

matplotlib is an optional dependency (``pip install 'skderm[plot]'``); it is
imported only when a function here is called. Figures are built as
``matplotlib.figure.Figure`` objects, not through pyplot's global state,
so they work headless (servers, CI, the ``skderm`` command) and are freed
when the last reference goes; nothing here opens a window. In a notebook,
display a returned figure by leaving it as the cell's last expression.
"""

from __future__ import annotations

from skderm.plotting.calibration import plot_reliability_diagram, plot_risk_coverage
from skderm.plotting.confusion import plot_confusion_matrices, plot_confusion_matrix
from skderm.plotting.curves import plot_precision_recall, plot_roc
from skderm.plotting.figure import save_figure
from skderm.plotting.gallery import plot_image_grid
from skderm.plotting.history import plot_learning_curves

__all__ = [
    "plot_confusion_matrix",
    "plot_confusion_matrices",
    "plot_learning_curves",
    "plot_roc",
    "plot_precision_recall",
    "plot_reliability_diagram",
    "plot_risk_coverage",
    "plot_image_grid",
    "save_figure",
]
