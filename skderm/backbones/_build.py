"""Building a registered backbone into a feature extractor, and looking inside one."""

from __future__ import annotations

import os

from skderm.backbones._registry import BackboneSpec, get_backbone, registered_names
from skderm.backbones._weights import load_state_dict, resolve_weights, weights_location
from skderm.exceptions import WeightsError

__all__ = ["backbone_layers", "build_backbone", "list_backbones"]


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
    for name in registered_names():
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


