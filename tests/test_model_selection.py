"""Tests of skderm.model_selection: lesion-grouped splits and leakage audits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold

from skderm.exceptions import DatasetError
from skderm.model_selection import (
    audit_splits,
    check_no_lesion_leakage,
    grouped_split_indices,
    lesion_train_test_split,
)


def _groups_of(idx, groups):
    return set(np.asarray(groups)[idx])


# ------------------------------------------------------------------ grouped_split_indices


def test_grouped_split_keeps_lesions_on_one_side_and_covers_all(lesions):
    train, test = grouped_split_indices(lesions.target, lesions.groups, random_state=0)
    assert not _groups_of(train, lesions.groups) & _groups_of(test, lesions.groups)
    assert sorted(np.concatenate([train, test])) == list(range(len(lesions.target)))
    assert 0.15 <= len(test) / len(lesions.target) <= 0.35


def test_grouped_split_keeps_class_proportions(lesions):
    train, test = grouped_split_indices(lesions.target, lesions.groups, random_state=1)
    y = lesions.target.to_numpy()
    overall = pd.Series(y).value_counts(normalize=True)
    in_test = pd.Series(y[test]).value_counts(normalize=True).reindex(overall.index, fill_value=0)
    assert set(y[test]) == set(y[train]) == set(y)
    assert (in_test - overall).abs().max() < 0.1


def test_grouped_split_accepts_lists_series_arrays_and_is_reproducible(lesions):
    y, groups = lesions.target, lesions.groups
    as_series = grouped_split_indices(y, groups, random_state=3)
    as_lists = grouped_split_indices(y.tolist(), groups.tolist(), random_state=3)
    as_arrays = grouped_split_indices(y.to_numpy(), groups.to_numpy(), random_state=3)
    for other in (as_lists, as_arrays):
        np.testing.assert_array_equal(as_series[0], other[0])
        np.testing.assert_array_equal(as_series[1], other[1])
    different = grouped_split_indices(y, groups, random_state=4)
    assert not np.array_equal(as_series[1], different[1])


@pytest.mark.parametrize(
    "test_size, expected", [(0.2, 1 / 5), (0.3, 1 / 3), (0.5, 1 / 2), (0.8, 4 / 5)]
)
def test_grouped_split_test_size_is_rounded_to_one_over_k(lesions, test_size, expected):
    train, test = grouped_split_indices(
        lesions.target, lesions.groups, test_size=test_size, random_state=0
    )
    assert abs(len(test) / len(lesions.target) - expected) < 0.1
    assert not _groups_of(train, lesions.groups) & _groups_of(test, lesions.groups)


def test_grouped_split_explains_a_class_short_of_lesions():
    y = ["nv"] * 8 + ["df"] * 2
    groups = [f"n{i}" for i in range(8)] + ["d0", "d1"]
    with pytest.raises(
        DatasetError, match=r"class 'df' has only 2 lesion\(s\).*at least 4.*test_size=0.5"
    ):
        grouped_split_indices(y, groups, test_size=0.25)
    # the advised test_size works: one df lesion on each side
    train, test = grouped_split_indices(y, groups, test_size=0.5, random_state=0)
    assert "df" in np.asarray(y)[train] and "df" in np.asarray(y)[test]


@pytest.mark.parametrize("test_size", [0, 1, 1.5, -0.1])
def test_grouped_split_rejects_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        grouped_split_indices([0, 1] * 10, list(range(20)), test_size=test_size)


# ------------------------------------------------------------------ lesion_train_test_split


def test_split_keeps_pandas_types_and_original_index(lesions):
    X = lesions.data.set_index(pd.Index(range(1000, 1000 + len(lesions.data))))
    y = lesions.target.set_axis(X.index)
    X_train, X_test, y_train, y_test = lesion_train_test_split(
        X, y, groups="lesion_id", stratify=y, random_state=0
    )
    assert isinstance(X_train, pd.DataFrame) and isinstance(y_test, pd.Series)
    assert list(X_train.columns) == list(X.columns)
    assert X_train.index.equals(y_train.index) and X_test.index.equals(y_test.index)
    assert set(X_train.index) | set(X_test.index) == set(X.index)
    assert (X_train.loc[X_train.index, "path"] == X.loc[X_train.index, "path"]).all()
    assert not set(X_train.lesion_id) & set(X_test.lesion_id)
    assert set(y_test) == set(y)


def test_split_without_stratify_is_grouped_and_handles_arrays_and_lists(lesions):
    paths = lesions.data.path.tolist()
    labels = lesions.target.to_numpy()
    p_train, p_test, l_train, l_test = lesion_train_test_split(
        paths, labels, groups=lesions.groups, test_size=0.3, random_state=0
    )
    assert isinstance(p_train, list) and isinstance(l_test, np.ndarray)
    assert len(p_train) + len(p_test) == len(paths)
    lesion_of = dict(zip(lesions.data.path, lesions.groups, strict=True))
    assert not {lesion_of[p] for p in p_train} & {lesion_of[p] for p in p_test}


def test_split_groups_column_name_needs_a_dataframe(lesions):
    with pytest.raises(ValueError, match="lesion_id"):
        lesion_train_test_split(lesions.data.to_numpy(), groups="lesion_id")
    with pytest.raises(ValueError, match="'lesion'.*columns"):
        lesion_train_test_split(lesions.data, groups="lesion")


def test_split_rejects_inconsistent_lengths(lesions):
    with pytest.raises(ValueError, match="inconsistent"):
        lesion_train_test_split(lesions.data, lesions.target[:-1], groups="lesion_id")


# ------------------------------------------------------------------ leakage checks


def test_check_no_lesion_leakage_names_the_shared_lesion():
    groups = np.array(["HAM_1", "HAM_1", "HAM_2", "HAM_3"])
    with pytest.raises(DatasetError, match=r"1 lesion\(s\).*\['HAM_1'\]"):
        check_no_lesion_leakage([0, 2], [1, 3], groups)
    assert check_no_lesion_leakage([0, 1], [2, 3], groups) is None


def test_check_no_lesion_leakage_lists_at_most_five():
    groups = [f"L{i}" for i in range(8)] * 2
    with pytest.raises(DatasetError, match=r"8 lesion\(s\).*\['L0', 'L1', 'L2', 'L3', 'L4'\]; "):
        check_no_lesion_leakage(range(8), range(8, 16), groups)


def test_audit_flags_image_level_kfold_and_clears_grouped_splitters(lesions):
    X, y = lesions.data, lesions.target
    leaky = audit_splits(KFold(5, shuffle=True, random_state=0), X, y, lesions.groups)
    assert list(leaky.columns) == ["fold", "n_train", "n_test", "n_shared_lesions"]
    assert leaky.fold.tolist() == list(range(5))
    assert (leaky.n_train + leaky.n_test == len(X)).all()
    assert (leaky.n_shared_lesions > 0).all()
    for cv in (StratifiedGroupKFold(5, shuffle=True, random_state=0), GroupKFold(5)):
        clean = audit_splits(cv, X, y, "lesion_id")
        assert len(clean) == 5 and (clean.n_shared_lesions == 0).all()


def test_check_lesion_cv_refuses_image_level_kfold(lesions):
    from sklearn.model_selection import KFold

    from skderm.model_selection import check_lesion_cv

    X, y = lesions.data, lesions.target
    with pytest.raises(DatasetError, match=r"KFold puts \d+ lesion\(s\) on both sides"):
        check_lesion_cv(KFold(3, shuffle=True, random_state=0), X, y, groups="lesion_id")
    with pytest.warns(UserWarning, match="leak"):
        check_lesion_cv(KFold(3, shuffle=True, random_state=0), X, y, groups="lesion_id",
                        on_leak="warn")


def test_check_lesion_cv_returns_usable_leak_free_folds(lesions):
    from sklearn.dummy import DummyClassifier
    from sklearn.model_selection import cross_val_score

    from skderm.model_selection import check_lesion_cv

    X, y, groups = lesions.data, lesions.target, lesions.groups
    splits = check_lesion_cv(4, X, y, groups=groups)
    assert len(splits) == 4
    for train, test in splits:
        assert not set(groups.iloc[train]) & set(groups.iloc[test])
    scores = cross_val_score(DummyClassifier(), X, y, cv=splits)
    assert len(scores) == 4
