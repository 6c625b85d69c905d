"""Per-epoch training checkpoints, so an interrupted fit resumes to the same result.

``LesionClassifier(checkpoint_dir=DIR)`` writes, at the end of every epoch,
one file ``DIR/skderm-<fingerprint>.ckpt`` holding everything the next epoch
depends on: the network's and the optimizer's state, the history, torch's
random-number state and the early-stopping bookkeeping (its best weights
included). ``warm_start=True`` (``skderm train --resume``) finds that file
and continues from it; with the same data, parameters and ``random_state``,
on the CPU, the resumed run ends where an uninterrupted one would: same
weights, same history.

The fingerprint hashes the estimator's parameters (all but ``max_epochs``,
``warm_start``, ``verbose``, ``progress_bar``, ``checkpoint_dir`` and
``device``, which do not change what an epoch computes, and ``test_crop``
when there is no validation split) and the training
data (images, labels, lesion ids, metadata). So a grid search can share one
folder (each candidate and fold has its own file), and a checkpoint is never
resumed against other data or settings. With the constant learning rate,
raising ``max_epochs`` and resuming trains a finished run further; the cosine
schedule's rate at every epoch depends on ``max_epochs``, so with
``lr_schedule="cosine"`` it is fingerprinted too and a run of another length
starts from scratch (resuming would not give what that run computes).

Files are written to a temporary name and renamed, so a process killed
mid-write leaves the previous checkpoint intact. They hold only tensors and
plain values and are read with ``torch.load(weights_only=True)``.

The checkpoint is taken after the epoch's scores are recorded and before
early stopping looks at them; on resume, early stopping's decision for that
epoch is replayed. Callbacks the user adds keep no state across a resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback, EarlyStopping
from skorch.history import History

from skderm.exceptions import SkdermError

__all__ = ["EpochCheckpoint", "ResumableEarlyStopping", "checkpoint_path", "load_checkpoint",
           "restore_checkpoint"]

FORMAT = "skderm-checkpoint"
FORMAT_VERSION = 1

# parameters that do not change what an epoch computes
_NOT_FINGERPRINTED = frozenset({"max_epochs", "warm_start", "verbose", "progress_bar",
                                "checkpoint_dir", "device"})
# parameters added after checkpoints were first written: hashed only when set,
# so a checkpoint written before they existed still resumes at their default
_HASHED_WHEN_SET = {"freeze_until": None, "logit_tau": 1.0, "mixup_alpha": 0.0,
                    "cutmix_alpha": 0.0, "test_crop": None, "colour_constancy": None}
# parameters that change only the validation scores and predictions: hashed
# only with a validation split (then early stopping and the epochs' scores
# depend on them); so a run without one resumes whatever its test_crop
_PREDICTION_ONLY = frozenset({"test_crop"})
# parameters that change what every epoch computes under some schedules only:
# the cosine learning rate of epoch e is a function of e / max_epochs
_SCHEDULE_LENGTH = {"max_epochs": "cosine"}


# --------------------------------------------------------------------------
# fingerprint
# --------------------------------------------------------------------------

def _stable(value: Any) -> str:
    """A text for ``value`` that is the same in every process (no addresses)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_stable(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_stable(k)}:{_stable(v)}"
                              for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "}"
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    if hasattr(value, "get_params"):  # an Augmentation or another estimator
        return f"{type(value).__qualname__}({_stable(value.get_params(deep=False))})"
    return type(value).__qualname__  # a callback instance: its kind, not its address


def _data_digest(dataset) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(len(dataset)).encode())
    for img in dataset.images:
        arr = np.ascontiguousarray(img)
        h.update(str(arr.shape).encode())
        h.update(arr.data)
    for part in (dataset.y, dataset.groups, dataset.metadata):
        h.update(b"|")
        if part is not None:
            h.update(np.asarray(part).astype(str).tobytes()
                     if np.asarray(part).dtype == object else np.ascontiguousarray(part).data)
    return h.digest()


