"""Save a fitted LesionClassifier to one self-describing file, and load it back.

A model file is written with ``torch.save`` and holds only tensors and
plain values (str, int, float, bool, None, lists and dicts of them), so it is
read with ``torch.load(..., weights_only=True)``: loading a model never
unpickles, and so never runs, code from the file. Its top-level dict:

``format`` / ``format_version``
    ``"skderm-model"`` and :data:`FORMAT_VERSION`.
``skderm_version``
    The skderm that wrote it.
``params``
    The estimator's constructor parameters that are plain values
    (``backbone``, ``image_size``, ``metadata_columns``, ``optimizer__*`` ...);
    ``dropped_params`` names the others (optimizer class, callbacks) with
    their ``repr``, which a loaded model replaces with defaults.
``classes``, ``preprocessing``, ``n_metadata``
    The fitted labels, the backbone's normalisation and the image size.
``metadata_encoder``
    A plain description of the fitted metadata encoder, or None.
``state_dict``
    The network's weights (on the CPU).
``history``
    Per-epoch training history, without the per-batch entries.
``sha256``
    Digest of everything above (see ``_digest``): a file changed after
    it was written fails to load.

A fitted soft-voting :class:`~sklearn.ensemble.VotingClassifier` of
LesionClassifiers (:func:`skderm.recipes.make_ensemble`) is written the same
way, as ``format`` ``"skderm-ensemble"``: ``names``, ``weights`` and
``voting_params`` (the VotingClassifier's plain parameters), ``classes`` (the
ensemble's labels; its members were fitted on their integer codes, as
VotingClassifier fits them), and ``members``, one dict per member with the
fields above except ``format``, ``format_version``, ``skderm_version`` and
``sha256``; one ``sha256`` covers them all.

A fitted :class:`~skderm.decision.LesionLevelClassifier` around either is
written as ``format`` ``"skderm-lesion-level"``: ``decision`` (its
``group_column``, ``pooling`` and ``prior_shift``), ``class_prior`` and
``classes``, and ``estimator``, the wrapped model's fields as above with its
own ``format``; one ``sha256`` covers them all.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import tempfile
import zipfile
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch

from skderm.exceptions import SkdermError

__all__ = ["FORMAT", "FORMAT_ENSEMBLE", "FORMAT_LESION_LEVEL", "FORMAT_VERSION", "save_model",
           "load_model"]

FORMAT = "skderm-model"
FORMAT_ENSEMBLE = "skderm-ensemble"
FORMAT_LESION_LEVEL = "skderm-lesion-level"
_FORMATS = (FORMAT, FORMAT_ENSEMBLE, FORMAT_LESION_LEVEL)
#: The model-file format this skderm writes and reads.
FORMAT_VERSION = 1

# parameters that never go into a file: weights are in the state_dict, so a
# loaded model must not look for (or download) ImageNet weights; a checkpoint
# folder belongs to the machine that trained it
_NOT_SAVED = ("weights", "checkpoint_dir")
# skderm.accelerate.AcceleratedLesionClassifier's own settings: the run's, not the model's
_ACCELERATE_ONLY = ("accelerator", "unwrap_after_train", "callbacks__print_log__sink")


# --------------------------------------------------------------------------
# plain values
# --------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """``value`` as str/int/float/bool/None/list/dict, or raise TypeError."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not a plain value")


def _split_params(clf) -> tuple[dict, dict]:
    """Constructor params as (plain ones, repr of the others)."""
    from skderm.classifier import LesionClassifier

    defaults = LesionClassifier().get_params(deep=False)
    kept, dropped = {}, {}
    for name, value in clf.get_params(deep=False).items():
        if name in _NOT_SAVED or name.startswith("_"):
            continue
        if name in _ACCELERATE_ONLY:
            continue  # an AcceleratedLesionClassifier loads as a plain LesionClassifier
        if name == "device" and value is None:
            value = "auto"  # Accelerate places the model itself (device=None)
        try:
            kept[name] = _plain(value)
        except TypeError:
            # a default (the LesionNet class, AdamW) comes back by itself; record the rest
            if value is not defaults.get(name, object()):
                dropped[name] = repr(value)
    return kept, dropped


