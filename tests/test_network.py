"""Tests for skderm.classifier.network: LesionNet and resolve_device."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from skderm.backbones import build_backbone
from skderm.classifier.network import LesionNet, resolve_device


def _tiny_net(n_classes=3, **kwargs) -> LesionNet:
    backbone, n, spec = build_backbone("tiny", weights=None)
    return LesionNet(backbone, n, n_classes, spec.mean, spec.std, **kwargs)


def _freeze(net: LesionNet, names) -> None:
    """What LesionClassifier does for freeze_until: requires_grad off for ``names``."""
    for name, p in net.named_parameters():
        if name in names:
            p.requires_grad_(False)


def test_lesion_net_normalises_uint8_and_float_alike():
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    net = LesionNet(backbone, 5, 3, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2)).eval()
    x8 = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    torch.testing.assert_close(net(x8), net(x8.float() / 255))
    expected = (x8.float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / 0.2
    torch.testing.assert_close(net.normalize(x8), expected)


def test_head_shape_follows_hidden_units_dropout_and_metadata():
    plain = _tiny_net(7)
    assert [type(m) for m in plain.head] == [nn.Linear]
    assert (plain.head[0].in_features, plain.head[0].out_features) == (64, 7)
    wide = _tiny_net(7, hidden_units=16, dropout=0.5, n_metadata=5)
    assert [type(m) for m in wide.head] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert wide.head[0].in_features == 64 + 5 and wide.head[-1].in_features == 16
    assert wide.head[2].p == 0.5
    out = wide.eval()(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), torch.zeros(2, 5))
    assert out.shape == (2, 7)


def test_metadata_reaches_the_head_and_is_required_when_built_with_it():
    net = _tiny_net(3, n_metadata=2).eval()
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        a = net(images, torch.zeros(2, 2))
        b = net(images, torch.ones(2, 2))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="built with metadata features; pass them"):
        net(images)


def test_parameters_before_names_the_backbone_parameters_before_a_layer():
    net = _tiny_net()
    assert net.parameters_before("1") == ["backbone.0.0.weight", "backbone.0.1.weight",
                                          "backbone.0.1.bias"]
    assert net.parameters_before("0") == []
    # a sub-layer name counts too: "1.1" starts after layer 1's convolution
    assert net.parameters_before("1.1") == net.parameters_before("1") + ["backbone.1.0.weight"]
    names = dict(net.named_parameters())
    assert all(n in names for n in net.parameters_before("2"))


def test_parameters_before_an_unknown_layer_names_the_choices():
    with pytest.raises(ValueError, match=r"freeze_until='blocks.3' names no layer of this "
                                         r"backbone; use one of \['0.0', '0.1', '1.0', '1.1', "
                                         r"'2.0', '2.1'\]"):
        _tiny_net().parameters_before("blocks.3")


def test_frozen_leading_layers_are_out_of_the_graph():
    net = _tiny_net()
    _freeze(net, net.parameters_before("2"))
    out = net.backbone[1](net.backbone[0](net.normalize(torch.zeros(2, 3, 16, 16))))
    assert not out.requires_grad  # nothing before layer 2 is part of the graph
    net(torch.zeros(2, 3, 16, 16, dtype=torch.uint8)).sum().backward()
    assert all(p.grad is None for p in net.backbone[:2].parameters())
    assert all(p.grad is not None for p in net.backbone[2].parameters())
    assert all(p.grad is not None for p in net.head.parameters())


def _norms(net):
    return [m for m in net.backbone.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]


def test_train_keeps_frozen_batchnorm_layers_in_eval_mode():
    net = _tiny_net()
    _freeze(net, net.parameters_before("1"))
    first, *rest = _norms(net)
    net.train()
    assert net.training and not first.training and all(m.training for m in rest)
    # so its running statistics stay while the rest of the network trains
    before = first.running_mean.clone(), first.running_var.clone()
    net(torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8))
    assert torch.equal(first.running_mean, before[0]) and torch.equal(first.running_var, before[1])
    net.eval()
    assert not any(m.training for m in _norms(net))
    # unfrozen again, train() puts it back in training mode
    for p in net.parameters():
        p.requires_grad_(True)
    net.train()
    assert all(m.training for m in _norms(net))


def test_resolve_device_passes_explicit_devices_through():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device("auto") in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") != "cuda"
