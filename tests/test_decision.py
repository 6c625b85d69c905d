"""LesionLevelClassifier: pooling each lesion's images and shifting the decision rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skderm.decision import LesionLevelClassifier, average_by_lesion, shifted_argmax


@parametrize_with_checks([LesionLevelClassifier(LogisticRegression(), group_column=None),
                          LesionLevelClassifier(LogisticRegression(), group_column=None,
                                                prior_shift=-0.3)])
def test_sklearn_checks(estimator, check):
    check(estimator)


class FixedProba(ClassifierMixin, BaseEstimator):
    """Returns the probabilities in column ``p*`` of X; counts its fits."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        self.classes_ = np.unique(y)
        self.sample_weight_ = sample_weight
        return self

    def predict_proba(self, X):
        return X[[f"p{j}" for j in range(len(self.classes_))]].to_numpy(dtype=float)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


def _table(proba, lesions):
    X = pd.DataFrame(proba, columns=[f"p{j}" for j in range(proba.shape[1])])
    X["lesion_id"] = lesions
    return X


@pytest.fixture
def skewed():
    """300 images of 3 classes (70/20/10%), 1-3 images per lesion, noisy probabilities."""
    rng = np.random.default_rng(0)
    lesion_class = rng.choice(3, size=160, p=[0.7, 0.2, 0.1])
    per_lesion = rng.integers(1, 4, size=160)
    lesion = np.repeat(np.arange(160), per_lesion)
    y = np.array(["nv", "mel", "bcc"])[lesion_class[lesion]]  # nv frequent
    logits = rng.normal(size=(len(lesion), 3)) * 1.5
    codes = np.searchsorted(["bcc", "mel", "nv"], y)
    logits[np.arange(len(y)), codes] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return _table(proba, [f"L{i}" if i % 17 else None for i in lesion]), y


def test_shift_zero_without_pooling_is_the_estimators_own_prediction(skewed):
    X, y = skewed
    clf = LesionLevelClassifier(FixedProba(), pooling=None).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), clf.estimator_.predict(X))
    np.testing.assert_array_equal(clf.predict_proba(X), clf.estimator_.predict_proba(X))
    assert clf.classes_.tolist() == ["bcc", "mel", "nv"]
    np.testing.assert_allclose(clf.class_prior_,
                               [np.mean(y == c) for c in ["bcc", "mel", "nv"]])


def test_pooling_gives_each_lesion_one_probability_and_label(skewed):
    X, y = skewed
    clf = LesionLevelClassifier(FixedProba()).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, average_by_lesion(X[["p0", "p1", "p2"]], X["lesion_id"]))
    pred = pd.Series(clf.predict(X))
    known = X["lesion_id"].notna()
    # every lesion gets one label; images without a lesion id stay on their own
    assert (pred[known].groupby(X["lesion_id"][known]).nunique() == 1).all()
    alone = ~known
    np.testing.assert_array_equal(pred[alone], clf.estimator_.predict(X[alone]))
    geometric = clf.set_params(pooling="geometric").predict_proba(X)
    np.testing.assert_allclose(
        geometric, average_by_lesion(X[["p0", "p1", "p2"]], X["lesion_id"], method="geometric"))
    assert not np.allclose(geometric, proba)


def test_prior_shift_trades_mean_recall_for_precision(skewed):
    X, y = skewed
    clf = LesionLevelClassifier(FixedProba(), pooling=None).fit(X, y)
    rows = []
    for t in (-1.0, 0.0, 1.0):
        pred = clf.set_params(prior_shift=t).predict(X)
        rows.append(((pred == "nv").mean(), balanced_accuracy_score(y, pred)))
    # towards the frequent class as t falls, and mean recall is highest away from t = -1
    assert rows[0][0] > rows[1][0] > rows[2][0]
    assert rows[0][1] < max(rows[1][1], rows[2][1])


def test_shifted_argmax_is_the_documented_rule():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(4), size=50)
    prior = np.array([0.6, 0.25, 0.1, 0.05])
    for t in (-0.5, 0.0, 0.3, 1.0):
        expected = (np.log(proba) - t * np.log(prior)).argmax(1)
        np.testing.assert_array_equal(shifted_argmax(proba, prior, t), expected)
    # t = 1 divides by the prior: the post-hoc logit adjustment
    np.testing.assert_array_equal(shifted_argmax(proba, prior, 1.0), (proba / prior).argmax(1))
    with pytest.raises(ValueError, match="one class_prior per column"):
        shifted_argmax(proba, prior[:3], 0.1)
    with pytest.raises(ValueError, match="must be > 0"):
        shifted_argmax(proba, [0.5, 0.5, 0.0, 0.0], 0.1)


