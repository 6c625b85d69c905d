"""From what users pass as ``X`` to what the network reads.

``X`` may be

* the DataFrame :func:`skderm.load_ham10000` returns (an image-path column,
  ``lesion_id`` and metadata columns), or any DataFrame with a path column;
* a 1-D (or one-column 2-D) array/list/Series of image paths;
* an in-memory ``uint8`` array of images, shape (n, H, W, 3) or (n, H, W).

:func:`parse_X` reads it into a :class:`LesionInput`; :func:`decode` turns
that into ``uint8`` arrays of one size through :mod:`skderm.images` (and its
cache); :class:`LesionDataset` serves them to a DataLoader, which
:func:`collate` stacks into ``uint8`` batches.

Errors: :func:`parse_X` raises :class:`~skderm.exceptions.DatasetError` (a
``ValueError``) for any ``X`` it cannot read, naming the column, row or value;
:func:`check_labels` raises ``ValueError`` for unusable labels; decoding
raises :class:`~skderm.exceptions.ImageError` (a ``ValueError``) naming the
file. Nothing else is raised on purpose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from skderm._utils.values import describe_kinds, is_missing, value_kinds
from skderm.exceptions import DatasetError
from skderm.images import load_images, resize_array
from skderm.metadata import normalise_metadata, single_column

__all__ = [
    "LesionInput",
    "parse_X",
    "decode",
    "LesionDataset",
    "collate",
    "check_labels",
    "class_prior",
    "class_weights",
    "image_input_tags",
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
        path = os.fspath(v) if isinstance(v, (str, os.PathLike)) else None
        if not isinstance(path, str) or not path:
            raise DatasetError(f"{where}: row {i} holds {v!r}, not an image path; drop "
                               "rows without an image before fitting")
        if "\0" in path:
            # the OS refuses such names; say which row instead of failing inside os.stat
            raise DatasetError(f"{where}: row {i} holds {path!r}, which contains a NUL "
                               "character and cannot name a file")
        out.append(path)
    return out


def _groups_from(X: pd.DataFrame, column) -> np.ndarray:
    groups = single_column(X, column).to_numpy()
    missing = pd.isna(groups)
    if missing.any():
        raise DatasetError(f"X[{column!r}] has {int(missing.sum())} missing value(s) (first "
                           f"rows {np.flatnonzero(missing)[:5].tolist()}); every image needs "
                           "a lesion id so splits can keep a lesion together")
    kinds = value_kinds(groups)
    if len(kinds) > 1 or not kinds <= {"text", "number"}:
        raise DatasetError(f"X[{column!r}] must hold lesion ids of one type (all text or all "
                           f"numbers), but it holds {describe_kinds(groups)}; convert it "
                           f"with X[{column!r}].astype(str)")
    return groups


def parse_X(X, *, path_column: str = "path", group_column: str | None = "lesion_id",
            require_metadata: list[str] | None = None) -> LesionInput:
    """Read ``X`` (see module docstring) without decoding anything.

    Parameters
    ----------
    X : DataFrame, sequence of paths or uint8 array
        What the user passed as ``X``.
    path_column : str, default="path"
        Column of a DataFrame ``X`` holding image paths.
    group_column : str or None, default="lesion_id"
        Column holding lesion ids; read when present.
    require_metadata : list of str or None, default=None
        Metadata columns that must be in ``X``; they are checked with
        :func:`check_metadata` and returned normalised in ``frame``.

    Returns
    -------
    LesionInput

    Raises
    ------
    DatasetError
        ``X`` is of an unsupported type or shape, lacks a column, has two
        columns of one name, a row without an image path or a lesion id, or a
        metadata column :func:`check_metadata` refuses.
    """
    if isinstance(X, pd.DataFrame):
        if path_column not in X.columns:
            raise DatasetError(
                f"X has no image-path column {path_column!r} (columns: {list(X.columns)}); "
                f"pass path_column=<name of the column holding image paths>")
        metadata = list(require_metadata or [])
        missing = [c for c in metadata if c not in X.columns]
        if missing:
            raise DatasetError(f"metadata_columns {missing} are not in X (columns: "
                               f"{list(X.columns)})")
        groups = None
        if group_column is not None and group_column in X.columns:
            groups = _groups_from(X, group_column)
        paths = _paths_from(single_column(X, path_column).tolist(), f"X[{path_column!r}]")
        frame = X
        if metadata:
            frame = X.copy(deep=False)
            for name, values in normalise_metadata(X, metadata).items():
                frame[name] = values
        return LesionInput(n=len(X), paths=paths, groups=groups, frame=frame)
    if require_metadata:
        raise DatasetError(f"metadata_columns={require_metadata} needs X as a DataFrame, got "
                           f"{type(X).__name__}")
    if isinstance(X, pd.Series):
        return LesionInput(n=len(X), paths=_paths_from(X.tolist(), "X"))
    if isinstance(X, (list, tuple)):
        return LesionInput(n=len(X), paths=_paths_from(X, "X"))
    try:
        arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise DatasetError(f"X must be a DataFrame with a {path_column!r} column, a list of "
                           f"image paths, or uint8 images; numpy cannot read this "
                           f"{type(X).__name__}: {exc}") from None
    if arr.dtype == np.uint8 and arr.ndim in (3, 4):
        if arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4):
            raise DatasetError(f"uint8 images must be (n, H, W, 3), got shape {arr.shape}")
        return LesionInput(n=len(arr), arrays=arr)
    if arr.dtype.kind in "OUS" and (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)):
        return LesionInput(n=len(arr), paths=_paths_from(arr.reshape(-1).tolist(), "X"))
    raise DatasetError(
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
    """

    def __init__(self, images, y=None, metadata=None, groups=None):
        self.images = images
        self.y = y
        self.metadata = metadata
        self.groups = groups

    # skorch reads X and y from a dataset (skorch.utils.data_from_dataset);
    # X is the dataset itself, so scoring callbacks can predict on it.
    @property
    def X(self):
        return self

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices) -> LesionDataset:
        """A new dataset with the rows ``indices`` (images shared, not copied)."""
        idx = np.asarray(indices)
        return LesionDataset(
            [self.images[i] for i in idx],
            None if self.y is None else self.y[idx],
            None if self.metadata is None else self.metadata[idx],
            None if self.groups is None else self.groups[idx],
        )

    def __getitem__(self, i):
        img = self.images[i]
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


