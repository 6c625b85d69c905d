"""skderm.metrics.abstention: risk-coverage and referral of the least confident images."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from skderm.metrics import referral_balanced_accuracy, risk_coverage_curve
from skderm.metrics.abstention import referral_mask


def _confidence_informs(n=2000, seed=0):
    """Labels that the top class gets right more often the more confident it is."""
    rng = np.random.default_rng(seed)
    classes = np.array(["bcc", "mel", "nv"])
    proba = rng.dirichlet(np.full(3, 0.6), size=n)
    codes = (proba.cumsum(1) > rng.random((n, 1))).argmax(1)
    return classes[codes], proba, classes


def test_hand_computed_referral():
    y = np.array(["a", "a", "b", "b"])
    proba = np.array([[0.9, 0.1], [0.45, 0.55], [0.2, 0.8], [0.6, 0.4]])
    # the least confident image is row 1 (top 0.55), wrongly called b
    assert referral_mask(proba, refer=0.25).tolist() == [False, True, False, False]
    assert referral_balanced_accuracy(y, proba, refer=0.25) == pytest.approx((1 + 0.5) / 2)
    pred = np.array(["a", "b"])[proba.argmax(1)]
    assert referral_balanced_accuracy(y, proba, refer=0.0) == pytest.approx(
        balanced_accuracy_score(y, pred))


def test_referring_the_unsure_raises_balanced_accuracy():
    y, proba, classes = _confidence_informs()
    scores = [referral_balanced_accuracy(y, proba, refer=r, classes=classes)
              for r in (0.0, 0.2, 0.5)]
    assert scores[1] > scores[0] + 0.03 and scores[2] > scores[1] + 0.03
    rng = np.random.default_rng(1)
    flat = rng.dirichlet(np.ones(3), size=len(y))  # confidence unrelated to the truth
    assert abs(referral_balanced_accuracy(y, flat, refer=0.5, classes=classes)
               - referral_balanced_accuracy(y, flat, refer=0.0, classes=classes)) < 0.05


def test_risk_coverage_curve_agrees_with_referral():
    y, proba, classes = _confidence_informs(n=500, seed=2)
    curve = risk_coverage_curve(y, proba, classes=classes)
    assert list(curve.columns) == ["coverage", "threshold", "risk", "balanced_accuracy"]
    assert len(curve) == len(y) and curve["coverage"].iloc[-1] == 1.0
    assert curve["threshold"].is_monotonic_decreasing
    pred = classes[proba.argmax(1)]
    assert curve["risk"].iloc[-1] == pytest.approx(np.mean(pred != y))
    kept = 400  # refer 20%
    assert curve["balanced_accuracy"].iloc[kept - 1] == pytest.approx(
        referral_balanced_accuracy(y, proba, refer=0.2, classes=classes))
    # the most confident fifth makes fewer errors than all images
    assert curve["risk"].iloc[99] < curve["risk"].iloc[-1] - 0.1


@pytest.mark.parametrize("refer", [1.0, -0.1, "10%", True])
def test_bad_refer_names_the_value(refer):
    with pytest.raises(ValueError, match=f"refer={refer!r}"):
        referral_balanced_accuracy(["a", "b"], [[1.0, 0.0], [0.0, 1.0]], refer=refer)