def test_the_benchmarks_rule_is_the_packages(skewed):
    """benchmarks/operating_points.py and decision_rule.py decide with this class's rule."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "operating_points.py"
    spec = importlib.util.spec_from_file_location("operating_points", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    X, y = skewed
    clf = LesionLevelClassifier(FixedProba(), pooling=None, prior_shift=-0.2).fit(X, y)
    proba = X[["p0", "p1", "p2"]].to_numpy()
    np.testing.assert_array_equal(
        module.shifted_predictions(proba, clf.classes_, y, -0.2), clf.predict(X))


def test_prior_shift_changes_predictions_without_refitting(skewed):
    X, y = skewed
    clf = LesionLevelClassifier(FixedProba(), prior_shift=0.0).fit(X, y)
    fits, fitted = FixedProba.fits, clf.estimator_
    before = clf.predict(X)
    after = clf.set_params(prior_shift=-1.0).predict(X)
    assert FixedProba.fits == fits and clf.estimator_ is fitted
    assert (before != after).any()


def test_fit_params_reach_the_estimator(skewed):
    X, y = skewed
    weight = np.linspace(1, 2, len(y))
    clf = LesionLevelClassifier(FixedProba()).fit(X, y, sample_weight=weight)
    np.testing.assert_array_equal(clf.estimator_.sample_weight_, weight)
    assert clf.estimator.__dict__.get("sample_weight_") is None  # the clone was fitted


def test_grid_search_over_the_wrapped_estimator_and_the_shift():
    rng = np.random.default_rng(0)
    n_lesions = 90
    cls = rng.choice(3, size=n_lesions, p=[0.6, 0.25, 0.15])
    lesion = np.repeat(np.arange(n_lesions), 2)
    X = pd.DataFrame({"a": cls[lesion] + rng.normal(scale=0.8, size=len(lesion)),
                      "b": rng.normal(size=len(lesion)),
                      "lesion_id": [f"L{i}" for i in lesion]})
    y = np.array(["nv", "mel", "bcc"])[cls[lesion]]
    model = make_pipeline(make_column_transformer(("passthrough", ["a", "b"])),
                          LogisticRegression())
    search = GridSearchCV(
        LesionLevelClassifier(model),
        {"estimator__logisticregression__C": [0.1, 1.0], "prior_shift": [-0.5, 0.0, 0.5]},
        cv=StratifiedGroupKFold(3), scoring={"bacc": "balanced_accuracy",
                                             "mcc": "matthews_corrcoef"}, refit="bacc")
    search.fit(X, y, groups=X["lesion_id"])
    assert search.best_score_ > 0.6
    best = search.best_estimator_
    pred = pd.Series(best.predict(X))
    assert (pred.groupby(X["lesion_id"]).nunique() == 1).all()
    assert matthews_corrcoef(y, pred) > 0.4


@pytest.mark.parametrize("params, match", [
    ({"pooling": "max"}, r"pooling='max' is not valid; use 'mean', 'geometric' or None"),
    ({"prior_shift": float("nan")}, r"prior_shift=nan is not valid; use a finite number"),
    ({"prior_shift": "-0.1"}, r"prior_shift='-0.1' is not valid"),
    ({"prior_shift": True}, r"prior_shift=True is not valid"),
    ({"group_column": 3}, r"group_column=3 is not valid; use a column name or None"),
])
def test_bad_parameters_are_named_at_fit_and_prediction(skewed, params, match):
    X, y = skewed
    with pytest.raises(ValueError, match=match):
        LesionLevelClassifier(FixedProba(), **params).fit(X, y)
    fitted = LesionLevelClassifier(FixedProba()).fit(X, y).set_params(**params)
    with pytest.raises(ValueError, match=match):
        fitted.predict(X)


def test_a_missing_lesion_column_says_how_to_predict_per_image(skewed):
    X, y = skewed
    clf = LesionLevelClassifier(FixedProba()).fit(X, y)
    with pytest.raises(ValueError, match=r"column 'lesion_id', which X lacks .*group_column=None"):
        clf.predict(X.drop(columns="lesion_id"))
    per_image = clone(clf).set_params(group_column=None).fit(X, y)
    assert len(per_image.predict(X.drop(columns="lesion_id"))) == len(y)


def test_a_class_without_training_labels_is_refused():
    class SevenClasses(FixedProba):
        def fit(self, X, y, sample_weight=None):
            self.classes_ = np.array(["akiec", "bcc", "nv"])
            return self

    X = _table(np.full((4, 3), 1 / 3), ["a", "a", "b", "c"])
    with pytest.raises(ValueError, match=r"classes \['akiec'\] that y does not hold"):
        LesionLevelClassifier(SevenClasses()).fit(X, ["bcc", "bcc", "nv", "nv"])


def test_unfitted_prediction_is_refused(skewed):
    from sklearn.exceptions import NotFittedError

    X, _ = skewed
    with pytest.raises(NotFittedError):
        LesionLevelClassifier(FixedProba()).predict(X)


def test_around_a_lesion_classifier_and_its_oversampling_pipeline(tiny_lesions):
    """The wrapper fits a LesionClassifier in an imblearn pipeline; the prior is y's, not the
    oversampled labels'."""
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import make_pipeline as make_imb_pipeline

    from skderm import LesionClassifier

    X, y = tiny_lesions.data, tiny_lesions.target
    net = LesionClassifier(backbone="tiny", weights=None, image_size=(32, 32), max_epochs=1,
                           valid_size=None, random_state=0, verbose=0)
    clf = LesionLevelClassifier(make_imb_pipeline(RandomOverSampler(random_state=0), net),
                                prior_shift=0.5).fit(X, y)
    np.testing.assert_allclose(clf.class_prior_, y.value_counts(normalize=True)[clf.classes_])
    pred = pd.Series(clf.predict(X))
    assert set(pred) <= set(clf.classes_)
    assert (pred.groupby(X["lesion_id"].to_numpy()).nunique() == 1).all()
    assert tiny_lesions.groups.nunique() < len(y)  # some lesions have several images
    # an image without a lesion id is predicted on its own (LesionClassifier needs ids at fit
    # only, for its internal split)
    partial = X.assign(lesion_id=X["lesion_id"].where(X.index >= 10, None))
    proba = clf.predict_proba(partial)
    np.testing.assert_allclose(proba[:10], clf.estimator_.predict_proba(partial.iloc[:10]),
                               atol=1e-6)
    np.testing.assert_allclose(proba[10:], clf.predict_proba(X.iloc[10:]), atol=1e-6)


