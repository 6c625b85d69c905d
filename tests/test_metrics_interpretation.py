"""skderm.metrics.interpretation: top losses and most-confused pairs."""

from __future__ import annotations

import numpy as np
import pytest

from skderm.metrics import most_confused, top_losses


def test_top_losses_are_the_most_confidently_wrong():
    y = np.array(["mel", "nv", "nv", "bcc", "mel"])
    proba = np.array([
        [0.1, 0.2, 0.7],   # mel, called nv, p_true 0.2
        [0.0, 0.05, 0.95],  # right
        [0.3, 0.6, 0.1],   # nv, called mel, p_true 0.1
        [0.5, 0.1, 0.4],   # right
        [0.01, 0.01, 0.98],  # mel, called nv, p_true 0.01: the worst
    ])  # columns bcc, mel, nv
    losses = top_losses(y, proba, k=2)
    assert losses.index.tolist() == [4, 2]
    assert losses.columns.tolist() == ["true", "pred", "p_pred", "p_true", "loss"]
    assert losses.loc[4, ["true", "pred"]].tolist() == ["mel", "nv"]
    assert losses.loc[4, "loss"] == pytest.approx(-np.log(0.01))
    assert losses.loc[2, "p_pred"] == pytest.approx(0.6)
    assert top_losses(y, proba, k=10).index.tolist() == [4, 2, 0]  # only the wrong ones


def test_top_losses_follow_the_column_classes():
    y = np.array(["b", "a"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])  # columns b, a: both right
    assert top_losses(y, proba, classes=["b", "a"]).empty
    assert len(top_losses(y, proba)) == 2  # read as columns a, b: both wrong


def test_most_confused_counts_off_diagonal_pairs():
    y_true = ["mel"] * 6 + ["nv"] * 4 + ["bcc"] * 2
    y_pred = ["nv"] * 3 + ["bkl"] + ["mel"] * 2 + ["mel"] * 3 + ["nv"] + ["bkl"] * 2
    pairs = most_confused(y_true, y_pred)
    assert pairs[["true", "pred", "count"]].values.tolist() == [
        ["mel", "nv", 3], ["nv", "mel", 3], ["bcc", "bkl", 2], ["mel", "bkl", 1]]
    assert pairs.loc[0, "share"] == pytest.approx(3 / 6)
    assert pairs.loc[1, "share"] == pytest.approx(3 / 4)
    assert len(most_confused(y_true, y_pred, min_count=2)) == 3
    assert most_confused(["a", "b"], ["a", "b"]).empty


@pytest.mark.parametrize("bad", [0, 1.5, True])
def test_counts_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match=f"k={bad!r}"):
        top_losses(["a"], [[1.0]], k=bad)
    with pytest.raises(ValueError, match=f"min_count={bad!r}"):
        most_confused(["a"], ["a"], min_count=bad)
