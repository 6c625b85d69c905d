"""The registry: name -> :class:`BackboneSpec`, everything skderm knows about a backbone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["BackboneSpec", "get_backbone", "register_backbone", "registered_names"]


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
    description : str
        One line shown by :func:`~skderm.list_backbones`.
    saliency_layer : str or None
        The module Grad-CAM explains (:func:`skderm.explain.grad_cam`): the
        last stage with a spatial output; ``None``: found by a forward pass.
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
    saliency_layer: str | None = None


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


def registered_names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_REGISTRY)