def test_the_votes_saved_folds_decided_per_lesion_score_what_the_benchmark_reports(ham10000_root):
    """The shipped rule (make_lesion_level("vote")'s shift) on the vote's saved out-of-fold
    probabilities gives benchmarks/results/decision_rule.json's per-lesion figures."""
    import json
    from pathlib import Path

    from skderm import load_ham10000
    from skderm.recipes import LESION_DECISIONS

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    data = load_ham10000(ham10000_root)
    rows = json.loads((results / "decision_rule.json").read_text())["rows"]
    reported = [r for r in rows if r["recipe"] == "ensemble_cpu_e24_lite2"
                and r["view"] == "lesion" and r["criterion"] == "margin"][0]
    y = data.target.to_numpy()
    for k in range(5):
        with np.load(results / "oof" / f"ensemble_cpu_e24_lite2_fold{k}.npz") as z:
            test, classes, proba = z["test"], z["classes"], z["proba"]
        X = _table(proba, data.groups.to_numpy()[test])
        train = np.setdiff1d(np.arange(len(y)), test)
        clf = LesionLevelClassifier(FixedProba(), prior_shift=LESION_DECISIONS["vote"])
        pred = clf.fit(X.iloc[:0], y[train]).predict(X)  # FixedProba ignores X: fit records y
        assert list(clf.classes_) == list(classes)
        assert balanced_accuracy_score(y[test], pred) == pytest.approx(reported["bacc"][k])
        assert matthews_corrcoef(y[test], pred) == pytest.approx(reported["mcc"][k])
    assert np.mean(reported["bacc"]) >= 0.80 and np.mean(reported["mcc"]) >= 0.70

def test_average_by_lesion_shares_each_lesions_mean():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=30)
    groups = pd.Series(rng.choice(["a", "b", "c", "d", "e"], size=30),
                       index=np.arange(100, 130))  # positional, whatever the index
    out = average_by_lesion(proba, groups)
    for g in groups.unique():
        rows = (groups == g).to_numpy()
        np.testing.assert_allclose(out[rows], np.tile(proba[rows].mean(0), (rows.sum(), 1)))
    np.testing.assert_allclose(out.sum(1), 1.0)
    perm = rng.permutation(30)  # the order of the images does not matter
    np.testing.assert_allclose(average_by_lesion(proba[perm], groups.to_numpy()[perm]), out[perm])


def test_average_by_lesion_geometric_and_missing_ids():
    proba = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.2, 0.8], [0.7, 0.3]])
    groups = ["x", "x", None, np.nan, "y"]
    out = average_by_lesion(proba, groups, method="geometric")
    np.testing.assert_allclose(out[0], [0.5, 0.5])  # sqrt(.09) each side, normalised
    np.testing.assert_allclose(out[2:], proba[2:])  # missing ids stay on their own
    out = average_by_lesion(proba, groups)
    np.testing.assert_allclose(out[[2, 3]], proba[[2, 3]])


def test_average_by_lesion_errors_name_the_problem():
    with pytest.raises(ValueError, match="groups has 2 entries but proba has 3 rows"):
        average_by_lesion(np.full((3, 2), 0.5), ["a", "b"])
    with pytest.raises(ValueError, match=r"2-D .* shape \(3,\)"):
        average_by_lesion(np.full(3, 0.5), ["a", "b", "c"])
    with pytest.raises(ValueError, match="'median'"):
        average_by_lesion(np.full((1, 2), 0.5), ["a"], method="median")
