"""skderm.metrics.scorers: get_scorers in cross_validate and GridSearchCV."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_validate

from skderm.metrics import classification_report_frame, get_scorers


def _grouped_data(seed=0):
    """Separable 4-class data in lesions of 1-3 images; class 'd' is one lesion of 3 images."""
    rng = np.random.default_rng(seed)
    centres = {"a": (0, 0), "b": (4, 0), "c": (0, 4), "d": (4, 4)}
    rows, labels, groups = [], [], []
    lesion = 0
    for cls, n_lesions in (("a", 30), ("b", 20), ("c", 15), ("d", 1)):
        for _ in range(n_lesions):
            size = 3 if cls == "d" else int(rng.integers(1, 4))
            centre = np.asarray(centres[cls]) + rng.normal(0, 0.7, 2)
            rows.append(centre + rng.normal(0, 0.3, (size, 2)))
            labels += [cls] * size
            groups += [f"L{lesion}"] * size
            lesion += 1
    return np.vstack(rows), np.array(labels), np.array(groups)


def test_scorers_in_cross_validate_with_folds_missing_a_class():
    X, y, groups = _grouped_data()
    cv = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=0)
    splits = list(cv.split(X, y, groups))
    # the case under test really happens: 'd' is missing from some test folds and,
    # because it is a single lesion, from the training part of the fold that tests it
    assert any("d" not in y[test] for _, test in splits)
    assert any("d" not in y[train] for train, _ in splits)

    scorers = get_scorers(classes=["a", "b", "c", "d"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn: 'least populated class' etc.
        result = cross_validate(
            LogisticRegression(max_iter=500),
            X,
            y,
            groups=groups,
            cv=splits,
            scoring=scorers,
            error_score="raise",
        )
    assert np.isfinite(result["test_auc_ovr"]).all()
    for i, (train, test) in enumerate(splits):
        auc = result["test_auc_ovr"][i]
        if "d" in y[test] and "d" not in y[train]:
            # the model never saw 'd': its constant zero score counts as AUC 0.5,
            # so at best (1 + 1 + 1 + 0.5) / 4
            assert 0.75 < auc <= 0.875 + 1e-12
        else:
            assert auc > 0.9  # separable task
    assert (result["test_bacc"] > 0.6).all()
    assert np.isfinite(result["test_mcc"]).all() and np.isfinite(result["test_f1_macro"]).all()
    for i, (_, test) in enumerate(splits):
        recall_d = result["test_recall_d"][i]
        assert np.isnan(recall_d) == ("d" not in y[test])
    assert np.isfinite(result["test_recall_a"]).all()


def test_auc_scorer_matches_roc_auc_score_when_all_classes_present():
    X, y, _ = _grouped_data()
    model = LogisticRegression(max_iter=500).fit(X[::2], y[::2])
    proba = model.predict_proba(X)
    expected = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert get_scorers()["auc_ovr"](model, X, y) == pytest.approx(expected)


def test_recall_scorer_matches_report():
    X, y, _ = _grouped_data(seed=1)
    model = LogisticRegression(max_iter=500).fit(X, y)
    report = classification_report_frame(y, model.predict(X))
    scorers = get_scorers(classes=["a", "b"])
    assert scorers["recall_b"](model, X, y) == pytest.approx(report.loc["b", "recall"])
    assert scorers["bacc"](model, X, y) == pytest.approx(report.loc["balanced_accuracy", "value"])
    assert scorers["mcc"](model, X, y) == pytest.approx(report.loc["mcc", "value"])


def test_scorers_drive_grid_search():
    X, y, groups = _grouped_data(seed=2)
    keep = y != "d"  # every fold holds every class
    search = GridSearchCV(
        LogisticRegression(max_iter=500),
        {"C": [1e-4, 1.0]},
        scoring=get_scorers(),
        refit="bacc",
        cv=StratifiedGroupKFold(n_splits=3),
    )
    search.fit(X[keep], y[keep], groups=groups[keep])
    # heavy regularisation predicts the majority class; the search must prefer C=1
    assert search.best_params_ == {"C": 1.0}
    assert np.isfinite(search.cv_results_["mean_test_auc_ovr"]).all()


def test_label_only_scorers_never_call_predict_proba():
    class NoProba(LogisticRegression):
        def predict_proba(self, X):
            raise AssertionError("predict_proba called")

    X, y, _ = _grouped_data(seed=3)
    model = NoProba(max_iter=500).fit(X, y)
    scorers = get_scorers(probabilities=False, classes=["a"])
    assert set(scorers) == {"bacc", "mcc", "f1_macro", "recall_a"}
    scores = {name: scorer(model, X, y) for name, scorer in scorers.items()}
    assert scores["bacc"] > 0.6
