"""Where the network looked: Grad-CAM and occlusion saliency for a fitted LesionClassifier.

:func:`grad_cam` (Selvaraju et al., 2017) weighs the target layer's feature maps
by the mean gradient of the class score; :func:`occlusion` (Zeiler and Fergus,
2014) needs no gradient: it greys out patches and records how much the class
probability falls. Both run on a copy of the network in eval mode, on the view
prediction uses (colour constancy, the test crop; flips are not averaged), and
return one map per image at the model's image size, in [0, 1], zero outside a
test crop. :func:`overlay` draws a map over its image.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["grad_cam", "occlusion", "overlay", "target_layer"]


def _classifier(estimator):
    """The LesionClassifier inside ``estimator`` (itself, a LesionLevelClassifier's, a pipeline's)."""
    from skderm.classifier import LesionClassifier

    inner = estimator
    while not isinstance(inner, LesionClassifier):
        if hasattr(inner, "estimator_"):
            inner = inner.estimator_
        elif hasattr(inner, "steps"):
            inner = inner.steps[-1][1]
        else:
            raise TypeError(f"saliency needs a fitted LesionClassifier (or a LesionLevelClassifier "
                            f"or pipeline ending in one), got {type(estimator).__name__}")
    inner.check_is_fitted()
    return inner


def target_layer(backbone: torch.nn.Module) -> str:
    """The name of the backbone's last module with a spatial (N, C, H, W) output.

    Grad-CAM's usual choice: the last convolutional stage before global
    pooling (``"bn2"`` of EfficientNet-Lite, ``"layer4"`` of a ResNet).
    """
    done: list[tuple[str, tuple]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: done.append(
        (name, tuple(out.shape) if torch.is_tensor(out) else ())))
        for name, m in backbone.named_modules() if name]
    was_training = backbone.training
    try:
        with torch.no_grad():
            device = next(backbone.parameters()).device
            backbone.eval()(torch.zeros(1, 3, 64, 64, device=device))
    finally:
        backbone.train(was_training)
        for h in hooks:
            h.remove()
    spatial = [name for name, shape in done if len(shape) == 4 and shape[2] * shape[3] > 1]
    if not spatial:
        raise ValueError("the backbone has no module with a spatial output for Grad-CAM")
    return spatial[-1]


def _batches(clf, X):
    """(prepared images, metadata, the crop area) batch by batch, as prediction sees them."""
    view = clf.inference_view()
    dataset = clf.get_dataset(X)
    for x, _ in clf.get_iterator(dataset, training=False):
        x = x if isinstance(x, dict) else {"images": x}
        images = view.prepare(x["images"].to(clf.module_.mean.device)).float()
        if images.max() > 1.5:  # uint8 values: no colour constancy or crop ran
            images = images / 255.0
        yield images, x.get("metadata"), view.crop_area


def _into_frame(maps: torch.Tensor, area: float | None) -> np.ndarray:
    """Maps of the cropped view placed at the centre of the full frame."""
    maps = maps.detach().cpu()
    if area is None:
        return maps.numpy()
    n, h, w = maps.shape
    s = math.sqrt(area)
    ch, cw = max(1, round(h * s)), max(1, round(w * s))
    inner = F.interpolate(maps[:, None], size=(ch, cw), mode="bilinear", align_corners=False)[:, 0]
    out = torch.zeros(n, h, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    out[:, top:top + ch, left:left + cw] = inner
    return out.numpy()


def _normalise(maps: torch.Tensor) -> torch.Tensor:
    peak = maps.flatten(1).amax(1).clamp_min(1e-12)
    return maps / peak[:, None, None]


def _targets(logits: torch.Tensor, classes, target) -> torch.Tensor:
    if target is None:
        return logits.argmax(1)
    where = np.flatnonzero(np.asarray(classes) == target)
    if not len(where):
        raise ValueError(f"target={target!r} is not a class of this model; use one of "
                         f"{list(classes)} or None (the predicted class)")
    return torch.full((len(logits),), int(where[0]), dtype=torch.long)


def grad_cam(estimator, X, *, target=None, layer: str | None = None) -> np.ndarray:
    """Grad-CAM maps, shape (n_images, height, width), each scaled to a peak of 1.

    Parameters
    ----------
    estimator : fitted LesionClassifier (or a wrapper around one)
    X : what ``predict`` takes
    target : a class label or None, default=None
        The class to explain; ``None``: each image's predicted class.
    layer : str or None, default=None
        A backbone module name; ``None``: the backbone entry's
        ``saliency_layer``, else :func:`target_layer`.
    """
    clf = _classifier(estimator)
    net = copy.deepcopy(clf.module_).eval()
    if layer is None:
        from skderm.backbones import get_backbone

        layer = getattr(get_backbone(clf.backbone), "saliency_layer", None) or \
            target_layer(net.backbone)
    module = dict(net.backbone.named_modules()).get(layer)
    if module is None:
        raise ValueError(f"layer={layer!r} is not a module of the {clf.backbone!r} backbone")
    store = {}
    hook = module.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
    maps = []
    try:
        for images, metadata, area in _batches(clf, X):
            with torch.enable_grad():
                images = images.detach().requires_grad_(True)  # gradients reach frozen layers
                logits = net(images, metadata)
                picked = _targets(logits, clf.classes_, target)
                act = store["a"]
                grad, = torch.autograd.grad(logits.gather(1, picked[:, None]).sum(), act)
            cam = F.relu((grad.mean((2, 3), keepdim=True) * act).sum(1)).detach()
            cam = F.interpolate(cam[:, None], size=images.shape[2:], mode="bilinear",
                                align_corners=False)[:, 0]
            maps.append(_into_frame(_normalise(cam), area))
    finally:
        hook.remove()
    return np.concatenate(maps)


def occlusion(estimator, X, *, target=None, patch: int | None = None,
              stride: int | None = None) -> np.ndarray:
    """Occlusion maps: how much the class probability falls when a grey patch covers a spot.

    ``patch`` and ``stride`` default to an eighth and a sixteenth of the
    shorter image side. Costs one forward pass per patch position.
    """
    clf = _classifier(estimator)
    net = copy.deepcopy(clf.module_).eval()
    maps = []
    with torch.no_grad():
        for images, metadata, area in _batches(clf, X):
            n, _, h, w = images.shape
            p = patch or max(2, min(h, w) // 8)
            st = stride or max(1, p // 2)
            probs = torch.softmax(net(images, metadata), 1)
            picked = _targets(torch.log(probs), clf.classes_, target)
            base = probs.gather(1, picked[:, None])[:, 0]
            drop = torch.zeros(n, h, w, device=images.device)
            count = torch.zeros(1, h, w, device=images.device)
            for top in range(0, max(h - p, 0) + 1, st):
                for left in range(0, max(w - p, 0) + 1, st):
                    hidden = images.clone()
                    hidden[:, :, top:top + p, left:left + p] = 0.5
                    fall = base - torch.softmax(net(hidden, metadata), 1).gather(
                        1, picked[:, None])[:, 0]
                    drop[:, top:top + p, left:left + p] += fall.clamp_min(0)[:, None, None]
                    count[:, top:top + p, left:left + p] += 1
            maps.append(_into_frame(_normalise(drop / count.clamp_min(1)), area))
    return np.concatenate(maps)


def overlay(image: np.ndarray, saliency: np.ndarray, *, alpha: float = 0.45) -> np.ndarray:
    """The map drawn over its ``uint8`` (H, W, 3) image as a red-yellow heat, uint8 RGB."""
    image = np.asarray(image)
    if image.shape[:2] != saliency.shape:
        from skderm.images import resize_array

        image = resize_array(image, saliency.shape)
    s = np.clip(saliency, 0, 1)[..., None]
    heat = np.concatenate([np.ones_like(s), s, np.zeros_like(s)], axis=2) * 255
    mixed = image.astype(np.float32) * (1 - alpha * s) + heat * alpha * s
    return np.clip(mixed, 0, 255).astype(np.uint8)
