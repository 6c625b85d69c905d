"""Lesion-aware samplers (imblearn API) and imblearn's own samplers on path DataFrames."""

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

from skderm.sampling import LesionDeduplicator, OverRateSampler


@pytest.fixture
def frame():
    # 10 rows: class a x6 (3 lesions), b x3 (2 lesions), c x1
    X = pd.DataFrame({
        "path": [f"/img/{i}.jpg" for i in range(10)],
        "lesion_id": ["L1", "L1", "L2", "L2", "L3", "L3", "L4", "L4", "L5", "L6"],
        "age": [50.0, 50.0, np.nan, np.nan, 30.0, 30.0, 70.0, 70.0, 20.0, 45.0],
    })
    y = pd.Series(["a"] * 6 + ["b"] * 3 + ["c"], name="dx")
    return X, y


def test_over_rate_rule(frame):
    X, y = frame
    s = OverRateSampler(over_rate=1.0)
    Xr, yr = s.fit_resample(X, y)
    # frequencies: a .6 -> r=1.67 (kept), b .3 -> r=3.33 (x3), c .1 -> r=10 (x10)
    assert s.repeats_ == {"a": 1, "b": 3, "c": 10}
    assert yr.value_counts().to_dict() == {"a": 6, "b": 9, "c": 10}
    assert isinstance(Xr, pd.DataFrame) and list(Xr.columns) == list(X.columns)
    # rows are replicated, never invented: every output path exists in the input
    assert set(Xr["path"]) == set(X["path"])
    # labels still match their rows
    lookup = dict(zip(X["path"], y, strict=True))
    assert all(lookup[p] == label for p, label in zip(Xr["path"], yr, strict=True))


def test_over_rate_larger_rate_oversamples_less(frame):
    X, y = frame
    n1 = len(OverRateSampler(over_rate=1.0).fit_resample(X, y)[1])
    n4 = len(OverRateSampler(over_rate=4.0).fit_resample(X, y)[1])
    assert n4 < n1
    assert OverRateSampler(over_rate=4.0).fit(X, y).repeats_ == {"a": 1, "b": 1, "c": 2}


@pytest.mark.parametrize("bad", [0, -1.0, "x", True])
def test_over_rate_bad_values(frame, bad):
    X, y = frame
    with pytest.raises(ValueError, match="over_rate"):
        OverRateSampler(over_rate=bad).fit_resample(X, y)


def test_deduplicator_one_row_per_lesion(frame):
    X, y = frame
    Xr, yr = LesionDeduplicator().fit_resample(X, y)
    assert Xr["lesion_id"].is_unique and set(Xr["lesion_id"]) == set(X["lesion_id"])
    assert Xr["path"].tolist() == ["/img/0.jpg", "/img/2.jpg", "/img/4.jpg", "/img/6.jpg",
                                   "/img/8.jpg", "/img/9.jpg"]
    r1 = LesionDeduplicator(keep="random", random_state=0).fit_resample(X, y)[0]
    r2 = LesionDeduplicator(keep="random", random_state=0).fit_resample(X, y)[0]
    assert r1["path"].tolist() == r2["path"].tolist() and r1["lesion_id"].is_unique


def test_deduplicator_errors(frame):
    X, y = frame
    with pytest.raises(ValueError, match="'lesion_id' column"):
        LesionDeduplicator().fit_resample(X.drop(columns="lesion_id"), y)
    with pytest.raises(ValueError, match="keep"):
        LesionDeduplicator(keep="last").fit_resample(X, y)
    with pytest.raises(ValueError, match="10 rows but y has 3"):
        LesionDeduplicator().fit_resample(X, y[:3])


class _Recorder(DummyClassifier):
    """Remembers the rows it was fitted on."""

    def fit(self, X, y, sample_weight=None):
        self.seen_ = X.copy()
        return super().fit(X, y)


@pytest.mark.parametrize("sampler", [LesionDeduplicator(), OverRateSampler(),
                                     RandomOverSampler(random_state=0),
                                     RandomUnderSampler(random_state=0)])
def test_samplers_in_imblearn_pipeline_apply_at_fit_only(lesions, sampler):
    X, y = lesions.data, lesions.target
    pipe = make_pipeline(sampler, _Recorder(strategy="most_frequent")).fit(X, y)
    seen = pipe[-1].seen_
    assert list(seen.columns) == list(X.columns)  # the DataFrame survives the sampler
    assert len(seen) != len(X)
    assert len(pipe.predict(X)) == len(X)  # predict sees every row


def test_over_rate_tunable_by_grid_search(lesions):
    X, y, groups = lesions.data, lesions.target, lesions.groups
    pipe = make_pipeline(OverRateSampler(), _Recorder(strategy="stratified", random_state=0))
    grid = GridSearchCV(pipe, {"overratesampler__over_rate": [0.5, 1.0, 4.0]},
                        cv=StratifiedGroupKFold(3), scoring="balanced_accuracy")
    grid.fit(X, y, groups=groups)
    assert grid.best_params_["overratesampler__over_rate"] in (0.5, 1.0, 4.0)
    assert len(grid.cv_results_["mean_test_score"]) == 3
