"""Tests for skderm.transforms: colour constancy, the centred test crop, the inference
view and Mixup."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skderm.transforms import (
    InferenceView,
    Mixup,
    centre_crop,
    colour_constancy,
    resolve_colour_constancy,
)


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


# ---------------------------------------------------------------------------
# centre_crop and InferenceView: what validation and prediction see
# ---------------------------------------------------------------------------


def test_centre_crop_keeps_the_centre_and_the_size():
    img = torch.zeros(1, 3, 40, 60, dtype=torch.uint8)
    img[:, :, 10:30, 15:45] = 255  # the middle half of each side: a quarter of the area
    out = centre_crop(img, 0.25)
    assert out.shape == (1, 3, 40, 60) and out.dtype == torch.float32
    assert out[:, :, 1:-1, 1:-1].min() > 0.99  # bilinear edges aside, all centre
    np.testing.assert_allclose(centre_crop(img, 1.0).numpy(), img.float().numpy() / 255,
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"centre_crop area must be a fraction in \(0, 1\], "
                                         r"got 1.5"):
        centre_crop(img, 1.5)


def _u8(seed=4, shape=(3, 3, 16, 20)) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def test_inference_view_off_shows_the_images_as_they_are():
    x = _u8()
    view = InferenceView()
    assert view.prepare(x) is x
    assert [v is x for v in view.views(x)] == [True]


def test_inference_view_applies_colour_constancy_then_the_crop():
    x = _u8()
    view = InferenceView(colour_power=6.0, crop_area=0.5)
    torch.testing.assert_close(view.prepare(x), centre_crop(colour_constancy(x, 6.0), 0.5))
    torch.testing.assert_close(InferenceView(crop_area=0.5).prepare(x), centre_crop(x, 0.5))
    torch.testing.assert_close(InferenceView(colour_power=1.0).prepare(x),
                               colour_constancy(x, 1.0))


def test_inference_view_flips_are_the_four_flips_of_the_prepared_images():
    x = _u8()
    view = InferenceView(crop_area=0.6, flips=True)
    prepared = view.prepare(x)
    views = list(view.views(x))
    assert len(views) == 4
    expected = [prepared, prepared.flip(3), prepared.flip(2), prepared.flip(2).flip(3)]
    for got, want in zip(views, expected, strict=True):
        torch.testing.assert_close(got, want)


# ---------------------------------------------------------------------------
# Mixup: mixup and CutMix with soft targets
# ---------------------------------------------------------------------------

N = 8


def _image_batch(n=N, h=12, w=16):
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=gen)
    return images, torch.randn(n, 4, generator=gen)


def _pairs(soft: torch.Tensor):
    """(lam, perm) read back from the soft targets of labels 0..N-1 (one class per image):
    row i holds lam at i and 1 - lam at perm[i]."""
    assert torch.allclose(soft.sum(1), torch.ones(len(soft)))
    perm = torch.arange(len(soft))
    off = soft.clone().fill_diagonal_(0)
    moved = off.sum(1) > 0
    perm[moved] = off[moved].argmax(1)
    if not moved.any():  # a CutMix box of no pixels: lam = 1, every perm reads the same
        torch.testing.assert_close(soft, torch.eye(len(soft)))
        return 1.0, perm
    lam = soft.diagonal()[moved]
    assert torch.allclose(lam, lam[:1].expand_as(lam)), "one lam per batch"
    torch.testing.assert_close(soft, lam[0] * torch.eye(len(soft))
                               + (1 - lam[0]) * torch.eye(len(soft))[perm])
    return float(lam[0]), perm


def _mixes(n_seeds, images, metadata=None, **alphas):
    """Mixup's output (and lam, perm) for torch seeds 0, 1, ..., n_seeds - 1."""
    mix = Mixup(**alphas)
    for seed in range(n_seeds):
        torch.manual_seed(seed)
        mixed, mixed_meta, soft = mix(images, metadata, F.one_hot(torch.arange(N)).float())
        yield (mixed, mixed_meta, *_pairs(soft))


