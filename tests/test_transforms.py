"""skderm.transforms.colour_constancy: shades-of-gray illuminant correction."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from skderm.transforms import colour_constancy, resolve_colour_constancy


def _scene(seed=0, shape=(2, 3, 24, 32)) -> torch.Tensor:
    """Float images in [0.05, 0.6]: room for a tint without clipping."""
    g = torch.Generator().manual_seed(seed)
    return 0.05 + 0.55 * torch.rand(shape, generator=g)


def _illuminant(x: torch.Tensor, p: float) -> torch.Tensor:
    if math.isinf(p):
        return x.amax(dim=(2, 3))
    return x.pow(p).mean(dim=(2, 3)).pow(1 / p)


@pytest.mark.parametrize("p", [1.0, 6.0, math.inf])
def test_the_corrected_image_has_a_grey_illuminant(p):
    # the estimate the method divides out is equal in every channel afterwards
    x = _scene() * torch.tensor([1.0, 0.7, 0.45]).view(1, 3, 1, 1)  # a warm light
    before = _illuminant(x, p)
    after = _illuminant(colour_constancy(x, p), p)
    assert (before.amax(dim=1) / before.amin(dim=1) > 1.9).all()
    np.testing.assert_allclose(after.numpy(), after[:, :1].expand_as(after).numpy(), rtol=1e-4)
    # and its norm is the original's: the brightness stays
    np.testing.assert_allclose(after.norm(dim=1).numpy(), before.norm(dim=1).numpy(), rtol=1e-4)


def test_a_change_of_light_colour_is_undone():
    # the same scene under two lights of equal strength (per-channel gains,
    # scaled so the illuminant's norm is unchanged) gives the same image
    x = _scene(1)
    gains = torch.tensor([1.3, 0.9, 0.6]).view(1, 3, 1, 1)
    tinted = x * gains
    scale = _illuminant(x, 6).norm(dim=1) / _illuminant(tinted, 6).norm(dim=1)
    tinted = tinted * scale.view(-1, 1, 1, 1)
    np.testing.assert_allclose(colour_constancy(tinted).numpy(), colour_constancy(x).numpy(),
                               atol=1e-5)
    assert not np.allclose(tinted.numpy(), x.numpy(), atol=1e-2)


def test_a_grey_lit_image_is_unchanged():
    x = _scene(2, (1, 1, 24, 32)).expand(1, 3, 24, 32).contiguous()  # grey everywhere
    np.testing.assert_allclose(colour_constancy(x).numpy(), x.numpy(), atol=1e-6)


def test_uint8_and_float_inputs_agree_and_the_output_is_unit_float():
    g = torch.Generator().manual_seed(3)
    u8 = torch.randint(0, 256, (3, 3, 16, 20), generator=g, dtype=torch.uint8)
    out = colour_constancy(u8)
    assert out.dtype == torch.float32 and out.shape == u8.shape
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out.numpy(), colour_constancy(u8.float() / 255).numpy(),
                               atol=1e-6)


def test_black_images_and_black_channels_stay_black_without_nans():
    x = torch.zeros(2, 3, 8, 8)
    x[1, 0] = 0.5  # a red-only image: green and blue are black everywhere
    out = colour_constancy(x)
    assert torch.isfinite(out).all()
    assert out[0].abs().max() == 0 and out[1, 1:].abs().max() == 0
    assert out[1, 0].min() > 0


@pytest.mark.parametrize("value, p", [(None, None), ("none", None), ("gray_world", 1.0),
                                      ("shades_of_gray", 6.0), ("max_rgb", math.inf),
                                      (2, 2.0), (math.inf, math.inf)])
def test_settings_resolve_to_a_minkowski_norm(value, p):
    assert resolve_colour_constancy(value) == p


@pytest.mark.parametrize("value", ["grey", 0.5, 0, -6, True, [6], "Shades_of_gray"])
def test_bad_settings_are_named_with_the_choices(value):
    with pytest.raises(ValueError, match=rf"colour_constancy={re.escape(repr(value))} is not "
                                         r"valid; use None \(off\), 'gray_world', "):
        resolve_colour_constancy(value)


def test_bad_shapes_and_powers_are_refused():
    with pytest.raises(ValueError, match=r"takes \(N, 3, H, W\) images, got shape \(3, 8, 8\)"):
        colour_constancy(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"colour_constancy=0.5 is not valid"):
        colour_constancy(torch.zeros(1, 3, 8, 8), 0.5)
