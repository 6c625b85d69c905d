"""The model-file format: its names, limits, plain values and the in-file digest."""

from __future__ import annotations

import hashlib
import json
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from skderm.exceptions import ModelFileError

FORMAT = "skderm-model"
FORMAT_ENSEMBLE = "skderm-ensemble"
FORMAT_LESION_LEVEL = "skderm-lesion-level"
FORMATS = (FORMAT, FORMAT_ENSEMBLE, FORMAT_LESION_LEVEL)
#: The model-file format this skderm writes and reads.
FORMAT_VERSION = 2

# What a file may make skderm do when it is loaded and used. Each bound is far
# above any real model and far below what exhausts a machine.
#: The largest image side (pixels) a model file may ask for.
MAX_IMAGE_SIDE = 4096
#: The largest ``batch_size`` a model file may ask for.
MAX_BATCH_SIZE = 4096
MAX_HIDDEN_UNITS = 65536
MAX_CLASSES = 1000
MAX_MEMBERS = 64
MAX_ARCHIVE_BYTES = 4 << 30  # all members of the zip archive, as declared
MAX_PICKLE_BYTES = 64 << 20  # the archive's data.pkl: plain values, never weights
MAX_PLAIN_VALUES = 2_000_000  # strings, numbers, lists and dicts in the payload

# Constructor parameters never written: the weights are in the state_dict; the
# others belong to the run or the machine, and a file must not choose where fit
# reads (torch_load_kwargs) nor what runs or writes (callbacks and their settings).
NEVER_SAVED = frozenset({
    "weights", "torch_load_kwargs", "callbacks", "iterator_train",
    "iterator_valid", "dataset", "train_split", "warm_start", "compile", "use_caching",
    "classes",  # the fitted labels are the file's own ``classes`` field
    # skderm.accelerate.AcceleratedLesionClassifier's settings: the run's, not the model's
    "accelerator", "unwrap_after_train",
})
# nested parameters a file may carry; others (callbacks__*, iterator_*__*) are dropped
NESTED_SAVED = ("optimizer__", "criterion__")
# the head's shape (LesionNet's arguments a LesionClassifier does not set itself)
MODULE_SAVED = frozenset({"module__hidden_units", "module__dropout"})


def saved_param_names() -> frozenset[str]:
    """The LesionClassifier constructor parameters a model file may hold."""
    from skderm.classifier import LesionClassifier

    names = LesionClassifier().get_params(deep=False)
    return frozenset(n for n in names if not n.startswith("_") and n not in NEVER_SAVED)


def is_saved_param(name: str, allowed: frozenset[str]) -> bool:
    return name in allowed or name in MODULE_SAVED or (
        name.startswith(NESTED_SAVED) and name.count("__") == 1)


def plain(value: Any) -> Any:
    """``value`` as str/int/float/bool/None/list/dict, or raise TypeError."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not a plain value")


def payload_digest(payload: dict) -> str:
    """SHA-256 of a payload in canonical form, its ``sha256`` field excluded.

    The plain fields as JSON with sorted keys, then each tensor's name, dtype,
    shape and bytes in state_dict order: independent of torch's zip layout.
    It detects accidental damage only; whoever edits a file can recompute it.
    """
    h = hashlib.sha256()
    _update(h, {k: v for k, v in payload.items() if k != "sha256"}, "")
    return h.hexdigest()


def _update(h, value, prefix: str) -> None:
    tensors = []

    def strip(node, where):
        if isinstance(node, dict):
            if where.endswith("state_dict"):
                tensors.append((where, node))
                return None
            return {k: strip(v, f"{where}/{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v, f"{where}/{i}") for i, v in enumerate(node)]
        return node

    h.update(json.dumps(strip(value, prefix), sort_keys=True, allow_nan=True).encode())
    for where, state_dict in tensors:
        for name, tensor in state_dict.items():
            t = tensor.detach().cpu().reshape(-1).contiguous()
            h.update(f"\n{where}/{name}|{t.dtype}|{tuple(tensor.shape)}\n".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())


def refused(where: str, problem: str) -> ModelFileError:
    """The error for a file that holds what save_model never writes."""
    return ModelFileError(
        f"{where}: {problem}; skderm.save_model never writes this, so the file was edited, "
        "damaged or made by other software: use the original file, or re-train and save again")
