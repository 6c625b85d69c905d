"""skderm.metrics.calibration: ECE, Brier score and reliability-diagram data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

from skderm.metrics import brier_score, expected_calibration_error, reliability_curve


def _calibrated(n=20000, k=4, seed=0):
    """Probabilities and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, 0.7), size=n)
    codes = (proba.cumsum(1) > rng.random((n, 1))).argmax(1)
    classes = np.array(["akiec", "bcc", "mel", "nv"][:k])
    return classes[codes], proba, classes


def _sharpen(proba, power):
    p = proba**power
    return p / p.sum(1, keepdims=True)


def test_hand_computed_top_label_and_bins():
    # confidences 0.9, 0.9 (bin (0.8, 0.9]) right once; 0.6 (bin (0.5, 0.6]) right
    y = ["a", "b", "a"]
    proba = [[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]]
    curve = reliability_curve(y, proba, n_bins=10)
    assert list(curve.columns) == ["bin_low", "bin_high", "count", "confidence", "accuracy"]
    assert curve["count"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 2, 0]
    assert curve.loc[8, "accuracy"] == 0.5 and curve.loc[5, "accuracy"] == 1.0
    assert curve.loc[8, "confidence"] == pytest.approx(0.9)
    # (2 * |0.5 - 0.9| + 1 * |1 - 0.6|) / 3
    assert expected_calibration_error(y, proba, n_bins=10) == pytest.approx(0.4)


def test_a_confidence_on_an_edge_belongs_to_the_bin_below():
    # 0.56 * 25 is 14.000000000000002 in floating point, yet 0.56 is the edge of bin 14
    curve = reliability_curve(["a", "b"], [[0.56, 0.44], [0.44, 0.56]], n_bins=25)
    assert curve.loc[13, "count"] == 2 and curve.loc[13, "bin_high"] == pytest.approx(0.56)


def test_calibrated_probabilities_have_small_ece_and_overconfident_large():
    y, proba, classes = _calibrated()
    assert expected_calibration_error(y, proba, classes=classes) < 0.02
    per_class = expected_calibration_error(y, proba, classes=classes, per_class=True)
    assert list(per_class.index) == classes.tolist() and (per_class < 0.02).all()
    over = _sharpen(proba, 3.0)
    assert expected_calibration_error(y, over, classes=classes) > 0.1
    curve = reliability_curve(y, over, classes=classes).dropna()
    high = curve[curve["bin_low"] >= 0.6]
    assert (high["accuracy"] < high["confidence"]).all()  # over-confident: below the diagonal


def test_per_class_ece_sees_a_miscalibrated_rare_class():
    y, proba, classes = _calibrated(seed=1)
    skewed = proba.copy()
    skewed[:, 0] *= 3  # akiec's probability inflated, the rest barely changed
    skewed /= skewed.sum(1, keepdims=True)
    per_class = expected_calibration_error(y, skewed, classes=classes, per_class=True)
    assert per_class.idxmax() == "akiec"
    assert per_class["akiec"] > 2 * per_class.drop("akiec").max()


def test_brier_score_matches_sklearn_and_orders_models():
    y, proba, classes = _calibrated(n=3000, seed=2)
    expected = brier_score_loss(y, proba, labels=classes, scale_by_half=False)
    assert brier_score(y, proba, classes=classes) == pytest.approx(expected)
    # a column order other than sorted is followed through classes
    order = [2, 0, 3, 1]
    assert brier_score(y, proba[:, order], classes=classes[order]) == pytest.approx(expected)
    assert brier_score(y, _sharpen(proba, 3.0), classes=classes) > expected
    perfect = (y[:, None] == classes).astype(float)
    assert brier_score(y, perfect, classes=classes) == 0.0


def test_class_wise_curve_is_one_vs_rest():
    y, proba, classes = _calibrated(n=2000, seed=3)
    curve = reliability_curve(y, proba, classes=classes, n_bins=5, label="mel")
    assert curve["count"].sum() == len(y)
    in_last = proba[:, 2] > 0.8
    assert curve.loc[4, "accuracy"] == pytest.approx(np.mean(y[in_last] == "mel"))


@pytest.mark.parametrize("n_bins", [0, 2.5, True, "10"])
def test_bad_n_bins_names_the_value(n_bins):
    with pytest.raises(ValueError, match=f"n_bins={n_bins!r}"):
        expected_calibration_error(["a", "b"], [[1.0, 0.0], [0.0, 1.0]], n_bins=n_bins)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="not in classes"):
        brier_score(["a", "z"], [[0.5, 0.5], [0.5, 0.5]], classes=["a", "b"])
    with pytest.raises(ValueError, match="label='z'"):
        reliability_curve(["a", "b"], [[0.5, 0.5], [0.5, 0.5]], label="z")
    with pytest.raises(ValueError, match=r"expected \(2, 2\)"):
        expected_calibration_error(["a", "b"], [[1.0], [0.0]])
    assert isinstance(expected_calibration_error(["a", "b"], [[1.0, 0.0], [0.0, 1.0]]), float)
    assert isinstance(reliability_curve(["a"], [[1.0]]), pd.DataFrame)