def _plain_history(history) -> list[dict]:
    rows = []
    for epoch in history or []:
        row = {}
        for key, value in epoch.items():
            if key == "batches":
                continue
            try:
                row[key] = _plain(value)
            except TypeError:
                continue  # an exotic callback value: the history is informative only
        rows.append(row)
    return rows


def _nan_to_none(values) -> list:
    return [None if (isinstance(v, float) and math.isnan(v)) else v for v in values]


# --------------------------------------------------------------------------
# the metadata encoder
# --------------------------------------------------------------------------

def _describe_encoder(encoder) -> list[dict] | None:
    """The fitted ColumnTransformer of :func:`skderm.inputs.metadata_encoder` as plain values."""
    if encoder is None:
        return None
    parts = []
    for name, pipe, columns in encoder.transformers_:
        if name == "remainder" or pipe == "drop":
            continue
        imputer, last = pipe[0], pipe[-1]
        if name == "num":
            indicator = getattr(imputer, "indicator_", None)
            parts.append({
                "kind": "numeric",
                "columns": [str(c) for c in columns],
                "statistics": _nan_to_none(imputer.statistics_.astype(float).tolist()),
                "indicator_features": ([] if indicator is None
                                       else [int(i) for i in indicator.features_]),
                "mean": last.mean_.tolist(),
                "scale": last.scale_.tolist(),
            })
        elif name == "cat":
            parts.append({
                "kind": "categorical",
                "columns": [str(c) for c in columns],
                "fill_value": str(imputer.fill_value),
                "categories": [_plain(c) for c in last.categories_],
            })
        else:
            raise SkdermError(f"cannot save a metadata encoder with a part named {name!r}; "
                              "save_model knows the 'num' and 'cat' parts skderm builds")
    return parts


class _PlainMetadataEncoder:
    """Reproduces a fitted metadata ColumnTransformer from its plain description.

    The numeric part: median imputation, missing-value indicators, then
    standard scaling; the categorical part: missing values filled, then
    one-hot encoded with unknown categories ignored (all zeros).

    Parameters
    ----------
    parts : list of dict
        What ``_describe_encoder`` wrote.
    """

    def __init__(self, parts: list[dict]):
        self.parts = parts

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = [self._numeric(frame, p) if p["kind"] == "numeric" else self._categorical(frame, p)
                  for p in self.parts]
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))

    @staticmethod
    def _numeric(frame: pd.DataFrame, part: dict) -> np.ndarray:
        x = frame[part["columns"]].to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(x)
        stats = np.array([np.nan if s is None else s for s in part["statistics"]])
        # columns empty at fit time have no median and are dropped, as SimpleImputer does
        keep = ~np.isnan(stats)
        imputed = np.where(missing, stats, x)[:, keep]
        indicators = missing[:, part["indicator_features"]].astype(float)
        z = np.hstack([imputed, indicators])
        return (z - np.asarray(part["mean"])) / np.asarray(part["scale"])

    @staticmethod
    def _categorical(frame: pd.DataFrame, part: dict) -> np.ndarray:
        blocks = []
        for column, categories in zip(part["columns"], part["categories"], strict=True):
            values = frame[column].astype(object)
            values = values.where(~pd.isna(values), part["fill_value"]).to_numpy()
            blocks.append(np.stack([values == c for c in categories], axis=1).astype(float))
        return np.hstack(blocks)


# --------------------------------------------------------------------------
# integrity
# --------------------------------------------------------------------------

