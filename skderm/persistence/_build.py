"""A checked payload back into fitted estimators, every field checked first.

A file holds only the fields save_model writes, each of the type and within
the bounds of :mod:`skderm.persistence._format`; anything else raises
:class:`~skderm.exceptions.ModelFileError` before it can reach an estimator.
"""

from __future__ import annotations

import math

import numpy as np

from skderm.exceptions import ModelFileError
from skderm.persistence._encoder import rebuild_encoder
from skderm.persistence._format import (
    FORMAT,
    FORMAT_ENSEMBLE,
    FORMAT_LESION_LEVEL,
    MAX_BATCH_SIZE,
    MAX_CLASSES,
    MAX_HIDDEN_UNITS,
    MAX_IMAGE_SIDE,
    MAX_MEMBERS,
    is_saved_param,
    plain,
    refused,
    saved_param_names,
)

_HEAD = {"format", "format_version", "skderm_version", "sha256"}
_FIELDS = {
    FORMAT: {"params", "dropped_params", "classes", "preprocessing", "image_size",
             "n_metadata", "metadata_encoder", "history", "state_dict"},
    FORMAT_ENSEMBLE: {"names", "weights", "voting_params", "classes", "members"},
    FORMAT_LESION_LEVEL: {"decision", "class_prior", "classes", "estimator"},
}
_BUILD_ERRORS = (TypeError, ValueError, KeyError, AttributeError, RuntimeError, IndexError)


def _fields(payload, expected: set, where: str) -> None:
    if not isinstance(payload, dict):
        raise refused(where, "a model entry is not a dict")
    extra, missing = sorted(set(payload) - expected), sorted(expected - set(payload))
    if extra or missing:
        raise refused(where, f"it has the fields {extra} save_model never writes"
                      if extra else f"it lacks the fields {missing}")


def _int_in(value, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _finite_list(value, n: int) -> bool:
    return isinstance(value, list) and len(value) == n and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in value)


def _size_ok(size) -> bool:
    sides = size if isinstance(size, list) and len(size) == 2 else [size]
    return all(_int_in(s, 1, MAX_IMAGE_SIDE) for s in sides)


def _classes(value, where: str) -> np.ndarray:
    ok = isinstance(value, list) and 1 <= len(value) <= MAX_CLASSES and all(
        isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)
    if not ok or len(set(value)) != len(value) or len({type(v) for v in value}) != 1:
        raise refused(where, f"its classes are not 1 to {MAX_CLASSES} distinct labels "
                      "of one type")
    return np.asarray(value)


def check_params(params, where: str) -> None:
    """Refuse parameters save_model never writes, and values beyond what skderm allows."""
    if not isinstance(params, dict):
        raise refused(where, "its params are not a dict")
    allowed = saved_param_names()
    planted = sorted(n for n in params if not is_saved_param(n, allowed))
    if planted:
        raise refused(where, f"it sets the parameters {planted}, which are not among those "
                      "save_model writes")
    bounds = {
        "image_size": (lambda v: v is None or _size_ok(v),
                       f"None, an int or [height, width], each side 1 to {MAX_IMAGE_SIDE}"),
        "batch_size": (lambda v: v == -1 or _int_in(v, 1, MAX_BATCH_SIZE),
                       f"an int from 1 to {MAX_BATCH_SIZE} (or -1)"),
        "module__hidden_units": (lambda v: v is None or _int_in(v, 1, MAX_HIDDEN_UNITS),
                         f"None or an int from 1 to {MAX_HIDDEN_UNITS}"),
        "module__dropout": (lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
                            "a number from 0 up to 1"),
        "metadata_columns": (lambda v: v is None or (isinstance(v, list) and all(
            isinstance(c, str) for c in v) and len(set(v)) == len(v)),
                             "None or a list of distinct column names"),
    }
    for name, (ok, allowed_values) in bounds.items():
        if name in params and not (type(params[name]) is not bool and ok(params[name])):
            raise refused(where, f"{name}={params[name]!r:.80} is out of range; skderm "
                          f"allows {allowed_values}")


def build(payload: dict, where: str):
    """The fitted estimator a checked payload describes."""
    fields = _FIELDS[payload["format"]]
    _fields(payload, fields | _HEAD, where)
    return _build(payload, where)


def _build(payload, where: str):
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt == FORMAT_LESION_LEVEL:
        return _lesion_level(payload, where)
    if fmt == FORMAT_ENSEMBLE:
        return _ensemble(payload, where)
    return _member(payload, where)