def test_mixup_blends_images_metadata_and_labels_by_lam():
    images, meta = _image_batch()
    [(mixed, mixed_meta, lam, perm)] = _mixes(1, images, meta, mixup_alpha=0.4)
    assert 0 < lam < 1 and sorted(perm.tolist()) == list(range(N))
    x = images.float() / 255
    assert mixed.dtype == torch.float32 and mixed.shape == x.shape
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    torch.testing.assert_close(mixed_meta, lam * meta + (1 - lam) * meta[perm])
    # torch's generator decides: the same seed mixes the same way
    [(again, again_meta, lam_again, perm_again)] = _mixes(1, images, meta, mixup_alpha=0.4)
    assert lam_again == lam and torch.equal(perm_again, perm) and torch.equal(again, mixed)
    # uint8 and unit float images mix alike; no metadata stays None
    torch.manual_seed(0)
    as_float = Mixup(0.4)(x, None, F.one_hot(torch.arange(N)).float())
    torch.testing.assert_close(as_float[0], mixed)
    assert as_float[1] is None


def test_mixup_soft_targets_sum_to_one_with_repeated_labels():
    images, _ = _image_batch()
    target = torch.tensor([0, 0, 1, 1, 2, 2, 2, 1])
    torch.manual_seed(3)
    _, _, soft = Mixup(0.4, 1.0)(images, None, F.one_hot(target, 5).float())
    assert soft.shape == (N, 5) and soft.dtype == torch.float32
    torch.testing.assert_close(soft.sum(1), torch.ones(N))
    assert soft[:, 3:].abs().max() == 0  # classes absent from the batch get nothing


def test_cutmix_pastes_one_box_whose_share_is_1_minus_lam():
    images, meta = _image_batch()
    x = images.float() / 255
    lams = []
    for mixed, mixed_meta, lam, perm in _mixes(20, images, meta, cutmix_alpha=1.0):
        lams.append(lam)
        from_other = (mixed != x).any(dim=1)  # (N, H, W): pixels that came from x[perm]
        keep = ~from_other.unsqueeze(1).expand_as(mixed)
        assert torch.equal(mixed[keep], x[keep])
        rows, cols = from_other.any(dim=(0, 2)), from_other.any(dim=(0, 1))
        box = rows.sum().item() * cols.sum().item()
        # the pasted pixels are one rectangle (image i <- image perm[i]), of share 1 - lam
        if box:
            r, c = rows.nonzero().flatten(), cols.nonzero().flatten()
            r0, r1, c0, c1 = r.min().item(), r.max().item() + 1, c.min().item(), c.max().item() + 1
            torch.testing.assert_close(mixed[:, :, r0:r1, c0:c1], x[perm][:, :, r0:r1, c0:c1])
            assert (r1 - r0) * (c1 - c0) == pytest.approx((1 - lam) * 12 * 16)
        else:
            assert lam == 1.0
        torch.testing.assert_close(mixed_meta, lam * meta + (1 - lam) * meta[perm])
    assert min(lams) < 0.6 and max(lams) > 0.8  # Beta(1, 1): boxes of many sizes


def test_mixup_with_both_alphas_uses_each_about_half_the_time():
    images, _ = _image_batch()
    x = images.float() / 255
    kinds = ["mixup" if torch.allclose(mixed, lam * x + (1 - lam) * x[perm]) else "cutmix"
             for mixed, _, lam, perm in _mixes(40, images, mixup_alpha=0.4, cutmix_alpha=1.0)]
    assert 10 <= kinds.count("mixup") <= 30, kinds


@pytest.mark.parametrize("kwargs, match", [
    ({}, "mixes nothing"),
    ({"mixup_alpha": -0.2}, "mixup_alpha=-0.2"),
    ({"cutmix_alpha": True}, "cutmix_alpha=True"),
    ({"mixup_alpha": "0.2"}, "mixup_alpha='0.2'"),
])
def test_mixup_rejects_bad_alphas(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Mixup(**kwargs)(*_image_batch(), F.one_hot(torch.arange(N)).float())