def _digest(payload: dict) -> str:
    """SHA-256 of a model payload, ``sha256`` itself excluded.

    Covers the plain fields as canonical JSON (sorted keys) and then, in the
    state_dict's order, each tensor's name, dtype, shape and raw bytes; a
    canonical form, so the digest does not depend on how torch lays out the
    zip archive.
    """
    h = hashlib.sha256()
    if payload.get("format") == FORMAT_LESION_LEVEL:
        # the wrapper's plain fields, then the wrapped model's own digest
        plain = {k: v for k, v in payload.items() if k not in ("estimator", "sha256")}
        h.update(json.dumps(plain, sort_keys=True, allow_nan=True).encode())
        h.update(_digest(payload["estimator"]).encode())
        return h.hexdigest()
    if payload.get("format") == FORMAT_ENSEMBLE:
        # the plain fields of the ensemble and of every member, then each member's
        # tensors in turn, their names prefixed with the member's position
        plain = {k: v for k, v in payload.items() if k not in ("members", "sha256")}
        plain["members"] = [{k: v for k, v in m.items() if k != "state_dict"}
                            for m in payload["members"]]
        h.update(json.dumps(plain, sort_keys=True, allow_nan=True).encode())
        for i, member in enumerate(payload["members"]):
            _digest_tensors(h, member["state_dict"], prefix=f"{i}/")
        return h.hexdigest()
    plain = {k: v for k, v in payload.items() if k not in ("state_dict", "sha256")}
    h.update(json.dumps(plain, sort_keys=True, allow_nan=True).encode())
    _digest_tensors(h, payload["state_dict"])
    return h.hexdigest()


