"""skderm.metrics.bootstrap: percentile intervals that resample lesions."""

from __future__ import annotations

import numpy as np
import pytest
from _metrics_data import random_labels
from sklearn.metrics import accuracy_score, balanced_accuracy_score, matthews_corrcoef

from skderm.metrics import bootstrap_ci, bootstrap_report


def _width(ci):
    return ci["high"] - ci["low"]


@pytest.mark.parametrize("metric", ["balanced_accuracy", "mcc", "accuracy"])
def test_bootstrap_ci_contains_estimate(metric):
    y_true, y_pred = random_labels(2000, seed=4)
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
    y_true, y_pred = random_labels(400, seed=5)
    fast = bootstrap_ci(y_true, y_pred, n_boot=2000, random_state=0)
    naive = bootstrap_ci(y_true, y_pred, metric=balanced_accuracy_score, n_boot=800, random_state=0)
    # tolerances are ~3 Monte-Carlo standard errors at 800 resamples
    assert naive["estimate"] == pytest.approx(fast["estimate"])
    assert naive["std"] == pytest.approx(fast["std"], rel=0.12)
    assert naive["low"] == pytest.approx(fast["low"], abs=0.015)
    assert naive["high"] == pytest.approx(fast["high"], abs=0.015)


def test_bootstrap_width_shrinks_with_more_data():
    small = bootstrap_ci(*random_labels(300, seed=6), n_boot=500, random_state=0)
    large = bootstrap_ci(*random_labels(3000, seed=6), n_boot=500, random_state=0)
    # width ~ 1/sqrt(n): ten times the data, about a third of the width
    assert _width(large) < 0.5 * _width(small)


def test_grouped_bootstrap_is_wider_when_lesion_images_are_duplicates():
    y_true, y_pred = random_labels(600, seed=7)
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
    y_true, y_pred = random_labels(300, seed=8)
    groups = np.repeat(np.arange(150), 2)
    named = bootstrap_ci(y_true, y_pred, metric="mcc", groups=groups, n_boot=2000, random_state=1)
    called = bootstrap_ci(
        y_true, y_pred, metric=matthews_corrcoef, groups=groups, n_boot=800, random_state=1
    )
    assert called["estimate"] == pytest.approx(named["estimate"])
    assert called["std"] == pytest.approx(named["std"], rel=0.12)


def test_bootstrap_is_deterministic_with_random_state():
    y_true, y_pred = random_labels(500, seed=9)
    groups = np.arange(500) // 3
    first = bootstrap_ci(y_true, y_pred, groups=groups, n_boot=300, random_state=42)
    assert bootstrap_ci(y_true, y_pred, groups=groups, n_boot=300, random_state=42) == first
    assert bootstrap_ci(y_true, y_pred, groups=groups, n_boot=300, random_state=43) != first
    gen = bootstrap_ci(y_true, y_pred, n_boot=300, random_state=np.random.default_rng(0))
    assert gen == bootstrap_ci(y_true, y_pred, n_boot=300, random_state=0)


def test_bootstrap_report_pairs_metrics():
    y_true, y_pred = random_labels(1000, seed=11)
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
    y_true, y_pred = random_labels(50, seed=12)
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
