"""skderm.metrics.temperature: temperature scaling on a lesion-grouped held-out part,
and sklearn's CalibratedClassifierCV with lesion-grouped folds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import make_column_transformer
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skderm.metrics import TemperatureScaledClassifier, expected_calibration_error
from skderm.metrics.temperature import apply_temperature, fit_temperature


@parametrize_with_checks([TemperatureScaledClassifier(LogisticRegression(), group_column=None,
                                                      random_state=0)])
def test_sklearn_checks(estimator, check):
    check(estimator)


class Overconfident(ClassifierMixin, BaseEstimator):
    """Logistic regression whose logits are multiplied by ``sharpen``: over-confident."""

    def __init__(self, sharpen=4.0):
        self.sharpen = sharpen

    def fit(self, X, y):
        self.model_ = make_pipeline(make_column_transformer(("passthrough", ["x0", "x1"])),
                                    LogisticRegression()).fit(X, y)
        self.classes_ = self.model_.classes_
        self.fit_rows_ = X.index.to_numpy()
        return self

    def predict_proba(self, X):
        return apply_temperature(self.model_.predict_proba(X), 1.0 / self.sharpen)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


def _lesion_table(n_lesions=240, seed=0):
    """Overlapping 3-class data, 1-4 images per lesion, images of a lesion alike."""
    rng = np.random.default_rng(seed)
    lesion_class = rng.choice(3, size=n_lesions, p=[0.6, 0.25, 0.15])
    sizes = rng.integers(1, 5, size=n_lesions)
    lesion = np.repeat(np.arange(n_lesions), sizes)
    centre = np.array([[0, 0], [1.2, 0], [0, 1.2]])[lesion_class] + rng.normal(
        0, 0.8, (n_lesions, 2))
    X = pd.DataFrame(centre[lesion] + rng.normal(0, 0.2, (len(lesion), 2)), columns=["x0", "x1"])
    X["lesion_id"] = [f"L{i}" for i in lesion]
    y = np.array(["bcc", "mel", "nv"])[lesion_class[lesion]]
    return X, y


def test_fit_temperature_recovers_a_known_sharpening():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (4000, 4))
    proba = apply_temperature(np.exp(logits), 1.0)
    y = np.array([rng.choice(4, p=p) for p in proba])  # labels drawn from the true proba
    sharp = apply_temperature(proba, 0.5)  # logits doubled: over-confident
    assert fit_temperature(sharp, y) == pytest.approx(2.0, rel=0.1)
    assert fit_temperature(proba, y) == pytest.approx(1.0, rel=0.1)


def test_temperature_is_learned_on_held_out_lesions_and_lowers_ece():
    X, y = _lesion_table()
    clf = TemperatureScaledClassifier(Overconfident(), random_state=0).fit(X, y)
    fit_lesions = set(X.loc[clf.estimator_.fit_rows_, "lesion_id"])
    held = ~X["lesion_id"].isin(fit_lesions).to_numpy()
    assert 0.1 < held.mean() < 0.35  # about holdout_size of the images, whole lesions
    assert clf.temperature_ > 2.0  # the wrapped model is over-confident by 4x

    X_test, y_test = _lesion_table(seed=1)
    raw, tempered = clf.estimator_.predict_proba(X_test), clf.predict_proba(X_test)
    np.testing.assert_allclose(tempered.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X_test), clf.estimator_.predict(X_test))
    classes = clf.classes_
    assert (expected_calibration_error(y_test, tempered, classes=classes)
            < 0.5 * expected_calibration_error(y_test, raw, classes=classes))
    assert log_loss(y_test, tempered, labels=classes) < log_loss(y_test, raw, labels=classes)


def test_prefit_estimator_is_used_as_is():
    X, y = _lesion_table()
    fitted = Overconfident().fit(X, y)
    clf = TemperatureScaledClassifier(FrozenEstimator(fitted), holdout_size=None).fit(X, y)
    assert clf.estimator_.estimator is fitted
    assert clf.temperature_ > 2.0
    with pytest.raises(NotFittedError, match="holdout_size=None .* not fitted"):
        TemperatureScaledClassifier(Overconfident(), holdout_size=None).fit(X, y)


def test_nested_parameters_reach_the_wrapped_estimator():
    X, y = _lesion_table()
    clf = TemperatureScaledClassifier(Overconfident(), random_state=0)
    plain = clf.set_params(estimator__sharpen=1.0).fit(X, y).temperature_
    sharp = clf.set_params(estimator__sharpen=4.0).fit(X, y).temperature_
    # same split, logits four times larger: a four times larger temperature undoes it
    assert sharp == pytest.approx(4.0 * plain, rel=0.02)


@pytest.mark.parametrize(("params", "match"), [
    ({"holdout_size": 0.9}, r"holdout_size=0.9 .* \(0, 0.5\]"),
    ({"holdout_size": "20%"}, "holdout_size='20%'"),
    ({"group_column": 3}, "group_column=3"),
    ({"random_state": 1.5}, "random_state=1.5"),
])
def test_bad_parameters_name_parameter_value_and_choices(params, match):
    X, y = _lesion_table(n_lesions=40)
    with pytest.raises(ValueError, match=match):
        TemperatureScaledClassifier(Overconfident(), **params).fit(X, y)


def test_missing_lesion_column_and_too_few_lesions():
    X, y = _lesion_table(n_lesions=40)
    with pytest.raises(ValueError, match="column 'lesion_id', which X lacks"):
        TemperatureScaledClassifier(Overconfident()).fit(X.drop(columns="lesion_id"), y)
    with pytest.raises(ValueError, match="at least 5 lesions; got 1 in n_samples = 2"):
        TemperatureScaledClassifier(Overconfident()).fit(X.iloc[:2], y[:2])


def test_calibrated_classifier_cv_with_lesion_grouped_folds():
    """sklearn's own calibration works on skderm-style input when cv is lesion-grouped."""
    X, y = _lesion_table()
    groups = X["lesion_id"]
    splits = list(StratifiedGroupKFold(3, shuffle=True, random_state=0).split(X, y, groups))
    for train, test in splits:
        assert not set(groups.iloc[train]) & set(groups.iloc[test])
    model = make_pipeline(make_column_transformer(("passthrough", ["x0", "x1"])),
                          LogisticRegression())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent fallback
        calibrated = CalibratedClassifierCV(model, method="sigmoid", cv=splits).fit(X, y)
    assert len(calibrated.calibrated_classifiers_) == 3
    X_test, y_test = _lesion_table(seed=1)
    proba = calibrated.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert np.mean(calibrated.predict(X_test) == y_test) > 0.6


def test_per_sample_fit_params_are_cut_to_the_training_lesions():
    class Weighted(Overconfident):
        def fit(self, X, y, sample_weight=None):
            assert len(sample_weight) == len(X)
            self.weights_ = np.asarray(sample_weight)
            return super().fit(X, y)

    X, y = _lesion_table(n_lesions=60)
    weights = np.arange(len(X), dtype=float)
    clf = TemperatureScaledClassifier(Weighted(), random_state=0).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(clf.estimator_.weights_, weights[clf.estimator_.fit_rows_])