def _digest_tensors(h, state_dict: dict, prefix: str = "") -> None:
    for name, tensor in state_dict.items():
        t = tensor.detach().cpu().reshape(-1).contiguous()
        h.update(f"\n{prefix}{name}|{t.dtype}|{tuple(tensor.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def save_model(clf, path: str | os.PathLike) -> str:
    """Write a fitted :class:`~skderm.LesionClassifier` to one file.

    Parameters
    ----------
    clf : LesionClassifier, VotingClassifier or LesionLevelClassifier
        A fitted classifier, a fitted soft-voting
        :class:`~sklearn.ensemble.VotingClassifier` whose members are
        LesionClassifiers (:func:`skderm.recipes.make_ensemble`), or a fitted
        :class:`~skderm.decision.LesionLevelClassifier` around either.
    path : str or path-like
        File to write (conventionally ``*.skderm``); replaced atomically, so
        an interrupted save never leaves a half-written model.

    Returns
    -------
    path : str
        The file written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``clf`` is not fitted.
    """
    import skderm

    head = {"format_version": FORMAT_VERSION, "skderm_version": skderm.__version__}
    payload = {**head, **_payload(clf)}
    payload["sha256"] = _digest(payload)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".skderm_model_", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        # mkstemp creates the file readable by its owner only; a model file gets
        # the permissions any new file gets here (0o666 less the umask)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _payload(clf) -> dict:
    """The fields of ``clf``'s file, ``format`` first, without the head and digest."""
    from sklearn.ensemble import VotingClassifier

    from skderm.classifier import LesionClassifier
    from skderm.decision import LesionLevelClassifier

    if isinstance(clf, VotingClassifier):
        return {"format": FORMAT_ENSEMBLE, **_ensemble_payload(clf)}
    if isinstance(clf, LesionClassifier):
        return {"format": FORMAT, **_member_payload(clf)}
    if isinstance(clf, LesionLevelClassifier):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(clf, "estimator_")
        clf._validate_params()
        if isinstance(clf.estimator_, LesionLevelClassifier):
            raise TypeError("save_model saves one LesionLevelClassifier around a model, not "
                            "one wrapped in another: set its settings on a single wrapper")
        return {"format": FORMAT_LESION_LEVEL,
                "decision": {"group_column": clf.group_column, "pooling": clf.pooling,
                             "prior_shift": float(clf.prior_shift)},
                "class_prior": _plain(np.asarray(clf.class_prior_, dtype=float)),
                "classes": _plain(np.asarray(clf.classes_)),
                "estimator": _payload(clf.estimator_)}
    raise TypeError(f"save_model saves a LesionClassifier, a soft-voting VotingClassifier of "
                    f"them or a LesionLevelClassifier around either, got {type(clf).__name__}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _ensemble_payload(vote) -> dict:
    from sklearn.utils.validation import check_is_fitted

    from skderm.classifier import LesionClassifier

    if vote.voting != "soft":
        raise ValueError(f"save_model saves soft-voting ensembles; this VotingClassifier has "
                         f"voting={vote.voting!r}: use VotingClassifier(..., voting='soft')")
    check_is_fitted(vote)
    names = [name for name, est in vote.estimators if est != "drop"]
    others = [f"{name!r} ({type(est).__name__})"
              for name, est in zip(names, vote.estimators_, strict=True)
              if not isinstance(est, LesionClassifier)]
    if others:
        raise TypeError(f"save_model saves ensembles of LesionClassifiers; member "
                        f"{', '.join(others)} is not one: save the members with joblib instead")
    weights = vote._weights_not_none
    return {
        "names": names,
        "weights": None if weights is None else [float(w) for w in weights],
        "voting_params": {"voting": "soft", "flatten_transform": bool(vote.flatten_transform),
                          "verbose": bool(vote.verbose)},
        "classes": _plain(np.asarray(vote.classes_)),
        "members": [_member_payload(est) for est in vote.estimators_],
    }


def _member_payload(clf) -> dict:
    clf.check_is_fitted()
    params, dropped = _split_params(clf)
    return {
        "params": params,
        "dropped_params": dropped,
        "classes": _plain(np.asarray(clf.classes_)),
        "preprocessing": _plain(clf.preprocessing_),
        "image_size": _plain(clf.image_size_),
        "n_metadata": int(getattr(clf, "n_metadata_", 0)),
        "metadata_encoder": _describe_encoder(getattr(clf, "metadata_encoder_", None)),
        "history": _plain_history(clf.history_),
        "state_dict": {k: v.detach().cpu().clone() for k, v in clf.module_.state_dict().items()},
    }


def _read(path: str) -> dict:
    if not os.path.isfile(path):
        raise SkdermError(f"no model file at {path!r}: pass the file skderm.save_model (or "
                          "`skderm train --out`) wrote")
    if not zipfile.is_zipfile(path):
        # torch.save writes a zip archive; anything else (a CSV, an image, a cut-off
        # file whose central directory is gone) is not a model
        raise SkdermError(f"{path!r} is not a readable skderm model file (truncated, damaged "
                          "or another kind of file); pass the file `skderm train --out` or "
                          "skderm.save_model wrote")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # a torch file holding Python objects: never a skderm format-1 file, and
        # unpickling it could run code, so it is refused whatever ``trust`` says
        raise SkdermError(f"{path!r} is not a readable skderm model file: it holds Python "
                          "objects (not only tensors and plain values), which skderm refuses "
                          "to unpickle; it was not written by skderm.save_model") from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SkdermError(f"{path!r} is not a readable skderm model file (truncated, damaged "
                          f"or another kind of file): {str(exc).splitlines()[0]}") from exc
    if not isinstance(payload, dict) or payload.get("format") not in _FORMATS:
        raise SkdermError(f"{path!r} is not a skderm model file (it has no "
                          f"'format': {FORMAT!r} entry); write models with skderm.save_model "
                          "or `skderm train --out`")
    return payload


def _check_version(payload: dict, path: str) -> None:
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        import skderm

        raise SkdermError(
            f"{path!r} is skderm model format version {version!r} (written by skderm "
            f"{payload.get('skderm_version', '?')}), but skderm {skderm.__version__} reads "
            f"format version {FORMAT_VERSION} only; load it with the skderm version that "
            "wrote it (pip install skderm==<that version>), or re-train and save it again")


def _check_integrity(payload: dict, path: str) -> None:
    expected = payload.get("sha256")
    try:
        actual = _digest(payload)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise SkdermError(f"{path!r} failed its integrity check: its contents are not "
                          f"what save_model writes ({exc})") from exc
    if actual != expected:
        raise SkdermError(f"{path!r} failed its integrity check: its SHA-256 is {actual[:12]}... "
                          f"but the file records {str(expected)[:12]}...; the file was changed "
                          "or damaged after it was saved: use the original file or re-train")


def load_model(path: str | os.PathLike, *, trust: bool = False):
    """Load a model written by :func:`save_model`.

    The file is read with ``torch.load(weights_only=True)``: only tensors and
    plain values, never code. No ImageNet weights are needed: the network is
    built with ``weights=None`` and then receives the saved weights (so the
    loaded model's ``weights`` parameter is ``None``).

    Parameters
    ----------
    path : str or path-like
        The model file.
    trust : bool, default=False
        Reserved for a future format version that would have to unpickle
        Python objects (which can run arbitrary code): such a file will be
        refused unless ``trust=True``. Format version 1 never needs it, and
        it changes nothing when loading one.

    Returns
    -------
    clf : LesionClassifier, VotingClassifier or LesionLevelClassifier
        Fitted, in eval mode; ``predict_proba`` gives the saved model's
        output. A file saved from a soft-voting ensemble loads as a fitted
        :class:`~sklearn.ensemble.VotingClassifier` of LesionClassifiers, one
        saved from a :class:`~skderm.decision.LesionLevelClassifier` as that
        wrapper, with its pooling, shift and class frequencies.

    Raises
    ------
    SkdermError
        When the file is missing, truncated, not a skderm model, of another
        format version, or fails its integrity check.
    """
    if not isinstance(trust, bool):
        raise TypeError(f"trust must be True or False, got {trust!r}")
    path = os.fspath(path)
    payload = _read(path)
    _check_version(payload, path)
    _check_integrity(payload, path)
    return _load(payload, path)


def _load(payload: dict, path: str):
    if payload["format"] == FORMAT_LESION_LEVEL:
        return _load_lesion_level(payload, path)
    if payload["format"] == FORMAT_ENSEMBLE:
        return _load_ensemble(payload, path)
    return _load_member(payload, path)


def _load_lesion_level(payload: dict, path: str):
    from skderm.decision import LesionLevelClassifier

    inner = payload["estimator"]
    if not isinstance(inner, dict) or inner.get("format") not in (FORMAT, FORMAT_ENSEMBLE):
        raise SkdermError(f"{path!r}: its LesionLevelClassifier wraps no LesionClassifier or "
                          "ensemble; write it with skderm.save_model")
    estimator = _load(inner, path)
    clf = LesionLevelClassifier(estimator, **payload["decision"])
    # what fit sets, from the saved model and labels
    clf.estimator_ = estimator
    clf.classes_ = np.asarray(payload["classes"])
    clf.class_prior_ = np.asarray(payload["class_prior"], dtype=float)
    return clf


def _load_ensemble(payload: dict, path: str):
    from sklearn.ensemble import VotingClassifier
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import Bunch

    names = list(payload["names"])
    members = [_load_member(m, f"{path}, member {name!r}")
               for name, m in zip(names, payload["members"], strict=True)]
    vote = VotingClassifier(list(zip(names, members, strict=True)), weights=payload["weights"],
                            **payload["voting_params"])
    # what VotingClassifier.fit sets, from the saved members and labels
    vote.estimators_ = members
    vote.named_estimators_ = Bunch(**dict(zip(names, members, strict=True)))
    vote.le_ = LabelEncoder().fit(np.asarray(payload["classes"]))
    vote.classes_ = vote.le_.classes_
    return vote


def _load_member(payload: dict, path: str):
    from skorch.history import History

    from skderm.classifier import LesionClassifier

    params = dict(payload["params"])
    # files saved before test_crop existed: they predicted on whole images
    params.setdefault("test_crop", None)
    if isinstance(params.get("image_size"), list):
        params["image_size"] = tuple(params["image_size"])
    clf = LesionClassifier(**params, weights=None)
    clf.classes_inferred_ = np.asarray(payload["classes"])
    clf.image_size_ = tuple(payload["image_size"])
    clf.class_weight_ = None
    clf.class_prior_ = None
    if payload["metadata_encoder"] is not None:
        clf.metadata_encoder_ = _PlainMetadataEncoder(payload["metadata_encoder"])
        clf.n_metadata_ = int(payload["n_metadata"])
    clf.initialize()
    try:
        clf.module_.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise SkdermError(f"{path!r}: the saved weights do not fit the network its parameters "
                          f"build: {str(exc).splitlines()[0]}") from exc
    clf.module_.eval()
    clf.history_ = History([dict(row, batches=[]) for row in payload["history"]])
    clf.preprocessing_ = dict(payload["preprocessing"])
    clf.dropped_params_ = dict(payload.get("dropped_params", {}))
    return clf

