"""skderm.metrics.operating_points: sensitivity at fixed specificity and the reverse."""

from __future__ import annotations

import numpy as np
import pytest

from skderm.metrics import (
    MALIGNANT,
    operating_points,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
)
from skderm.metrics.operating_points import binary_scores

CLASSES = np.array(["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"])


def _ham_like(n_lesions=400, seed=0):
    """Seven-class probabilities that rank malignant lesions higher; 1-3 images a lesion."""
    rng = np.random.default_rng(seed)
    prior = np.array([3, 5, 11, 1, 11, 67, 2], dtype=float)
    lesion_class = rng.choice(7, size=n_lesions, p=prior / prior.sum())
    lesion = np.repeat(np.arange(n_lesions), rng.integers(1, 4, size=n_lesions))
    logits = rng.normal(0, 1.0, (len(lesion), 7))
    logits[np.arange(len(lesion)), lesion_class[lesion]] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return CLASSES[lesion_class[lesion]], proba, lesion


def _brute_force(is_pos, score, fixed, target):
    """Best rate over every threshold by direct counting."""
    best = 0.0
    for t in np.r_[np.inf, np.unique(score)]:
        called = score >= t
        sens = called[is_pos].mean()
        spec = (~called[~is_pos]).mean()
        if fixed == "specificity" and spec >= target:
            best = max(best, sens)
        if fixed == "sensitivity" and sens >= target:
            best = max(best, spec)
    return best


@pytest.mark.parametrize("positive", ["mel", MALIGNANT])
@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95])
def test_points_equal_direct_counting_over_thresholds(positive, target):
    y, proba, _ = _ham_like(n_lesions=150)
    is_pos, score = binary_scores(y, proba, positive=positive, classes=CLASSES)
    assert sensitivity_at_specificity(y, proba, positive=positive, specificity=target,
                                      classes=CLASSES) == pytest.approx(
        _brute_force(is_pos, score, "specificity", target))
    assert specificity_at_sensitivity(y, proba, positive=positive, sensitivity=target,
                                      classes=CLASSES) == pytest.approx(
        _brute_force(is_pos, score, "sensitivity", target))


def test_malignant_score_sums_the_malignant_columns():
    y, proba, _ = _ham_like(n_lesions=50)
    is_pos, score = binary_scores(y, proba, positive=MALIGNANT, classes=CLASSES)
    np.testing.assert_array_equal(is_pos, np.isin(y, ["akiec", "bcc", "mel"]))
    np.testing.assert_allclose(score, proba[:, [0, 1, 4]].sum(1))


def test_higher_fixed_specificity_costs_sensitivity():
    y, proba, _ = _ham_like()
    sens = [sensitivity_at_specificity(y, proba, positive=MALIGNANT, specificity=s,
                                       classes=CLASSES) for s in (0.5, 0.8, 0.95)]
    assert sens[0] > sens[1] > sens[2] > 0


def test_bootstrap_intervals_resample_lesions():
    y, proba, lesion = _ham_like()
    points = operating_points(y, proba, classes=CLASSES, groups=lesion, n_boot=300,
                              specificities=(0.9,), sensitivities=(0.9,), random_state=0)
    assert points[["fixed", "target", "metric"]].values.tolist() == [
        ["specificity", 0.9, "sensitivity"], ["sensitivity", 0.9, "specificity"]]
    assert (points["low"] <= points["estimate"]).all()
    assert (points["estimate"] <= points["high"]).all()
    assert points.loc[0, "estimate"] == pytest.approx(sensitivity_at_specificity(
        y, proba, positive=MALIGNANT, specificity=0.9, classes=CLASSES))
    # the threshold reproduces the point
    called = proba[:, [0, 1, 4]].sum(1) >= points.loc[0, "threshold"]
    malignant = np.isin(y, MALIGNANT)
    assert called[malignant].mean() == pytest.approx(points.loc[0, "estimate"])
    assert (~called[~malignant]).mean() >= 0.9
    # duplicated images: resampling images understates the spread, lesions do not
    y2, p2, g2 = (np.repeat(a, 4, axis=0) for a in (y, proba, lesion))
    by_image = operating_points(y2, p2, classes=CLASSES, n_boot=300, specificities=(0.9,),
                                sensitivities=(), random_state=0)
    by_lesion = operating_points(y2, p2, classes=CLASSES, groups=g2, n_boot=300,
                                 specificities=(0.9,), sensitivities=(), random_state=0)
    assert by_lesion.loc[0, "std"] > 1.5 * by_image.loc[0, "std"]


def test_bad_input_names_the_value():
    y, proba, _ = _ham_like(n_lesions=30)
    with pytest.raises(ValueError, match="specificity=1.5"):
        sensitivity_at_specificity(y, proba, positive="mel", specificity=1.5, classes=CLASSES)
    with pytest.raises(ValueError, match=r"not found: \['melanoma'\]"):
        sensitivity_at_specificity(y, proba, positive="melanoma", classes=CLASSES)
    only_nv = np.full(len(y), "nv")
    with pytest.raises(ValueError, match="both positive"):
        specificity_at_sensitivity(only_nv, proba, positive="mel", classes=CLASSES)
    with pytest.raises(ValueError, match="both empty"):
        operating_points(y, proba, classes=CLASSES, specificities=(), sensitivities=())
