"""The data side of LesionClassifier: X to a dataset, labels to codes, batches, the split.

What skorch's ``get_dataset``, ``get_split_datasets`` and ``get_iterator`` do
for a LesionClassifier: images decoded once into a uint8 cache, metadata
encoded by an sklearn transformer, and a validation split grouped by lesion.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from skorch.utils import is_dataset

from skderm.backbones import get_backbone
from skderm.exceptions import DatasetError
from skderm.inputs import LesionDataset, collate, decode, parse_X
from skderm.metadata import check_metadata_at_predict, metadata_encoder

__all__ = ["LesionDataMixin", "encode_labels", "grouped_split"]


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


class LesionDataMixin:
    """skorch's data hooks for image tables: parse X, decode, encode metadata, split, batch."""

    def check_data(self, X, y=None):
        return None  # classes_ come from the labels in fit, not skorch's encoded ones

    def _image_size(self) -> tuple[int, int]:
        size = self.image_size
        if size is None:
            return tuple(get_backbone(self.backbone).input_size)
        if isinstance(size, Integral):
            return int(size), int(size)
        if len(size) != 2 or not all(isinstance(s, Integral) and s > 0 for s in size):
            raise ValueError(f"image_size={size!r} is not valid: use an int or (height, width), "
                             "e.g. 224 or (192, 256)")
        return int(size[0]), int(size[1])

    def _encode_y(self, y) -> np.ndarray:
        return encode_labels(self.classes_, y)

    def _metadata(self, inp, fit: bool):
        if not self.metadata_columns:
            return None
        frame = inp.frame[list(self.metadata_columns)]
        if fit:
            self.metadata_encoder_ = metadata_encoder(frame)
            enc = self.metadata_encoder_.fit_transform(frame)
            self.n_metadata_ = enc.shape[1]
        else:
            check_metadata_at_predict(frame, self.metadata_encoder_)
            enc = self.metadata_encoder_.transform(frame)
        return np.asarray(enc, dtype=np.float32)

    def _dataset(self, X, y=None, *, fit: bool = False) -> LesionDataset:
        # lesion ids serve the internal split only: images to predict may lack them
        inp = parse_X(X, path_column=self.path_column,
                      group_column=self.group_column if y is not None else None,
                      require_metadata=list(self.metadata_columns or []))
        if inp.n == 0:
            raise DatasetError("X is empty: it holds no images; pass at least one row")
        if y is not None and len(y) != inp.n:
            raise ValueError(f"X has {inp.n} rows but y has {len(y)} labels")
        images = decode(inp, self._image_size() if fit else self.image_size_,
                        progress=self.verbose > 1)
        return LesionDataset(images, y, self._metadata(inp, fit=fit), inp.groups)

    def get_dataset(self, X, y=None):
        if is_dataset(X):
            return X
        return self._dataset(X, None if y is None else self._encode_y(y))

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset = self.get_dataset(X, y)
        if self.train_split is not None:
            return self.train_split(dataset, y, **fit_params)  # a user-supplied skorch split
        if self.valid_size is None:
            return dataset, None
        train, valid = grouped_split(dataset, self.classes_, self.valid_size, self.random_state)
        return dataset.subset(train), dataset.subset(valid)

    def get_iterator(self, dataset, training=False):
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = {"batch_size": self.batch_size, "collate_fn": collate,
                  **self.get_params_for(prefix)}
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        if training:
            kwargs.setdefault("shuffle", True)
            if self.batch_generator_ is not None:
                kwargs.setdefault("generator", self.batch_generator_)
        if self._device_type() == "cuda":
            kwargs.setdefault("pin_memory", True)
        iterator = self.iterator_train if training else self.iterator_valid
        return iterator(dataset, **kwargs)
