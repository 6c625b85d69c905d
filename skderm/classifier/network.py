"""The network LesionClassifier trains: a backbone, its normalisation and a new head."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["LesionNet", "resolve_device"]


class LesionNet(nn.Module):
    """Backbone features (+ metadata) -> optional hidden layer -> class logits.

    Takes ``uint8`` (or float in [0, 1]) images (N, 3, H, W) and normalises them
    with the backbone's own mean and std, so callers never normalise twice.

    Parameters
    ----------
    backbone : nn.Module
        Maps normalised images to (N, n_features).
    n_features : int
    n_classes : int
    mean, std : sequence of 3 floats
    hidden_units : int or None, default=None
        Width of a hidden ReLU layer in the head (the first write-up's Dense(256)).
    dropout : float, default=0.0
        Dropout before the output layer (and after the hidden layer).
    n_metadata : int, default=0
        Number of encoded metadata features concatenated to the image features.
    """

    def __init__(self, backbone: nn.Module, n_features: int, n_classes: int, mean, std,
                 hidden_units: int | None = None, dropout: float = 0.0, n_metadata: int = 0):
        super().__init__()
        if hidden_units is not None and (isinstance(hidden_units, bool) or not isinstance(
                hidden_units, int) or hidden_units < 1):
            raise ValueError(f"module__hidden_units={hidden_units!r} is not valid: use None or "
                             "an int >= 1")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
                0 <= dropout < 1):
            raise ValueError(f"module__dropout={dropout!r} is not valid: use a number in [0, 1)")
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        width = n_features + n_metadata
        layers: list[nn.Module] = []
        if hidden_units:
            layers += [nn.Linear(width, hidden_units), nn.ReLU(inplace=True)]
            width = hidden_units
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width, n_classes))
        self.head = nn.Sequential(*layers)
        self.n_metadata = n_metadata

    def train(self, mode: bool = True):
        """Set training mode; a BatchNorm whose parameters are all frozen stays in eval mode.

        Frozen layers (``freeze``, ``freeze_until``) keep their ImageNet
        statistics as well as their weights.
        """
        super().train(mode)
        if mode:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._NormBase):
                    params = list(m.parameters(recurse=False))
                    if params and not any(p.requires_grad for p in params):
                        m.eval()
        return self

    def parameters_before(self, layer: str) -> list[str]:
        """Names (``backbone.*``) of the backbone parameters registered before ``layer``.

        ``layer`` names a backbone submodule (``"blocks.3"``, ``"layer2"``;
        :func:`skderm.backbones.backbone_layers` lists them).
        """
        names = [name for name, _ in self.backbone.named_parameters()]
        first = next((i for i, name in enumerate(names)
                      if name == layer or name.startswith(layer + ".")), None)
        if first is None:
            from skderm.backbones import backbone_layers

            raise ValueError(f"freeze_until={layer!r} names no layer of this backbone; use one "
                             f"of {backbone_layers(self.backbone)} (or None to train every layer)")
        return ["backbone." + name for name in names[:first]]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if images.dtype == torch.uint8:
            x = x.div_(255.0)
        return (x - self.mean) / self.std

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features of a batch of images."""
        return self.backbone(self.normalize(images))

    def forward(self, images: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.features(images)
        if self.n_metadata:
            if metadata is None:
                raise ValueError("this network was built with metadata features; pass them")
            feats = torch.cat([feats.float(), metadata.to(feats.device, torch.float32)], dim=1)
        return self.head(feats.float())


def resolve_device(device) -> str:
    """``"auto"`` -> ``"cuda"``, else ``"mps"``, else ``"cpu"``; anything else unchanged."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