def _lesion_level(payload: dict, where: str):
    from skderm.decision import LesionLevelClassifier

    inner = payload["estimator"]
    if not isinstance(inner, dict) or inner.get("format") not in (FORMAT, FORMAT_ENSEMBLE):
        raise refused(where, "its LesionLevelClassifier wraps no LesionClassifier or ensemble")
    _fields(inner, _FIELDS[inner["format"]] | {"format"}, where)
    decision = payload["decision"]
    _fields(decision, {"group_column", "pooling", "prior_shift"}, where)
    classes = _classes(payload["classes"], where)
    if not _finite_list(payload["class_prior"], len(classes)):
        raise refused(where, "its class_prior is not one finite number per class")
    estimator = _build(inner, where)
    clf = LesionLevelClassifier(estimator, **decision)
    try:
        clf._validate_params()
    except ValueError as exc:
        raise refused(where, str(exc)) from exc
    # what fit sets, from the saved model and labels
    clf.estimator_ = estimator
    clf.classes_ = classes
    clf.class_prior_ = np.asarray(payload["class_prior"], dtype=float)
    return clf


def _ensemble(payload: dict, where: str):
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import Bunch

    from skderm.ensemble import LesionVotingClassifier

    names, members = payload["names"], payload["members"]
    if not (isinstance(names, list) and isinstance(members, list)
            and 1 <= len(names) == len(members) <= MAX_MEMBERS
            and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)):
        raise refused(where, f"its ensemble is not 1 to {MAX_MEMBERS} distinct names, one "
                      "per member")
    weights = payload["weights"]
    if weights is not None and not _finite_list(weights, len(names)):
        raise refused(where, "its ensemble weights are not one finite number per member")
    voting = payload["voting_params"]
    _fields(voting, {"voting", "flatten_transform", "verbose"}, where)
    if voting["voting"] != "soft" or not all(
            isinstance(voting[k], bool) for k in ("flatten_transform", "verbose")):
        raise refused(where, f"its voting_params {voting!r:.120} are not a soft vote's")
    for m in members:
        _fields(m, _FIELDS[FORMAT], where)
    loaded = [_member(m, f"{where}, member {name!r}")
              for name, m in zip(names, members, strict=True)]
    vote = LesionVotingClassifier(list(zip(names, loaded, strict=True)), weights=weights,
                                  flatten_transform=voting["flatten_transform"],
                                  verbose=voting["verbose"])
    # what VotingClassifier.fit sets, from the saved members and labels
    vote.estimators_ = loaded
    vote.named_estimators_ = Bunch(**dict(zip(names, loaded, strict=True)))
    vote.le_ = LabelEncoder().fit(_classes(payload["classes"], where))
    vote.classes_ = vote.le_.classes_
    return vote


def _member(payload: dict, where: str):
    from skorch.history import History

    from skderm.classifier import LesionClassifier

    params = payload["params"]
    check_params(params, where)
    classes = _classes(payload["classes"], where)
    if not _size_ok(payload["image_size"]) or not isinstance(payload["image_size"], list):
        raise refused(where, f"its image_size {payload['image_size']!r:.80} is not "
                      f"[height, width] with sides from 1 to {MAX_IMAGE_SIDE}")
    dropped, history = payload["dropped_params"], payload["history"]
    if not (isinstance(dropped, dict) and all(isinstance(v, str) for v in dropped.values())):
        raise refused(where, "its dropped_params are not a dict of text")
    if not (isinstance(history, list) and all(isinstance(row, dict) for row in history)):
        raise refused(where, "its history is not a list of dicts")
    state_dict = payload["state_dict"]
    if not (isinstance(state_dict, dict) and all(hasattr(t, "shape") for t in
                                                 state_dict.values())):
        raise refused(where, "its state_dict is not a dict of tensors")
    columns = params.get("metadata_columns") or []
    encoder, n_metadata = payload["metadata_encoder"], payload["n_metadata"]
    if encoder is not None:
        encoder = rebuild_encoder(encoder, where)
        if list(encoder.feature_names_in_) != columns:
            raise refused(where, "its metadata encoder's columns are not its metadata_columns")
    width = 0 if encoder is None else len(encoder.get_feature_names_out())
    if (encoder is None) != (not columns) or n_metadata != width or type(n_metadata) is not int:
        raise refused(where, "its n_metadata, metadata encoder and metadata_columns disagree")

    params = {k: tuple(v) if k == "image_size" and isinstance(v, list) else v
              for k, v in params.items()}
    try:
        clf = LesionClassifier(**params, weights=None)
        clf._validate_params()
        clf.classes_inferred_ = classes
        clf.image_size_ = tuple(payload["image_size"])
        clf.class_weight_ = None
        clf.class_prior_ = None
        if encoder is not None:
            clf.metadata_encoder_, clf.n_metadata_ = encoder, n_metadata
        clf.initialize()
        clf.module_.load_state_dict(state_dict, strict=True)
    except ModelFileError:
        raise
    except _BUILD_ERRORS as exc:
        raise ModelFileError(
            f"{where}: its parameters and weights do not build a working model: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; the file was "
            "edited or written by another skderm: use the original file or re-train") from exc
    if plain(clf.preprocessing_) != payload["preprocessing"]:
        raise refused(where, "its preprocessing is not the one its backbone and image size "
                      "give")
    clf.module_.eval()
    clf.history_ = History([dict(row, batches=[]) for row in history])
    clf.dropped_params_ = dict(dropped)
    return clf
