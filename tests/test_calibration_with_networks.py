"""Calibration around a LesionClassifier: sklearn's CalibratedClassifierCV with lesion-grouped
folds, and skderm's TemperatureScaledClassifier on a lesion-grouped held-out part."""

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedGroupKFold

from skderm import LesionClassifier
from skderm.metrics import TemperatureScaledClassifier


def _net():
    return LesionClassifier(backbone="tiny", weights=None, image_size=(32, 32), max_epochs=2,
                            valid_size=None, random_state=0, verbose=0, lr=3e-3)


def test_calibrated_classifier_cv_with_lesion_grouped_folds(lesions):
    X, y, groups = lesions.data, lesions.target.to_numpy(), lesions.groups.to_numpy()
    folds = list(StratifiedGroupKFold(3, shuffle=True, random_state=0).split(X, y, groups))
    for train, test in folds:  # no lesion on both sides
        assert not set(groups[train]) & set(groups[test])
    calibrated = CalibratedClassifierCV(_net(), cv=folds, method="sigmoid").fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (len(X), len(np.unique(y)))
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert len(calibrated.calibrated_classifiers_) == 3
    assert list(calibrated.classes_) == sorted(np.unique(y))


def test_temperature_scaling_wraps_a_lesion_classifier(lesions):
    X, y = lesions.data, lesions.target.to_numpy()
    tempered = TemperatureScaledClassifier(_net(), group_column="lesion_id",
                                           random_state=0).fit(X, y)
    assert tempered.temperature_ > 0
    proba = tempered.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    # a temperature rescales the logits: the ranking of the classes stays
    raw = tempered.estimator_.predict_proba(X)
    assert (proba.argmax(1) == raw.argmax(1)).all()


@pytest.fixture(scope="module")
def lesions(tmp_path_factory):
    from skderm import make_lesions

    return make_lesions(150, image_size=(32, 32), random_state=0,
                        directory=tmp_path_factory.mktemp("calibration"))
