"""LesionClassifier inside scikit-learn and imbalanced-learn tooling.

Cross-validation, grid search with several scorers, imblearn pipelines that
resample DataFrame rows (paths and metadata, never pixels), and sklearn's own
estimator checks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import clone
from sklearn.exceptions import SkipTestWarning
from sklearn.metrics import make_scorer, matthews_corrcoef
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback

from skderm.classifier import LesionClassifier
from skderm.datasets import DX_CLASSES, make_lesions

SIZE = (48, 64)
FAST = dict(
    backbone="tiny",
    weights=None,
    image_size=SIZE,
    max_epochs=2,
    batch_size=16,
    lr=3e-3,
    verbose=0,
    random_state=0,
    augmentation="none",
)
SCORING = {"bacc": "balanced_accuracy", "mcc": make_scorer(matthews_corrcoef)}


def make_clf(**params) -> LesionClassifier:
    return LesionClassifier(**{**FAST, **params})


class SeenRows(Callback):
    """Records the training and validation datasets the net was given."""

    def initialize(self):
        self.datasets = None
        return self

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.datasets = (dataset_train, dataset_valid)


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    """150 images, about 10 lesions per class: enough for 3 lesion-grouped folds."""
    return make_lesions(
        150,
        image_size=SIZE,
        weights=[1] * 7,
        random_state=0,
        directory=tmp_path_factory.mktemp("balanced"),
    )


# ---------------------------------------------------------------------------
# cross-validation and grid search
# ---------------------------------------------------------------------------


def test_cross_val_score_with_lesion_groups(balanced):
    scores = cross_val_score(
        make_clf(max_epochs=4),
        balanced.data,
        balanced.target,
        groups=balanced.groups,
        cv=StratifiedGroupKFold(3),
        scoring="balanced_accuracy",
        error_score="raise",
    )
    assert scores.shape == (3,)
    assert np.all((scores >= 0) & (scores <= 1))
    # chance is 1/7; four epochs of the tiny net score about 0.3-0.4 per fold
    assert scores.mean() > 0.2, scores


def test_grid_search_with_two_scorers(balanced):
    X, y, groups = balanced.data, balanced.target, balanced.groups
    search = GridSearchCV(
        make_clf(),
        {"lr": [1e-3, 3e-3], "module__hidden_units": [None, 16]},
        cv=StratifiedGroupKFold(2),
        scoring=SCORING,
        refit="bacc",
        error_score="raise",
    )
    search.fit(X, y, groups=groups)
    results = search.cv_results_
    assert len(results["params"]) == 4
    for key in ("mean_test_bacc", "mean_test_mcc"):
        assert np.all(np.isfinite(results[key])), key
    assert search.best_index_ == int(np.argmax(results["mean_test_bacc"]))
    best = search.best_estimator_
    assert best.lr == search.best_params_["lr"]
    assert best.module__hidden_units == search.best_params_["module__hidden_units"]
    assert best.get_params()["module__hidden_units"] == search.best_params_["module__hidden_units"]
    pred = best.predict(X)
    assert pred.shape == (len(X),) and set(pred) <= set(DX_CLASSES)
    assert 0 <= search.score(X, y) <= 1


# ---------------------------------------------------------------------------
# imbalanced-learn pipelines: rows are resampled, the DataFrame survives
# ---------------------------------------------------------------------------


def test_random_over_sampler_pipeline_sees_duplicated_rows(tiny_lesions):
    X, y = tiny_lesions.data, tiny_lesions.target
    seen = SeenRows()
    pipe = make_pipeline(RandomOverSampler(random_state=0), make_clf(callbacks=[("seen", seen)]))
    pipe.fit(X, y)
    train, valid = seen.datasets
    n_resampled = 7 * y.value_counts().max()
    assert len(train) + len(valid) == n_resampled > len(X)
    groups = np.concatenate([train.groups, valid.groups])
    # the rows the net saw are duplicated DataFrame rows, lesion ids included
    assert set(groups) == set(X["lesion_id"])
    assert len(groups) - len(set(groups)) > X["lesion_id"].duplicated().sum()
    assert np.bincount(np.concatenate([train.y, valid.y])).tolist() == [n_resampled // 7] * 7
    # duplicated paths, decoded once: duplicates share one cached array
    pixels = {id(a) for a in [*train.images, *valid.images]}
    assert len(pixels) == X["path"].nunique()
    # a duplicate always sits on the same side as its original
    assert not set(train.groups) & set(valid.groups)
    pred = pipe.predict(X)  # samplers do nothing at predict time
    assert pred.shape == (len(X),)


def test_random_under_sampler_pipeline_sees_fewer_rows(tiny_lesions):
    X, y = tiny_lesions.data, tiny_lesions.target
    seen = SeenRows()
    pipe = make_pipeline(
        RandomUnderSampler(random_state=0), make_clf(valid_size=None, callbacks=[("seen", seen)])
    )
    pipe.fit(X, y)
    train, valid = seen.datasets
    assert valid is None
    assert len(train) == 7 * y.value_counts().min() < len(X)
    assert np.bincount(train.y).tolist() == [y.value_counts().min()] * 7
    assert pipe.predict_proba(X).shape == (len(X), 7)


def test_grid_search_over_a_sampler_pipeline(tiny_lesions):
    X, y, groups = tiny_lesions.data, tiny_lesions.target, tiny_lesions.groups
    pipe = make_pipeline(RandomOverSampler(random_state=0), make_clf(max_epochs=1, valid_size=None))
    search = GridSearchCV(
        pipe,
        {"lesionclassifier__lr": [1e-3, 1e-2]},
        cv=StratifiedGroupKFold(2),
        scoring=SCORING,
        refit="bacc",
        error_score="raise",
    )
    search.fit(X, y, groups=groups)
    assert search.best_params_["lesionclassifier__lr"] in (1e-3, 1e-2)
    fitted_clf = search.best_estimator_[-1]
    assert fitted_clf.lr == search.best_params_["lesionclassifier__lr"]
    assert fitted_clf.optimizer_.param_groups[0]["lr"] == fitted_clf.lr
    assert search.predict(X).shape == (len(X),)


# ---------------------------------------------------------------------------
# repr, as any sklearn estimator's
# ---------------------------------------------------------------------------


def test_repr_shows_the_parameters_that_differ_from_the_defaults():
    assert repr(LesionClassifier()) == "LesionClassifier()"
    assert repr(LesionClassifier(max_epochs=3)) == "LesionClassifier(max_epochs=3)"
    text = repr(LesionClassifier(backbone="tiny", criterion="focal", criterion__gamma=1.0))
    assert text.startswith("LesionClassifier(") and text.endswith(")")
    assert sorted(text[len("LesionClassifier("):-1].split(", ")) == [
        "backbone='tiny'", "criterion='focal'", "criterion__gamma=1.0"]


def test_nested_repr_shows_only_changed_parameters():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from skderm.accelerate import AcceleratedLesionClassifier
    from skderm.transforms import Mixup

    search = GridSearchCV(Pipeline([("clf", LesionClassifier(max_epochs=3, mixup=Mixup(0.4)))]),
                          {"clf__lr": [1e-3]})
    text = " ".join(repr(search).split())  # one line, whatever the wrapping
    assert "estimator=Pipeline(steps=[('clf', LesionClassifier(max_epochs=3, " \
           "mixup=Mixup(mixup_alpha=0.4)))])" in text
    # skorch's own parameters at their defaults are not "changed"
    for default in ("iterator_train", "dataset=", "verbose=", "callbacks="):
        assert default not in text
    assert repr(AcceleratedLesionClassifier(max_epochs=3, module__hidden_units=8)) == \
        "AcceleratedLesionClassifier(max_epochs=3, module__hidden_units=8)"


def test_repr_inside_a_pipeline_has_no_private_attributes(tiny_lesions):
    pipe = make_pipeline(RandomOverSampler(random_state=0), make_clf(max_epochs=1))
    text = repr(pipe)
    assert "LesionClassifier(" in text and "max_epochs=1" in text
    assert "_params_to_validate" not in text and "uninitialized" not in text
    assert not [k for k in make_clf().get_params(deep=False) if k.startswith("_")]
    pipe.fit(tiny_lesions.data, tiny_lesions.target)
    assert repr(pipe) == text  # fitting adds no parameter


# ---------------------------------------------------------------------------
# sklearn's estimator checks
# ---------------------------------------------------------------------------

CHECK_PARAMS = dict(
    backbone="tiny",
    weights=None,
    max_epochs=1,
    image_size=(8, 8),
    verbose=0,
    valid_size=None,
    random_state=0,
    augmentation="none",
)


# With its own tags (X is images or paths, not a 2-D numeric array) sklearn
# runs only check_estimator_cloneable and skips the rest with a warning (at
# collection time, hence the catch_warnings).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SkipTestWarning)
    _AS_SHIPPED = parametrize_with_checks([LesionClassifier(**CHECK_PARAMS)], xfail_strict=True)


@_AS_SHIPPED
def test_sklearn_checks_as_shipped(estimator, check):
    check(estimator)


def _as_images(X):
    """Draw a numeric (n, f) array as (n, 8, 8, 3) uint8 images; leave anything else as is."""
    if sp.issparse(X) or hasattr(X, "columns"):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.dtype.kind not in "fiub" or arr.dtype == np.uint8 or not arr.shape[1]:
        return X
    with np.errstate(over="ignore", invalid="ignore"):
        pixels = 255 / (1 + np.exp(-arr.astype(float)))  # each feature -> one grey level
    reps = -(-192 // arr.shape[1])
    return np.round(np.tile(pixels, reps)[:, :192]).astype(np.uint8).reshape(-1, 8, 8, 3)


class NumericAsImagesMixin:
    """Makes a LesionClassifier read sklearn's numeric test data as tiny images.

    Only the input is adapted (in ``_dataset``); fitting, prediction, cloning,
    pickling and parameters are the classifier's own, so sklearn's checks of
    those run against the real code.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = False
        return tags

    def _dataset(self, X, y=None, *, fit=False):
        return super()._dataset(_as_images(X), y, fit=fit)


