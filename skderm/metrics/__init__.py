"""Scores, reports, intervals and calibration for the predictions of any classifier.

Everything here is plain numpy / pandas / scikit-learn, so it works on the
predictions of any model. One concept per module:

- :mod:`~skderm.metrics.report`: the per-class table and specificity;
- :mod:`~skderm.metrics.scorers`: :func:`get_scorers`, the one source of
  ``scoring=`` dicts;
- :mod:`~skderm.metrics.bootstrap`: lesion-grouped bootstrap intervals;
- :mod:`~skderm.metrics.calibration`: calibration error, Brier score and
  reliability-diagram data; :mod:`~skderm.metrics.temperature`: temperature
  scaling on a lesion-grouped held-out part;
- :mod:`~skderm.metrics.abstention`: risk-coverage and referral;
- :mod:`~skderm.metrics.operating_points`: sensitivity at a fixed
  specificity and the reverse, per class or malignant vs benign;
- :mod:`~skderm.metrics.interpretation`: top losses and most-confused pairs.

Conventions
-----------
- An undefined ratio (``0 / 0``) is ``NaN``, never ``0``: a class that is
  never predicted has NaN precision, a class absent from ``y_true`` has NaN
  recall. Averages skip NaN. This matches scikit-learn's
  ``precision_recall_fscore_support(..., zero_division=np.nan)``.
- Class labels may be strings or integers; rows and scorers are keyed by the
  label itself (``report.loc["mel", "recall"]``).
- Functions taking probabilities take ``classes``, the class of each column
  (``model.classes_``); by default the sorted labels of ``y_true``.
"""

from __future__ import annotations

from skderm.metrics.abstention import referral_balanced_accuracy, risk_coverage_curve
from skderm.metrics.bootstrap import bootstrap_ci, bootstrap_report
from skderm.metrics.calibration import brier_score, expected_calibration_error, reliability_curve
from skderm.metrics.interpretation import most_confused, top_losses
from skderm.metrics.operating_points import (
    MALIGNANT,
    operating_points,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
)
from skderm.metrics.report import (
    REPORT_COLUMNS,
    classification_report_frame,
    specificity_score,
)
from skderm.metrics.scorers import get_scorers
from skderm.metrics.temperature import TemperatureScaledClassifier

__all__ = [
    "REPORT_COLUMNS",
    "classification_report_frame",
    "specificity_score",
    "get_scorers",
    "bootstrap_ci",
    "bootstrap_report",
    "expected_calibration_error",
    "brier_score",
    "reliability_curve",
    "TemperatureScaledClassifier",
    "risk_coverage_curve",
    "referral_balanced_accuracy",
    "MALIGNANT",
    "sensitivity_at_specificity",
    "specificity_at_sensitivity",
    "operating_points",
    "top_losses",
    "most_confused",
]
