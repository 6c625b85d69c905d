"""Lesion-grouped splits, and audits that prove a split does not leak lesions.

HAM10000 has several images of many lesions. A split that puts one image of a
lesion in training and another in test scores the model on a lesion it has
already seen, which inflates every metric. Every split here is grouped by
``lesion_id``; :func:`check_no_lesion_leakage` and :func:`audit_splits` check
any other splitter.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold
from sklearn.utils._indexing import _safe_indexing
from sklearn.utils.validation import check_consistent_length

from skderm.exceptions import DatasetError

__all__ = [
    "check_lesion_cv",
    "grouped_split_indices",
    "lesion_train_test_split",
    "check_no_lesion_leakage",
    "audit_splits",
]


def grouped_split_indices(
    y,
    groups,
    *,
    test_size: float = 0.25,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into train and test, stratified by ``y``, grouped by ``groups``.

    The split is the first fold of
    ``StratifiedGroupKFold(n_splits=k, shuffle=True)``, with
    ``k = round(1 / test_size)``: the test side holds about ``1/k`` of the
    samples, so a ``test_size`` that is not ``1/k`` is rounded to the nearest
    such fraction (0.3 gives 1/3, 0.15 gives 1/7). For ``test_size > 0.5`` the
    roles swap: ``k = round(1 / (1 - test_size))`` and the first fold is the
    *train* side. No group is on both sides.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels to stratify by.
    groups : array-like of shape (n_samples,)
        Group of each sample (``lesion_id``).
    test_size : float, default=0.25
        Approximate fraction of samples in the test side, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffle of groups.

    Returns
    -------
    train_idx, test_idx : ndarray of int
        Sorted positions of the two sides.

    Raises
    ------
    DatasetError
        When a class has fewer groups than folds: it could not be stratified.
    """
    y, groups = _as_1d(y, "y"), _as_1d(groups, "groups")
    check_consistent_length(y, groups)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    swap = test_size > 0.5
    n_splits = max(2, round(1 / (1 - test_size if swap else test_size)))
    _check_groups_per_class(y, groups, n_splits, test_size)
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():
        # the class-size warning is replaced by the explicit check above
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        train_idx, test_idx = next(cv.split(np.zeros(len(y)), y, groups))
    if swap:
        train_idx, test_idx = test_idx, train_idx
    return np.sort(train_idx), np.sort(test_idx)


def _check_groups_per_class(y, groups, n_splits, test_size) -> None:
    per_class = pd.Series(groups).groupby(pd.Series(y)).nunique()
    short = per_class[per_class < n_splits]
    if len(short):
        label, count = short.index[0], int(short.iloc[0])
        label = label.item() if hasattr(label, "item") else label  # 0, not np.int64(0)
        short = {k.item() if hasattr(k, "item") else k: int(v) for k, v in short.items()}
        if count >= 2:
            advice = f"use test_size={1 / count:.2g} or larger, or drop or merge the rare class"
        else:
            advice = "a class with one lesion cannot be on both sides: drop or merge it"
        raise DatasetError(
            f"class {label!r} has only {count} lesion(s), but a stratified lesion-grouped split "
            f"with test_size={test_size} needs at least {n_splits} per class "
            f"(classes short of lesions: {short}); {advice}, "
            "or split without stratification"
        )


def lesion_train_test_split(
    *arrays,
    groups,
    stratify=None,
    test_size: float = 0.25,
    random_state: int | np.random.RandomState | None = None,
) -> list:
    """Split arrays into train and test sides, keeping each lesion on one side.

    A lesion-grouped :func:`sklearn.model_selection.train_test_split`.

    Parameters
    ----------
    *arrays : sequence of indexables of the same length
        Lists, numpy arrays, pandas DataFrames or Series. pandas objects stay
        pandas objects and keep their index.
    groups : array-like of shape (n_samples,) or str
        Lesion of each sample, or the name of a column of the first array
        when it is a DataFrame (``groups="lesion_id"``).
    stratify : array-like of shape (n_samples,), str or None, default=None
        Labels to stratify by (or a column name of the first array). ``None``
        splits groups at random with ``GroupShuffleSplit``, where ``test_size``
        is the fraction of *groups* in test; otherwise see
        :func:`grouped_split_indices`.
    test_size : float, default=0.25
        Fraction in test, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seed of the split.

    Returns
    -------
    splitting : list, length 2 * len(arrays)
        ``[a_train, a_test, b_train, b_test, ...]``.
    """
    if not arrays:
        raise ValueError("lesion_train_test_split needs at least one array to split")
    check_consistent_length(*arrays)
    groups = _column_or_array(arrays[0], groups, "groups")
    check_consistent_length(arrays[0], groups)
    if stratify is None:
        if not 0 < test_size < 1:
            raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
        train_idx, test_idx = next(splitter.split(np.zeros(len(groups)), groups=groups))
        train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    else:
        stratify = _column_or_array(arrays[0], stratify, "stratify")
        train_idx, test_idx = grouped_split_indices(
            stratify, groups, test_size=test_size, random_state=random_state
        )
    return [
        part
        for array in arrays
        for part in (_safe_indexing(array, train_idx), _safe_indexing(array, test_idx))
    ]