class NumericAsImages(NumericAsImagesMixin, LesionClassifier):
    """LesionClassifier that reads sklearn's numeric test data as tiny images."""


_IMAGES_NOT_FEATURES = (
    "X holds images or paths, not a numeric feature matrix: the input checks sklearn expects "
    "(numeric validation messages) do not apply, and LesionClassifier rejects the input with "
    "its own message naming the accepted forms of X"
)
# Checks that cannot apply to an image classifier built on skorch.
CANNOT_APPLY = {
    "check_no_attributes_set_in_init": (
        "skorch's NeuralNet.__init__ itself sets history_, initialized_ and virtual_params_; "
        "every skorch net fails this check"
    ),
    "check_do_not_raise_errors_in_init_or_set_params": (
        "skorch's set_params builds the callbacks at once, so callbacks=<a number> raises; "
        "skorch's NeuralNet, whose signature names callbacks as LesionClassifier's does, "
        "fails this check the same way"
    ),
    "check_n_features_in_after_fitting": (
        "images of any size are resized to image_size_, so there is no fixed number of input "
        "features and no n_features_in_"
    ),
    "check_n_features_in": "no n_features_in_ for images (see above)",
    "check_estimators_partial_fit_n_features": (
        "another 'number of features' is another image size, which is resized, not an error"
    ),
    "check_classifiers_train": (
        "raises for a changed number of features, which for images is just another size; "
        "also expects a trained model after max_epochs=1"
    ),
    "check_class_weight_classifiers": (
        "needs a well-trained model (passes with max_epochs=20); one epoch of a random CNN is "
        "not; class weights are tested in test_classifier.py"
    ),
    "check_dtype_object": _IMAGES_NOT_FEATURES,
    "check_estimators_empty_data_messages": _IMAGES_NOT_FEATURES,
    "check_estimators_nan_inf": "uint8 images cannot hold NaN or inf",
    "check_estimator_sparse_tag": _IMAGES_NOT_FEATURES,
    "check_estimator_sparse_array": _IMAGES_NOT_FEATURES,
    "check_estimator_sparse_matrix": _IMAGES_NOT_FEATURES,
    "check_fit2d_predict1d": _IMAGES_NOT_FEATURES,
    "check_classifier_data_not_an_array": (
        "passes X as a DataFrame of numeric columns; a DataFrame X must hold an image-path column"
    ),
}


