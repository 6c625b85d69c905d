"""Tests for skderm.metrics: report, specificity, scorers, bootstrap."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_validate

from skderm.metrics import (
    REPORT_COLUMNS,
    SCORING,
    bootstrap_ci,
    bootstrap_report,
    classification_report_frame,
    get_scorers,
    specificity_score,
)

# Hand-computed case, 10 samples, classes a, b, c.
#   true a (4): pred a a a b      true b (3): pred b b c      true c (3): pred c a a
# Confusion matrix (rows = true, columns = predicted):
#          a  b  c
#     a  [ 3  1  0 ]   support 4
#     b  [ 0  2  1 ]   support 3
#     c  [ 2  0  1 ]   support 3
#  predicted counts   5  3  2
# a: TP 3 FP 2 FN 1 TN 4 -> precision 3/5, recall 3/4, specificity 4/6, f1 6/(6+2+1) = 2/3
# b: TP 2 FP 1 FN 1 TN 6 -> precision 2/3, recall 2/3, specificity 6/7, f1 4/(4+1+1) = 2/3
# c: TP 1 FP 1 FN 2 TN 6 -> precision 1/2, recall 1/3, specificity 6/7, f1 2/(2+1+2) = 2/5
# balanced accuracy = (3/4 + 2/3 + 1/3) / 3 = 1.75 / 3 = 7/12
# accuracy = 6/10
# MCC: c = 6 correct, s = 10, t = (4,3,3), p = (5,3,2)
#   numerator   = c*s - sum(t*p) = 60 - (20 + 9 + 6) = 25
#   denominator = sqrt((s^2 - sum p^2) (s^2 - sum t^2)) = sqrt((100 - 38) (100 - 34)) = sqrt(62 * 66)
Y_TRUE = np.array(["a"] * 4 + ["b"] * 3 + ["c"] * 3)
Y_PRED = np.array(["a", "a", "a", "b", "b", "b", "c", "c", "a", "a"])
HAND = {
    "a": {"precision": 3 / 5, "recall": 3 / 4, "specificity": 4 / 6, "f1": 2 / 3, "support": 4},
    "b": {"precision": 2 / 3, "recall": 2 / 3, "specificity": 6 / 7, "f1": 2 / 3, "support": 3},
    "c": {"precision": 1 / 2, "recall": 1 / 3, "specificity": 6 / 7, "f1": 2 / 5, "support": 3},
}
HAND_BACC = 7 / 12
HAND_ACC = 0.6
HAND_MCC = 25 / np.sqrt(62 * 66)
# macro = plain mean of the rows; weighted = (4*a + 3*b + 3*c) / 10
HAND_MACRO = {
    "precision": (3 / 5 + 2 / 3 + 1 / 2) / 3,
    "recall": HAND_BACC,
    "specificity": (4 / 6 + 6 / 7 + 6 / 7) / 3,
    "f1": (2 / 3 + 2 / 3 + 2 / 5) / 3,
}
HAND_WEIGHTED = {
    "precision": (4 * 3 / 5 + 3 * 2 / 3 + 3 * 1 / 2) / 10,
    "recall": 6 / 10,
    "specificity": (4 * 4 / 6 + 3 * 6 / 7 + 3 * 6 / 7) / 10,
    "f1": (4 * 2 / 3 + 3 * 2 / 3 + 3 * 2 / 5) / 10,
}


def _random_labels(n, k=5, accuracy=0.7, seed=0, classes=None):
    """y_true with unequal class sizes and y_pred right about `accuracy` of the time."""
    rng = np.random.default_rng(seed)
    classes = np.array(classes if classes is not None else [f"c{i}" for i in range(k)])
    p = np.arange(1, len(classes) + 1, dtype=float)
    y_true = rng.choice(classes, size=n, p=p / p.sum())
    wrong = rng.random(n) > accuracy
    y_pred = np.where(wrong, rng.choice(classes, size=n), y_true)
    return y_true, y_pred


# --------------------------------------------------------------------------
# classification_report_frame
# --------------------------------------------------------------------------


def test_report_hand_computed_per_class():
    report = classification_report_frame(Y_TRUE, Y_PRED)
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert list(report.index) == [
        "a",
        "b",
        "c",
        "macro avg",
        "weighted avg",
        "balanced_accuracy",
        "mcc",
        "accuracy",
    ]
    for cls, expected in HAND.items():
        for col, value in expected.items():
            assert report.loc[cls, col] == pytest.approx(value), (cls, col)
        assert np.isnan(report.loc[cls, "auc"])  # no y_proba
        assert np.isnan(report.loc[cls, "value"])


def test_report_hand_computed_summary_and_overall():
    report = classification_report_frame(Y_TRUE, Y_PRED)
    for col in HAND_MACRO:
        assert report.loc["macro avg", col] == pytest.approx(HAND_MACRO[col]), col
        assert report.loc["weighted avg", col] == pytest.approx(HAND_WEIGHTED[col]), col
    assert report.loc["macro avg", "support"] == 10
    assert report.loc["balanced_accuracy", "value"] == pytest.approx(HAND_BACC)
    assert report.loc["accuracy", "value"] == pytest.approx(HAND_ACC)
    assert report.loc["mcc", "value"] == pytest.approx(HAND_MCC)
    assert pd.isna(report.loc["mcc", "support"])
    assert np.isnan(report.loc["mcc", "recall"])
    # the hand numbers are sklearn's numbers
    assert HAND_BACC == pytest.approx(balanced_accuracy_score(Y_TRUE, Y_PRED))
    assert HAND_MCC == pytest.approx(matthews_corrcoef(Y_TRUE, Y_PRED))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_agrees_with_sklearn(seed):
    y_true, y_pred = _random_labels(300, k=6, accuracy=0.5, seed=seed)
    report = classification_report_frame(y_true, y_pred)
    labels = np.unique(np.concatenate([y_true, y_pred]))
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan
    )
    np.testing.assert_allclose(report.loc[labels, "precision"].to_numpy(float), p)
    np.testing.assert_allclose(report.loc[labels, "recall"].to_numpy(float), r)
    np.testing.assert_allclose(report.loc[labels, "f1"].to_numpy(float), f)
    np.testing.assert_array_equal(report.loc[labels, "support"].to_numpy(int), s)
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, average=avg, zero_division=np.nan
        )
        row = report.loc[f"{avg} avg"]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p, r, f))
    assert report.loc["balanced_accuracy", "value"] == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )
    assert report.loc["mcc", "value"] == pytest.approx(matthews_corrcoef(y_true, y_pred))
    assert report.loc["accuracy", "value"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert report.loc["macro avg", "recall"] == pytest.approx(
        report.loc["balanced_accuracy", "value"]
    )


def test_report_integer_labels():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    report = classification_report_frame(y_true, y_pred)
    assert report.loc[1, "recall"] == pytest.approx(1.0)
    assert report.loc[2, "recall"] == pytest.approx(2 / 3)
    assert report.loc["balanced_accuracy", "value"] == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )


def test_class_predicted_but_absent_from_y_true_is_not_averaged():
    # true a a b b; pred a c b b -> 'c' only predicted
    y_true = np.array(["a", "a", "b", "b"])
    y_pred = np.array(["a", "c", "b", "b"])
    with pytest.warns(UserWarning, match=r"\['c'\] are not in y_true"):
        report = classification_report_frame(y_true, y_pred)
    assert report.loc["c", "support"] == 0
    assert np.isnan(report.loc["c", "recall"])
    assert report.loc["c", "precision"] == 0.0  # predicted once, wrongly
    assert report.loc["c", "f1"] == 0.0
    # ISIC: mean over the true classes a (1/2) and b (2/2) only = 0.75, not (0.5+1+0)/3
    assert report.loc["balanced_accuracy", "value"] == pytest.approx(0.75)
    with pytest.warns(UserWarning):
        assert balanced_accuracy_score(y_true, y_pred) == pytest.approx(0.75)
    assert report.loc["macro avg", "recall"] == pytest.approx(0.75)


def test_labels_sets_order_and_adds_absent_classes():
    with pytest.warns(UserWarning, match=r"\['d'\]"):
        report = classification_report_frame(Y_TRUE, Y_PRED, labels=["c", "d", "a", "b"])
    assert list(report.index[:4]) == ["c", "d", "a", "b"]
    assert report.loc["d", "support"] == 0
    assert np.isnan(report.loc["d", "recall"]) and np.isnan(report.loc["d", "precision"])
    # an absent, never-predicted class changes nothing else
    assert report.loc["balanced_accuracy", "value"] == pytest.approx(HAND_BACC)
    assert report.loc["macro avg", "recall"] == pytest.approx(HAND_BACC)


def test_labels_missing_a_class_is_an_error():
    with pytest.raises(ValueError, match=r"does not contain \['c'\]"):
        classification_report_frame(Y_TRUE, Y_PRED, labels=["a", "b"])


def test_report_auc_hand_and_sklearn():
    rng = np.random.default_rng(0)
    # class 'a' scores: positives 0.9 0.8 0.7 0.2, negatives 0.1 0.3 0.25 0.15 0.05 0.6
    # pairs won by positives: 6 + 6 + 6 + 3 (0.2 beats 0.1, 0.15, 0.05) = 21 of 24 -> 0.875
    score_a = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.3, 0.25, 0.15, 0.05, 0.6])
    split = rng.random(10)
    proba = np.column_stack([score_a, (1 - score_a) * split, (1 - score_a) * (1 - split)])
    report = classification_report_frame(Y_TRUE, Y_PRED, proba)
    assert report.loc["a", "auc"] == pytest.approx(0.875)
    for j, cls in enumerate("abc"):
        assert report.loc[cls, "auc"] == pytest.approx(roc_auc_score(Y_TRUE == cls, proba[:, j]))
    assert report.loc["macro avg", "auc"] == pytest.approx(
        roc_auc_score(Y_TRUE, proba, multi_class="ovr", average="macro")
    )
    assert report.loc["weighted avg", "auc"] == pytest.approx(
        roc_auc_score(Y_TRUE, proba, multi_class="ovr", average="weighted")
    )


def test_report_auc_follows_classes_order_and_absent_class_is_nan():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(4), size=10)  # columns: c, d, a, b
    classes = ["c", "d", "a", "b"]
    with pytest.warns(UserWarning, match=r"\['d'\]"):
        report = classification_report_frame(Y_TRUE, Y_PRED, proba, classes=classes)
    assert np.isnan(report.loc["d", "auc"])
    for j, cls in enumerate(classes):
        if cls != "d":
            assert report.loc[cls, "auc"] == pytest.approx(
                roc_auc_score(Y_TRUE == cls, proba[:, j])
            )


def test_bad_input_errors_name_the_values():
    with pytest.raises(ValueError, match=r"same length, got 10 and 9"):
        classification_report_frame(Y_TRUE, Y_PRED[:9])
    with pytest.raises(ValueError, match=r"shape \(10, 2\), expected \(10, 3\)"):
        classification_report_frame(Y_TRUE, Y_PRED, np.full((10, 2), 0.5))
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        classification_report_frame(Y_TRUE, Y_PRED, np.full(10, 0.5))
    with pytest.raises(ValueError, match="NaN"):
        classification_report_frame(Y_TRUE, Y_PRED, np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="empty"):
        classification_report_frame([], [])


# --------------------------------------------------------------------------
# specificity_score
# --------------------------------------------------------------------------


def test_specificity_score_hand_and_averages():
    spec = specificity_score(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(spec, [4 / 6, 6 / 7, 6 / 7])
    assert specificity_score(Y_TRUE, Y_PRED, average="macro") == pytest.approx(
        HAND_MACRO["specificity"]
    )
    assert specificity_score(Y_TRUE, Y_PRED, average="weighted") == pytest.approx(
        HAND_WEIGHTED["specificity"]
    )
    # micro: pooled TN / (TN + FP) = (4 + 6 + 6) / (6 + 7 + 7)
    assert specificity_score(Y_TRUE, Y_PRED, average="micro") == pytest.approx(16 / 20)
    np.testing.assert_allclose(
        specificity_score(Y_TRUE, Y_PRED, labels=["c", "a", "b"]), [6 / 7, 4 / 6, 6 / 7]
    )
    with pytest.raises(ValueError, match="average='samples'"):
        specificity_score(Y_TRUE, Y_PRED, average="samples")


def test_specificity_binary_matches_recall_of_negative_class():
    y_true, y_pred = _random_labels(200, k=2, seed=3)
    spec = specificity_score(y_true, y_pred)
    # specificity of class 0 is the recall of class 1 in a binary problem
    _, recall, _, _ = precision_recall_fscore_support(y_true, y_pred)
    np.testing.assert_allclose(spec, recall[::-1])


# --------------------------------------------------------------------------
# scorers
# --------------------------------------------------------------------------


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
    assert SCORING["mcc"](model, X, y) == pytest.approx(report.loc["mcc", "value"])


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


# --------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------


def _width(ci):
    return ci["high"] - ci["low"]


@pytest.mark.parametrize("metric", ["balanced_accuracy", "mcc", "accuracy"])
def test_bootstrap_ci_contains_estimate(metric):
    y_true, y_pred = _random_labels(2000, seed=4)
    ci = bootstrap_ci(y_true, y_pred, metric=metric, n_boot=500, random_state=0)
    exact = {
        "balanced_accuracy": balanced_accuracy_score,
        "mcc": matthews_corrcoef,
        "accuracy": accuracy_score,
    }[metric](y_true, y_pred)
    assert ci["estimate"] == pytest.approx(exact)
    assert ci["low"] < ci["estimate"] < ci["high"]
    assert 0 < ci["std"] < _width(ci)


def test_fast_bootstrap_matches_naive_resampling():
    # the multinomial-over-confusion-cells shortcut must give the same spread as
    # resampling rows and calling sklearn on each resample
    y_true, y_pred = _random_labels(400, seed=5)
    fast = bootstrap_ci(y_true, y_pred, n_boot=2000, random_state=0)
    naive = bootstrap_ci(y_true, y_pred, metric=balanced_accuracy_score, n_boot=800, random_state=0)
    # tolerances are ~3 Monte-Carlo standard errors at 800 resamples
    assert naive["estimate"] == pytest.approx(fast["estimate"])
    assert naive["std"] == pytest.approx(fast["std"], rel=0.12)
    assert naive["low"] == pytest.approx(fast["low"], abs=0.015)
    assert naive["high"] == pytest.approx(fast["high"], abs=0.015)


def test_bootstrap_width_shrinks_with_more_data():
    small = bootstrap_ci(*_random_labels(300, seed=6), n_boot=500, random_state=0)
    large = bootstrap_ci(*_random_labels(3000, seed=6), n_boot=500, random_state=0)
    # width ~ 1/sqrt(n): ten times the data, about a third of the width
    assert _width(large) < 0.5 * _width(small)


def test_grouped_bootstrap_is_wider_when_lesion_images_are_duplicates():
    y_true, y_pred = _random_labels(600, seed=7)
    lesions = np.arange(600)
    # four identical images per lesion: 2,400 images but only 600 independent cases
    dup_true, dup_pred, dup_groups = (np.repeat(a, 4) for a in (y_true, y_pred, lesions))
    images = bootstrap_ci(dup_true, dup_pred, n_boot=1000, random_state=0)
    by_lesion = bootstrap_ci(dup_true, dup_pred, groups=dup_groups, n_boot=1000, random_state=0)
    one_each = bootstrap_ci(y_true, y_pred, n_boot=1000, random_state=0)
    assert by_lesion["estimate"] == pytest.approx(images["estimate"])
    # sqrt(4) = 2 in theory
    assert _width(by_lesion) > 1.5 * _width(images)
    # resampling lesions recovers the uncertainty of the 600 distinct cases
    assert _width(by_lesion) == pytest.approx(_width(one_each), rel=0.2)


def test_grouped_callable_bootstrap_matches_named_metric():
    y_true, y_pred = _random_labels(300, seed=8)
    groups = np.repeat(np.arange(150), 2)
    named = bootstrap_ci(y_true, y_pred, metric="mcc", groups=groups, n_boot=2000, random_state=1)
    called = bootstrap_ci(
        y_true, y_pred, metric=matthews_corrcoef, groups=groups, n_boot=800, random_state=1
    )
    assert called["estimate"] == pytest.approx(named["estimate"])
    assert called["std"] == pytest.approx(named["std"], rel=0.12)


def test_bootstrap_is_deterministic_with_random_state():
    y_true, y_pred = _random_labels(500, seed=9)
    groups = np.arange(500) // 3
    first = bootstrap_ci(y_true, y_pred, groups=groups, n_boot=300, random_state=42)
    assert bootstrap_ci(y_true, y_pred, groups=groups, n_boot=300, random_state=42) == first
    assert bootstrap_ci(y_true, y_pred, groups=groups, n_boot=300, random_state=43) != first
    gen = bootstrap_ci(y_true, y_pred, n_boot=300, random_state=np.random.default_rng(0))
    assert gen == bootstrap_ci(y_true, y_pred, n_boot=300, random_state=0)


def test_bootstrap_is_fast_on_ham10000_sized_data():
    y_true, y_pred = _random_labels(8000, k=7, seed=10)
    groups = np.random.default_rng(0).integers(0, 6000, 8000)
    start = time.perf_counter()
    bootstrap_report(y_true, y_pred, groups, n_boot=1000, random_state=0)
    bootstrap_ci(y_true, y_pred, n_boot=1000, random_state=0)
    assert time.perf_counter() - start < 2.0


def test_bootstrap_report_pairs_metrics():
    y_true, y_pred = _random_labels(1000, seed=11)
    groups = np.arange(1000) // 2
    report = bootstrap_report(y_true, y_pred, groups, n_boot=400, random_state=3)
    assert list(report.index) == ["balanced_accuracy", "mcc"]
    assert list(report.columns) == ["estimate", "low", "high", "std"]
    assert report.loc["balanced_accuracy", "estimate"] == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )
    assert report.loc["mcc", "estimate"] == pytest.approx(matthews_corrcoef(y_true, y_pred))
    # same seed, same resamples as bootstrap_ci
    single = bootstrap_ci(y_true, y_pred, metric="mcc", groups=groups, n_boot=400, random_state=3)
    assert report.loc["mcc"].to_dict() == pytest.approx(single)


def test_bootstrap_bad_input_errors_name_the_values():
    y_true, y_pred = _random_labels(50, seed=12)
    with pytest.raises(ValueError, match="got 50 and 49"):
        bootstrap_ci(y_true, y_pred[:49])
    with pytest.raises(ValueError, match="groups has length 10 but y_true has 50"):
        bootstrap_ci(y_true, y_pred, groups=np.arange(10))
    with pytest.raises(ValueError, match="metric='auc'"):
        bootstrap_ci(y_true, y_pred, metric="auc")
    with pytest.raises(ValueError, match="confidence must be in"):
        bootstrap_ci(y_true, y_pred, confidence=95)
    with pytest.raises(ValueError, match="n_boot must be an integer >= 2, got 1"):
        bootstrap_report(y_true, y_pred, n_boot=1)


# --------------------------------------------------------------------------
# average_by_lesion
# --------------------------------------------------------------------------

def test_average_by_lesion_shares_each_lesions_mean():
    from skderm.metrics import average_by_lesion

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
    from skderm.metrics import average_by_lesion

    proba = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.2, 0.8], [0.7, 0.3]])
    groups = ["x", "x", None, np.nan, "y"]
    out = average_by_lesion(proba, groups, method="geometric")
    np.testing.assert_allclose(out[0], [0.5, 0.5])  # sqrt(.09) each side, normalised
    np.testing.assert_allclose(out[2:], proba[2:])  # missing ids stay on their own
    out = average_by_lesion(proba, groups)
    np.testing.assert_allclose(out[[2, 3]], proba[[2, 3]])


def test_average_by_lesion_errors_name_the_problem():
    from skderm.metrics import average_by_lesion

    with pytest.raises(ValueError, match="groups has 2 entries but proba has 3 rows"):
        average_by_lesion(np.full((3, 2), 0.5), ["a", "b"])
    with pytest.raises(ValueError, match=r"2-D .* shape \(3,\)"):
        average_by_lesion(np.full(3, 0.5), ["a", "b", "c"])
    with pytest.raises(ValueError, match="'median'"):
        average_by_lesion(np.full((1, 2), 0.5), ["a"], method="median")