def check_no_lesion_leakage(train_idx, test_idx, groups) -> None:
    """Raise if a lesion has samples on both sides of a split.

    Parameters
    ----------
    train_idx, test_idx : array-like of int
        Positions of the two sides.
    groups : array-like of shape (n_samples,)
        Lesion of each sample.

    Raises
    ------
    DatasetError
        Naming how many lesions are shared, and the first five (sorted).
    """
    shared = _shared_groups(train_idx, test_idx, _as_1d(groups, "groups"))
    if shared:
        raise DatasetError(
            f"{len(shared)} lesion(s) are on both sides of the split, first: {shared[:5]}; "
            "split by lesion_id (StratifiedGroupKFold, lesion_train_test_split) instead"
        )


def audit_splits(cv, X, y=None, groups=None) -> pd.DataFrame:
    """Count, for each fold of a splitter, the lesions it puts on both sides.

    Parameters
    ----------
    cv : cross-validation splitter
        Anything with ``split(X, y, groups)``; ``groups`` is passed whether or
        not it uses them, so image-level splitters (``KFold``) show up leaky.
    X : array-like or DataFrame
        Data to split.
    y : array-like, default=None
        Labels.
    groups : array-like or str
        Lesion of each sample, or a column name of ``X``.

    Returns
    -------
    audit : DataFrame
        One row per fold: ``fold``, ``n_train``, ``n_test``,
        ``n_shared_lesions`` (0 for a leak-free fold).
    """
    if groups is None:
        raise ValueError("audit_splits needs groups (the lesion_id of each sample) to audit")
    groups = _column_or_array(X, groups, "groups")
    check_consistent_length(X, groups)
    with warnings.catch_warnings():
        # groups go to every splitter on purpose: an image-level one must show its leaks
        warnings.filterwarnings("ignore", message="The groups parameter is ignored")
        splits = list(cv.split(X, y, groups))
    rows = [
        {
            "fold": fold,
            "n_train": len(train_idx),
            "n_test": len(test_idx),
            "n_shared_lesions": len(_shared_groups(train_idx, test_idx, groups)),
        }
        for fold, (train_idx, test_idx) in enumerate(splits)
    ]
    return pd.DataFrame(rows, columns=["fold", "n_train", "n_test", "n_shared_lesions"])


def check_lesion_cv(cv, X, y=None, groups=None, *, on_leak: str = "raise") -> list:
    """Materialise a splitter's folds, refusing (or warning about) lesion leakage.

    Pass the result as ``cv=`` to GridSearchCV, cross_validate and friends:
    the folds are then guaranteed leak-free.

    Parameters
    ----------
    cv : int or cross-validation splitter
        An int ``k`` means ``StratifiedGroupKFold(k)``.
    X : array-like or DataFrame
    y : array-like, default=None
    groups : array-like or str
        Lesion of each sample, or a column name of ``X`` (e.g. ``"lesion_id"``).
    on_leak : {"raise", "warn"}, default="raise"

    Returns
    -------
    splits : list of (train_idx, test_idx)

    Raises
    ------
    DatasetError
        When ``on_leak="raise"`` and a fold shares a lesion between its sides,
        naming the splitter, the fold and the count.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if on_leak not in ("raise", "warn"):
        raise ValueError(f"on_leak must be 'raise' or 'warn', got {on_leak!r}")
    if isinstance(cv, int):
        cv = StratifiedGroupKFold(n_splits=cv)
    if groups is None:
        raise ValueError("check_lesion_cv needs groups (the lesion_id of each sample)")
    groups = _column_or_array(X, groups, "groups")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The groups parameter is ignored")
        splits = list(cv.split(X, y, groups))
    for fold, (train_idx, test_idx) in enumerate(splits):
        shared = _shared_groups(train_idx, test_idx, groups)
        if shared:
            msg = (f"{type(cv).__name__} puts {len(shared)} lesion(s) on both sides of fold "
                   f"{fold} (first: {shared[:5]}): images of one lesion leak into the test "
                   "fold; use GroupKFold or StratifiedGroupKFold with groups=lesion_id")
            if on_leak == "raise":
                raise DatasetError(msg)
            warnings.warn(msg, UserWarning, stacklevel=2)
            break
    return splits


def _shared_groups(train_idx, test_idx, groups: np.ndarray) -> list:
    # tolist(): plain Python values, so messages read ['HAM_1'], not [np.str_('HAM_1')]
    train_groups = set(groups[np.asarray(train_idx, dtype=int)].tolist())
    shared = train_groups & set(groups[np.asarray(test_idx, dtype=int)].tolist())
    return sorted(shared, key=str)


def _column_or_array(first, value, name: str) -> np.ndarray:
    if isinstance(value, str):
        if not isinstance(first, pd.DataFrame):
            raise ValueError(
                f"{name}={value!r} is a column name, but the first array is a "
                f"{type(first).__name__}, not a DataFrame: pass the values instead"
            )
        if value not in first.columns:
            raise ValueError(
                f"{name}={value!r} is not a column of the DataFrame; columns: {list(first.columns)}"
            )
        value = first[value]
    return _as_1d(value, name)


def _as_1d(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array