def _expected_failures(estimator):
    return CANNOT_APPLY


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@parametrize_with_checks(
    [NumericAsImages(**CHECK_PARAMS)], expected_failed_checks=_expected_failures, xfail_strict=True
)
def test_sklearn_checks_on_numeric_data_drawn_as_images(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_adapter_only_changes_the_input():
    est = NumericAsImages(**CHECK_PARAMS)
    assert clone(est).get_params(deep=False) == LesionClassifier(**CHECK_PARAMS).get_params(
        deep=False
    )
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    proba_adapted = clone(est).fit(X, y).predict_proba(X)
    proba_direct = (
        LesionClassifier(**CHECK_PARAMS).fit(_as_images(X), y).predict_proba(_as_images(X))
    )
    np.testing.assert_array_equal(proba_adapted, proba_direct)


def test_randomized_search_group_kfold_with_every_skderm_scorer(balanced):
    """RandomizedSearchCV + GroupKFold on lesion_id, scored on bacc, MCC, macro F1,
    macro one-vs-rest AUC (from predict_proba) and per-class recall."""
    from scipy.stats import loguniform
    from sklearn.model_selection import GroupKFold, RandomizedSearchCV, cross_validate

    from skderm.metrics import get_scorers

    X, y, groups = balanced.data, balanced.target, balanced.groups
    scorers = get_scorers(classes=DX_CLASSES)
    search = RandomizedSearchCV(make_clf(), {"lr": loguniform(1e-3, 1e-2)}, n_iter=2,
                                cv=GroupKFold(3), scoring=scorers, refit="bacc", random_state=0)
    search.fit(X, y, groups=groups)
    res = search.cv_results_
    for name in ("bacc", "mcc", "f1_macro", "auc_ovr", "recall_mel"):
        assert np.all(np.isfinite(res[f"mean_test_{name}"])), name
    assert np.all((res["mean_test_auc_ovr"] >= 0) & (res["mean_test_auc_ovr"] <= 1))
    cv = cross_validate(make_clf(), X, y, groups=groups, cv=StratifiedGroupKFold(3),
                        scoring=scorers)
    # balanced accuracy is the mean of the per-class recalls (ISIC definition)
    per_class = np.mean([cv[f"test_recall_{c}"] for c in DX_CLASSES], axis=0)
    np.testing.assert_allclose(cv["test_bacc"], per_class, atol=1e-9)
