"""skderm.metrics.report: the per-class report and specificity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _metrics_data import random_labels
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)

from skderm.metrics import REPORT_COLUMNS, classification_report_frame, specificity_score

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
    y_true, y_pred = random_labels(300, k=6, accuracy=0.5, seed=seed)
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
    y_true, y_pred = random_labels(200, k=2, seed=3)
    spec = specificity_score(y_true, y_pred)
    # specificity of class 0 is the recall of class 1 in a binary problem
    _, recall, _, _ = precision_recall_fscore_support(y_true, y_pred)
    np.testing.assert_allclose(spec, recall[::-1])
