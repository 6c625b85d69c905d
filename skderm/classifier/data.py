"""The data side of LesionClassifier: labels to codes, and the lesion-grouped internal split."""

from __future__ import annotations

import warnings

import numpy as np

from skderm.inputs import LesionDataset

__all__ = ["encode_labels", "grouped_split"]


def encode_labels(classes: np.ndarray, y) -> np.ndarray:
    """Indices of ``y``'s labels in the sorted ``classes``; unseen labels are named."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per image), got shape {y.shape}")
    codes = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    unknown = classes[codes] != y
    if unknown.any():
        raise ValueError(f"y holds labels unseen at fit time: {sorted(set(y[unknown]))[:5]}; "
                         f"known classes are {list(classes)}")
    return codes.astype(np.int64)


def grouped_split(dataset: LesionDataset, classes, valid_size: float, random_state):
    """Train and validation row indices: stratified by class, grouped by lesion."""
    from skderm.model_selection import grouped_split_indices

    groups = dataset.groups
    if groups is None:
        warnings.warn("X has no lesion-id column, so the internal validation split is by "
                      "image and may put images of one lesion on both sides; pass a DataFrame "
                      "with a lesion_id column (or set group_column)", UserWarning, stacklevel=4)
        groups = np.arange(len(dataset))
    labels = classes[dataset.y]  # class names, so messages read "df", not 3
    try:
        return grouped_split_indices(labels, groups, test_size=valid_size,
                                     random_state=random_state)
    except ValueError as exc:
        # too few lesions of some class to stratify: still group, drop stratification
        from sklearn.model_selection import GroupShuffleSplit

        reason = str(exc).split(";")[0].replace("test_size", "valid_size")
        warnings.warn(f"the internal validation split (valid_size={valid_size}) is grouped by "
                      f"lesion but not stratified: {reason}; raise valid_size, or pass "
                      "valid_size=None to train on everything", UserWarning, stacklevel=4)
        splitter = GroupShuffleSplit(n_splits=1, test_size=valid_size,
                                     random_state=random_state)
        return next(splitter.split(np.zeros(len(dataset)), dataset.y, groups))
