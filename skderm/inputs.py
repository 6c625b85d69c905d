"""From what users pass as ``X`` to what the network reads.

``X`` may be

* the DataFrame :func:`skderm.load_ham10000` returns (an image-path column,
  ``lesion_id`` and metadata columns), or any DataFrame with a path column;
* a 1-D (or one-column 2-D) array/list/Series of image paths;
* an in-memory ``uint8`` array of images, shape (n, H, W, 3) or (n, H, W).

:func:`parse_X` reads it into a :class:`LesionInput`; :func:`decode` turns
that into ``uint8`` arrays of one size through :mod:`skderm.images` (and its
cache); :class:`LesionDataset` serves them to a DataLoader as ``uint8``
tensors, augmented only when it is given a transform.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from skderm.images import load_images, resize_array

__all__ = [
    "LesionInput",
    "parse_X",
    "decode",
    "LesionDataset",
    "collate",
    "check_labels",
    "class_weights",
    "metadata_encoder",
]


@dataclass
class LesionInput:
    n: int
    paths: list[str] | None = None
    arrays: np.ndarray | None = None
    groups: np.ndarray | None = None
    frame: pd.DataFrame | None = None


def _paths_from(values, where: str) -> list[str]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, (str, os.PathLike)) and os.fspath(v):
            out.append(os.fspath(v))
        else:
            raise ValueError(f"{where}: row {i} holds {v!r}, not an image path; drop "
                             "rows without an image before fitting")
    return out


def parse_X(X, *, path_column: str = "path", group_column: str | None = "lesion_id",
            require_metadata: list[str] | None = None) -> LesionInput:
    """Read ``X`` (see module docstring) without decoding anything."""
    if isinstance(X, pd.DataFrame):
        if path_column not in X.columns:
            raise ValueError(
                f"X has no image-path column {path_column!r} (columns: {list(X.columns)}); "
                f"pass path_column=<name of the column holding image paths>")
        missing = [c for c in (require_metadata or []) if c not in X.columns]
        if missing:
            raise ValueError(f"metadata_columns {missing} are not in X (columns: "
                             f"{list(X.columns)})")
        groups = None
        if group_column is not None and group_column in X.columns:
            groups = X[group_column].to_numpy()
            if pd.isna(groups).any():
                raise ValueError(f"X[{group_column!r}] has missing values; every image needs "
                                 "a lesion id so splits can keep a lesion together")
        return LesionInput(n=len(X), paths=_paths_from(X[path_column].tolist(),
                                                        f"X[{path_column!r}]"),
                           groups=groups, frame=X)
    if require_metadata:
        raise ValueError(f"metadata_columns={require_metadata} needs X as a DataFrame, got "
                         f"{type(X).__name__}")
    if isinstance(X, pd.Series):
        return LesionInput(n=len(X), paths=_paths_from(X.tolist(), "X"))
    if isinstance(X, (list, tuple)):
        return LesionInput(n=len(X), paths=_paths_from(X, "X"))
    arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if arr.dtype == np.uint8 and arr.ndim in (3, 4):
        if arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4):
            raise ValueError(f"uint8 images must be (n, H, W, 3), got shape {arr.shape}")
        return LesionInput(n=len(arr), arrays=arr)
    if arr.dtype.kind in "OUS" and (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)):
        return LesionInput(n=len(arr), paths=_paths_from(arr.reshape(-1).tolist(), "X"))
    raise ValueError(
        f"X must be a DataFrame with a {path_column!r} column, a list/array of image paths, "
        f"or uint8 images of shape (n, H, W, 3); got {type(X).__name__} with dtype "
        f"{getattr(arr, 'dtype', '?')} and shape {getattr(arr, 'shape', '?')}")


def decode(inp: LesionInput, size: tuple[int, int], *, progress: bool = False
           ) -> list[np.ndarray]:
    """Decoded ``uint8`` (H, W, 3) arrays of ``size`` for every row of ``inp``."""
    if inp.paths is not None:
        return load_images(inp.paths, size, progress=progress)
    return [resize_array(a, size) for a in inp.arrays]


class LesionDataset(torch.utils.data.Dataset):
    """``uint8`` image tensors (and metadata) for a DataLoader.

    Parameters
    ----------
    images : sequence of ndarray (H, W, 3) uint8
        Decoded images, all of one size (shared, never copied).
    y : ndarray of int or None
        Encoded labels; ``None`` at prediction time.
    metadata : ndarray of float32 (n, m) or None
        Encoded metadata features, fused into the network's head.
    groups : ndarray or None
        Lesion id per image, for grouped internal splits.
    transform : callable or None
        Applied to each (3, H, W) uint8 tensor: augmentation, training only.
    """

    def __init__(self, images, y=None, metadata=None, groups=None, transform=None):
        self.images = images
        self.y = y
        self.metadata = metadata
        self.groups = groups
        self.transform = transform

    # skorch reads X and y from a dataset (skorch.utils.data_from_dataset);
    # X is the dataset itself, so scoring callbacks can predict on it.
    @property
    def X(self):
        return self

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices, *, transform=None) -> LesionDataset:
        """A new dataset with the rows ``indices`` (images shared, not copied)."""
        idx = np.asarray(indices)
        return LesionDataset(
            [self.images[i] for i in idx],
            None if self.y is None else self.y[idx],
            None if self.metadata is None else self.metadata[idx],
            None if self.groups is None else self.groups[idx],
            transform=transform,
        )

    def __getitem__(self, i):
        img = self.images[i]
        if self.transform is not None:
            # the cached array is read-only and shared: transform a copy
            img = self.transform(torch.from_numpy(np.array(img)).permute(2, 0, 1))
        x = img if self.metadata is None else {"images": img, "metadata": self.metadata[i]}
        y = -1 if self.y is None else int(self.y[i])
        return x, y


def _stack_images(items) -> torch.Tensor:
    if isinstance(items[0], np.ndarray):
        # one copy, straight from the cache into the batch: (N, H, W, 3) -> (N, 3, H, W)
        return torch.from_numpy(np.stack(items)).permute(0, 3, 1, 2).contiguous()
    return torch.stack(items)


def collate(batch):
    """Stack ``(x, y)`` items into a ``uint8`` image batch (and metadata) and labels."""
    xs, ys = zip(*batch, strict=False)
    y = torch.as_tensor(ys, dtype=torch.long)
    if isinstance(xs[0], dict):
        return {"images": _stack_images([x["images"] for x in xs]),
                "metadata": torch.from_numpy(np.stack([x["metadata"] for x in xs]))}, y
    return _stack_images(list(xs)), y


def check_labels(y) -> np.ndarray:
    """Validate class labels: 1-D, no missing values, discrete, at least two classes."""
    import warnings

    from sklearn.exceptions import DataConversionWarning
    from sklearn.utils.multiclass import type_of_target

    if y is None:
        raise ValueError("LesionClassifier requires y to be passed, but the target y is None: "
                         "pass one label per image (e.g. data.target)")
    if isinstance(y, (pd.Series, pd.Index)):
        y = y.to_numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected; it was "
                      "raveled to shape (n_samples,)",
                      DataConversionWarning, stacklevel=3)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per image), got shape {y.shape}")
    if pd.isna(y).any():
        raise ValueError(f"y has {int(pd.isna(y).sum())} missing labels (NaN/None); drop "
                         "those images or label them")
    if y.dtype.kind == "O" and all(isinstance(v, str) for v in y):
        y = y.astype(str)
    if type_of_target(y) == "continuous":
        raise ValueError(f"Unknown label type: continuous (y looks like a regression target, "
                         f"e.g. {y[:3].tolist()}); pass class labels such as 'mel' or 0..6")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"y holds only one class {classes.tolist()}; a classifier needs "
                         "at least 2 classes")
    return y


def class_weights(class_weight, y, classes) -> np.ndarray | None:
    if class_weight is None:
        return None
    from sklearn.utils.class_weight import compute_class_weight

    if isinstance(class_weight, dict):
        unknown = set(class_weight) - set(classes.tolist())
        if unknown:
            raise ValueError(f"class_weight names classes not in y: {sorted(map(str, unknown))}"
                             f"; classes are {list(classes)}")
        return np.array([float(class_weight.get(c, 1.0)) for c in classes])
    return compute_class_weight("balanced", classes=classes, y=y)


def metadata_encoder(frame: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    other = [c for c in frame.columns if c not in numeric]
    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                           StandardScaler()), numeric))
    if other:
        parts.append(("cat", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="missing"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)), other))
    return ColumnTransformer(parts, sparse_threshold=0.0)