def checkpoint_path(net, dataset) -> str:
    """``<checkpoint_dir>/skderm-<fingerprint>.ckpt`` for this estimator and data."""
    params = net.get_params(deep=False)
    h = hashlib.sha256()
    for name in sorted(params):
        if name in _HASHED_WHEN_SET and params[name] == _HASHED_WHEN_SET[name]:
            continue
        if name in _PREDICTION_ONLY and params.get("valid_size") is None:
            continue  # no validation split: it changes no epoch
        if name not in _NOT_FINGERPRINTED or \
                _SCHEDULE_LENGTH.get(name) == params.get("lr_schedule"):
            h.update(f"{name}={_stable(params[name])};".encode())
    h.update(_data_digest(dataset))
    return os.path.join(os.fspath(net.checkpoint_dir), f"skderm-{h.hexdigest()[:20]}.ckpt")


# --------------------------------------------------------------------------
# saving and loading
# --------------------------------------------------------------------------

def _plain_history(history) -> list:
    # numpy scalars from scoring callbacks -> Python numbers, for weights_only loading
    return json.loads(json.dumps(list(history), default=lambda v: v.item()
                                 if isinstance(v, np.generic) else str(v)))


def _early_stopping(net) -> EarlyStopping | None:
    for _, cb in getattr(net, "callbacks_", []):
        if isinstance(cb, EarlyStopping):
            return cb
    return None


def _save(net, path: str) -> None:
    es = _early_stopping(net)
    es_state = None
    if es is not None:
        es_state = {"misses": int(es.misses_), "threshold": float(es.dynamic_threshold_),
                    "best_epoch": int(es.best_epoch_),
                    "best_weights": es.best_model_weights_}
    payload = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "path_name": os.path.basename(path),
        "module": net.module_.state_dict(),
        "optimizer": net.optimizer_.state_dict(),
        "history": _plain_history(net.history),
        "torch_rng": torch.get_rng_state(),
        "batch_order": (None if getattr(net, "_train_generator", None) is None
                        else net._train_generator.get_state()),
        "cuda_rng": (torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []),
        "early_stopping": es_state,
    }
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)  # atomic: a kill mid-write keeps the previous checkpoint
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str) -> dict | None:
    """The checkpoint at ``path``, ``None`` when there is none; a damaged one raises."""
    if not os.path.exists(path):
        return None
    fix = (f"delete {path!r} to train from the start, or pass warm_start=False (without "
           "`--resume`)")
    if not zipfile.is_zipfile(path):
        raise SkdermError(f"checkpoint {path!r} is damaged (not a torch file): {fix}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise SkdermError(f"checkpoint {path!r} cannot be read ({str(exc).splitlines()[0]}): "
                          f"{fix}") from None
    if (not isinstance(payload, dict) or payload.get("format") != FORMAT
            or payload.get("format_version") != FORMAT_VERSION):
        raise SkdermError(f"{path!r} is not a skderm checkpoint of format version "
                          f"{FORMAT_VERSION}: {fix}")
    return payload


def restore_checkpoint(net, payload: dict) -> None:
    """Load an initialized ``net``'s state from ``payload`` (see :func:`load_checkpoint`)."""
    net.module_.load_state_dict(payload["module"])
    net.optimizer_.load_state_dict(payload["optimizer"])
    net.history_ = History(payload["history"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["batch_order"] is not None:
        net._resume_generator_state = payload["batch_order"]  # see get_iterator
    if payload["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    # restored by ResumableEarlyStopping.on_train_begin, which would otherwise reset it
    net._resume_early_stopping = payload["early_stopping"]


# --------------------------------------------------------------------------
# callbacks
# --------------------------------------------------------------------------

class EpochCheckpoint(Callback):
    """Write the checkpoint at the end of every training epoch (see module docstring)."""

    def on_epoch_end(self, net, **kwargs):
        path = getattr(net, "checkpoint_path_", None)
        if path is not None:
            _save(net, path)


class ResumableEarlyStopping(EarlyStopping):
    """skorch's EarlyStopping, whose state a resumed fit restores instead of resetting."""

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        state = net.__dict__.pop("_resume_early_stopping", None)
        if state is None:
            return
        self.misses_ = state["misses"]
        self.dynamic_threshold_ = state["threshold"]
        self.best_epoch_ = state["best_epoch"]
        self.best_model_weights_ = state["best_weights"]
        # the checkpoint was taken before this callback saw the last epoch: replay it
        try:
            self.on_epoch_end(net)
        except KeyboardInterrupt:  # it stopped the original run there
            net._resume_stopped = True
