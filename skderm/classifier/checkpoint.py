"""Per-epoch training checkpoints, so an interrupted fit resumes to the same result.

:class:`EpochCheckpoint` is LesionClassifier's callback ``checkpoint``. Given a
folder (``callbacks__checkpoint__dirname=DIR``), it writes one file
``DIR/skderm-<fingerprint>.ckpt`` after every epoch and, like
skorch's ``LoadInitState``, loads it when a fit with ``warm_start=True`` begins
(``skderm train --resume``). Beyond what skorch's ``Checkpoint`` saves
(network, optimizer, history), exact resume needs torch's random state, the
batch order and early stopping's bookkeeping; so on the CPU, with the same
data, parameters and ``random_state``, a resumed run ends where an
uninterrupted one would: same weights, same history. With a folder set,
``max_epochs`` counts the run's epochs, so a resumed fit trains the rest.

The fingerprint hashes the estimator's parameters (not those that change no
epoch: ``max_epochs`` except under the cosine schedule, ``warm_start``,
``verbose``, the folder, ``device``; the prediction-time view only
with a validation split) and the training data, so a grid search can share one
folder and a checkpoint is never resumed against other data or settings.

The checkpoint is written after early stopping has looked at the epoch; an
epoch that stopped the run is not saved, so a resumed run recomputes it and
stops there too. Files are written atomically and read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from numbers import Integral
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback, EarlyStopping
from skorch.history import History

from skderm._utils.files import atomic_write
from skderm.exceptions import ModelFileError

__all__ = ["EpochCheckpoint", "ResumableEarlyStopping", "checkpoint_dir", "checkpoint_path"]

FORMAT = "skderm-checkpoint"
FORMAT_VERSION = 2

# parameters that do not change what an epoch computes
_NOT_FINGERPRINTED = frozenset({"max_epochs", "warm_start", "verbose", "device",
                                "callbacks__checkpoint__dirname"})
# parameters that change only validation scores and predictions: hashed only
# with a validation split (then early stopping depends on them)
_PREDICTION_ONLY = frozenset({"test_crop", "tta"})


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


def checkpoint_dir(net):
    """The folder ``net``'s checkpoint callback writes to, or None."""
    for _, cb in getattr(net, "callbacks_", None) or []:
        if isinstance(cb, EpochCheckpoint):
            return cb.dirname
    return net.get_params_for("callbacks__checkpoint").get("dirname")


def checkpoint_path(net, dataset, dirname) -> str:
    """``<dirname>/skderm-<fingerprint>.ckpt`` for this estimator and data."""
    params = net.get_params(deep=False)
    h = hashlib.sha256()
    for name in sorted(params):
        if name in _PREDICTION_ONLY and params.get("valid_size") is None:
            continue
        if name == "max_epochs" and params.get("lr_schedule") == "cosine":
            pass  # the cosine rate of epoch e depends on e / max_epochs
        elif name in _NOT_FINGERPRINTED:
            continue
        h.update(f"{name}={_stable(params[name])};".encode())
    h.update(_data_digest(dataset))
    return os.path.join(os.fspath(dirname), f"skderm-{h.hexdigest()[:20]}.ckpt")


def _plain_history(history) -> list:
    # numpy scalars from scoring callbacks -> Python numbers, for weights_only loading
    return json.loads(json.dumps(list(history), default=lambda v: v.item()
                                 if isinstance(v, np.generic) else str(v)))


def _early_stopping(net) -> ResumableEarlyStopping | None:
    for _, cb in getattr(net, "callbacks_", []):
        if isinstance(cb, ResumableEarlyStopping):
            return cb
    return None


def _read(path: str) -> dict:
    fix = f"delete {path!r} to train from the start, or fit without warm_start (`--resume`)"
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"checkpoint {path!r} is damaged (not a torch file): {fix}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelFileError(f"checkpoint {path!r} cannot be read "
                             f"({str(exc).splitlines()[0]}): {fix}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not a skderm checkpoint: {fix}")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"checkpoint {path!r} has format version "
                             f"{payload.get('format_version')!r}; this skderm reads version "
                             f"{FORMAT_VERSION}: {fix}")
    return payload