def check_labels(y, owner: str = "LesionClassifier") -> np.ndarray:
    """Validate class labels: 1-D, no missing values, discrete, at least two classes.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels: text (``"mel"``), integers, booleans, or a pandas
        ``Categorical`` (its values are the labels; unused categories are not
        classes).
    owner : str, default="LesionClassifier"
        The estimator the error messages name.

    Returns
    -------
    ndarray of shape (n_samples,)
        The labels (text as a numpy ``str`` array).

    Raises
    ------
    ValueError
        ``y`` is None, not 1-D, has missing labels (their count and first
        positions are named), mixes text and numbers, holds bytes or
        containers, is continuous, or holds only one class (named).
    """
    import warnings

    from sklearn.exceptions import DataConversionWarning
    from sklearn.utils.multiclass import type_of_target

    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None: "
                         "pass one label per image (e.g. data.target)")
    if isinstance(y, (pd.Series, pd.Index)):
        y = y.to_numpy()
    if isinstance(y, (list, tuple)):
        # np.asarray(["mel", None]) would turn None into the class "None", and
        # ["mel", 1] into ["mel", "1"]: look at the values before numpy does
        y = np.asarray(y, dtype=object)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected; it was "
                      "raveled to shape (n_samples,)",
                      DataConversionWarning, stacklevel=3)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per image), got shape {y.shape}")
    missing = np.flatnonzero([is_missing(v) for v in y]) if y.dtype == object \
        else np.flatnonzero(pd.isna(y))
    if len(missing):
        raise ValueError(f"y has {len(missing)} missing label(s) (NaN/None) at position(s) "
                         f"{missing[:10].tolist()}{' ...' if len(missing) > 10 else ''}; "
                         "drop those images or label them")
    if y.dtype.kind == "S":
        raise ValueError(f"y holds bytes labels such as {y[0]!r}; decode them to text, e.g. "
                         "np.char.decode(y)")
    if y.dtype == object:
        kinds = value_kinds(y)
        if "bytes" in kinds:
            raise ValueError(f"y holds bytes labels such as {describe_kinds(y)}; decode them "
                             "to text, e.g. [v.decode() for v in y]")
        if not kinds <= {"text", "number", "bool"} or len(kinds) > 1:
            raise ValueError(f"y must hold labels of one type (all text or all numbers), but "
                             f"it holds {describe_kinds(y)}; convert it, e.g. "
                             "y.astype(str)")
        # one kind: let numpy pick the matching dtype (str, int, float or bool)
        y = np.asarray(y.tolist())
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


def class_prior(y, classes) -> np.ndarray:
    """Frequency of each of ``classes`` in ``y``; an absent class counts as half an image."""
    y = np.asarray(y)
    counts = np.maximum([np.sum(y == c) for c in classes], 0.5)
    return counts / counts.sum()


def image_input_tags(tags):
    """sklearn tags of an estimator whose X holds images or their paths, not a
    2-D numeric array (sklearn's common checks then skip numeric-input ones)."""
    tags.input_tags.two_d_array = False
    tags.input_tags.string = True
    return tags