class EpochCheckpoint(Callback):
    """Save the training state to ``dirname`` after every epoch; restore it when a
    warm-started fit begins. ``dirname=None`` does nothing.

    Place it after early stopping (see the module docstring).
    """

    def __init__(self, dirname=None):
        self.dirname = dirname

    def on_train_begin(self, net, X=None, **kwargs):
        self.path_ = None
        if self.dirname is None:
            return
        if not isinstance(self.dirname, (str, os.PathLike)):
            raise ValueError(f"callbacks__checkpoint__dirname={self.dirname!r} is not valid: "
                             "use a folder path, or None for no checkpoints")
        self.path_ = path = checkpoint_path(net, X, self.dirname)
        if not net.warm_start or len(net.history) > 0:
            return  # a cold fit starts afresh; a continued one keeps its own state
        if not os.path.exists(path):
            if net.verbose:
                print(f"No checkpoint of this run in {os.fspath(self.dirname)!r}: "
                      "training from the start.")
            return
        payload = _read(path)
        try:
            self._restore(net, payload)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ModelFileError(
                f"checkpoint {path!r} does not fit this run ({str(exc).splitlines()[0]}): "
                f"delete it to train from the start, or fit without warm_start "
                "(`--resume`)") from None
        if net.verbose:
            print(f"Resuming from {path!r} after epoch {len(net.history)}.")

    @staticmethod
    def _restore(net, payload: dict) -> None:
        net.module_.load_state_dict(payload["module"])
        net.optimizer_.load_state_dict(payload["optimizer"])
        net.history_ = History(payload["history"])
        torch.set_rng_state(payload["torch_rng"])
        if payload["batch_order"] is not None and net.batch_generator_ is not None:
            net.batch_generator_.set_state(payload["batch_order"])
        if payload["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        es = _early_stopping(net)
        if es is not None and payload["early_stopping"] is not None:
            es.load_state(payload["early_stopping"])

    def on_epoch_end(self, net, **kwargs):
        if self.path_ is None:
            return
        es = _early_stopping(net)
        gen = net.batch_generator_
        payload = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "module": net.module_.state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "history": _plain_history(net.history),
            "torch_rng": torch.get_rng_state(),
            "batch_order": None if gen is None else gen.get_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "early_stopping": None if es is None else es.state(),
        }
        with atomic_write(self.path_) as fh:
            torch.save(payload, fh)


class ResumableEarlyStopping(EarlyStopping):
    """skorch's EarlyStopping, restoring the best epoch, with bookkeeping a checkpoint saves.

    LesionClassifier's defaults: watch ``valid_bacc``, stop after 5 epochs
    without an improvement of 1e-4 (absolute: a relative threshold never
    "improves" on a negative MCC), restore the best epoch's weights.
    ``patience=None`` never stops but still restores the best epoch;
    ``lower_is_better=None`` means ``True`` for a monitor ending in "loss".
    Without a validation split it does nothing. Set as
    ``callbacks__early_stopping__monitor="valid_mcc"`` and so on.
    """

    def __init__(self, monitor="valid_bacc", patience=5, threshold=1e-4, threshold_mode="abs",
                 lower_is_better=None, load_best=True, sink=print):
        super().__init__(monitor=monitor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, lower_is_better=lower_is_better,
                         load_best=load_best, sink=sink)

    def _lower(self) -> bool:
        if self.lower_is_better is None:
            return str(self.monitor).endswith("loss")
        return bool(self.lower_is_better)

    def on_train_begin(self, net, **kwargs):
        p = self.patience
        if p is not None and (not isinstance(p, Integral) or isinstance(p, bool) or p < 1):
            raise ValueError(f"callbacks__early_stopping__patience={p!r} is not valid: use an "
                             "int >= 1, or None to never stop early (the best epoch is still "
                             "restored)")
        if not isinstance(self.monitor, str):
            raise ValueError(f"callbacks__early_stopping__monitor={self.monitor!r} is not valid: "
                             "use a history key such as 'valid_bacc', 'valid_mcc' or "
                             "'valid_loss'")
        super().on_train_begin(net, **kwargs)
        self.dynamic_threshold_ = np.inf if self._lower() else -np.inf

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        if dataset_valid is None:
            return  # no validation split (valid_size=None): nothing to watch or restore
        if self.monitor not in net.history[-1]:
            raise ValueError(f"callbacks__early_stopping__monitor={self.monitor!r} is not "
                             f"recorded; this fit records {sorted(net.history[-1])}")
        super().on_epoch_end(net, dataset_valid=dataset_valid, **kwargs)

    def _is_score_improved(self, score):
        return score < self.dynamic_threshold_ if self._lower() else \
            score > self.dynamic_threshold_

    def _calc_new_threshold(self, score):
        change = self.threshold * score if self.threshold_mode == "rel" else self.threshold
        return score - change if self._lower() else score + change

    def state(self) -> dict:
        return {"misses": int(self.misses_), "threshold": float(self.dynamic_threshold_),
                "best_epoch": int(self.best_epoch_), "best_weights": self.best_model_weights_}

    def load_state(self, state: dict) -> None:
        self.misses_ = int(state["misses"])
        self.dynamic_threshold_ = float(state["threshold"])
        self.best_epoch_ = int(state["best_epoch"])
        self.best_model_weights_ = state["best_weights"]
