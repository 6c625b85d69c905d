"""Training-time augmentation, on ``uint8`` image tensors.

Images reach the network as ``uint8`` batches of the cached size. During
training only, :class:`BatchAugment` augments each batch on its device (one
affine resampling for crop, flips and rotation, then colour jitter); the
network (:class:`skderm.classifier.network.LesionNet`) then normalises with the mean and
std of the backbone's own entry. Prediction applies no random transform, so
it is deterministic. :func:`colour_constancy` (``LesionClassifier(colour_constancy=...)``)
runs before all of that, in training and prediction alike: it takes each
image's illuminant out.

:class:`Mixup` is mixup / CutMix (``LesionClassifier(mixup=Mixup(mixup_alpha=...,
cutmix_alpha=...))``): like timm's ``Mixup`` it returns the mixed batch and the
mixed soft targets, which the losses of :mod:`skderm.losses` take.
:class:`InferenceView` is what validation and prediction see: colour
constancy, the centred test crop, and optional flip test-time augmentation.

:class:`Augmentation` is a small estimator-like object, so GridSearchCV can
reach its settings: ``lesionclassifier__augmentation__rotation``.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator

__all__ = ["Augmentation", "BatchAugment", "InferenceView", "Mixup", "centre_crop",
           "colour_constancy", "resolve_augmentation", "resolve_colour_constancy"]


class Augmentation(BaseEstimator):
    """Random flips, rotation, colour jitter and resized crops for lesion images.

    The defaults follow the ISIC 2018 write-ups: dermoscopy has no canonical
    orientation, so both flips and any rotation are label-preserving;
    brightness, contrast and hue jitter model differences between cameras
    (saturation is left out, as in the second write-up).

    Parameters
    ----------
    flip : bool, default=True
        Random horizontal and vertical flips.
    rotation : float, default=180.0
        Maximum rotation in degrees (uniform in ``[-rotation, rotation]``);
        ``0`` disables.
    brightness, contrast, saturation, hue : float, default=0.1, 0.1, 0.0, 0.02
        Colour-jitter strengths as in :class:`torchvision.transforms.ColorJitter`;
        ``0`` disables each.
    crop_scale : tuple of float or None, default=(0.75, 1.0)
        Area range of a random resized crop taken back to the image size;
        ``None`` disables.
    """

    def __init__(self, *, flip: bool = True, rotation: float = 180.0,
                 brightness: float = 0.1, contrast: float = 0.1, saturation: float = 0.0,
                 hue: float = 0.02, crop_scale: tuple[float, float] | None = (0.75, 1.0)):
        self.flip = flip
        self.rotation = rotation
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.crop_scale = crop_scale

    def _check(self) -> None:
        for name in ("rotation", "brightness", "contrast", "saturation", "hue"):
            value = getattr(self, name)
            if not isinstance(value, Real) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Augmentation {name} must be a number >= 0, got {value!r}")
        if self.hue > 0.5:
            raise ValueError(f"Augmentation hue must be <= 0.5, got {self.hue!r}")
        if self.crop_scale is not None:
            lo, hi = self.crop_scale
            if not 0 < lo <= hi <= 1:
                raise ValueError("Augmentation crop_scale must be (low, high) with "
                                 f"0 < low <= high <= 1, got {self.crop_scale!r}")

    def build(self) -> BatchAugment | None:
        """Return the batched augmentation (``None`` when everything is disabled)."""
        self._check()
        if not (self.flip or self.rotation or self.crop_scale is not None or
                any((self.brightness, self.contrast, self.saturation, self.hue))):
            return None
        return BatchAugment(self)


class BatchAugment:
    """Augment a whole batch at once, on whatever device the batch is on.

    Crop, flips and rotation are one affine resampling (``grid_sample``) with
    per-image random parameters; brightness, contrast, saturation and hue are
    per-image colour transforms (hue as a rotation of the chroma plane in YIQ
    space). Doing this batched, after the batch reached the GPU, keeps the
    data loader a plain copy of ``uint8`` arrays, so it never bottlenecks.
    Randomness comes from torch's generator, seeded by ``random_state``.
    """

    def __init__(self, aug: Augmentation):
        self.aug = aug

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` or [0, 1] float images (N, 3, H, W) -> augmented float in [0, 1]."""
        x = self._geometry(_unit_float(images))
        return self._colour(x).clamp_(0.0, 1.0)

    def _rand(self, n, lo, hi, x):
        return torch.empty(n, device=x.device).uniform_(lo, hi)

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        a = self.aug
        n, _, h, w = x.shape
        if not (a.flip or a.rotation or a.crop_scale is not None):
            return x
        ones = torch.ones(n, device=x.device)
        sx, sy, tx, ty = ones, ones.clone(), ones * 0, ones * 0
        if a.crop_scale is not None:
            area = self._rand(n, a.crop_scale[0], a.crop_scale[1], x)
            log_r = self._rand(n, math.log(3 / 4), math.log(4 / 3), x)
            r = torch.exp(log_r)
            sx = torch.sqrt(area * r).clamp(max=1.0)
            sy = torch.sqrt(area / r).clamp(max=1.0)
            tx = (torch.rand(n, device=x.device) * 2 - 1) * (1 - sx)
            ty = (torch.rand(n, device=x.device) * 2 - 1) * (1 - sy)
        if a.flip:
            sx = sx * torch.where(torch.rand(n, device=x.device) < 0.5, -1.0, 1.0)
            sy = sy * torch.where(torch.rand(n, device=x.device) < 0.5, -1.0, 1.0)
        angle = (self._rand(n, -a.rotation, a.rotation, x) * (math.pi / 180) if a.rotation
                 else ones * 0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # rotation in pixel space, expressed in grid_sample's normalised coordinates
        # (x spans W, y spans H): D^-1 R D with D = diag(W, H)
        theta = torch.stack([
            torch.stack([cos * sx, -sin * sy * (h / w), tx], dim=1),
            torch.stack([sin * sx * (w / h), cos * sy, ty], dim=1),
        ], dim=1)
        return _resample(x, theta)

    def _colour(self, x: torch.Tensor) -> torch.Tensor:
        a = self.aug
        n = x.shape[0]
        if a.brightness:
            x = x * self._rand(n, 1 - a.brightness, 1 + a.brightness, x).view(n, 1, 1, 1)
        if a.contrast:
            c = self._rand(n, max(0.0, 1 - a.contrast), 1 + a.contrast, x).view(n, 1, 1, 1)
            mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * c + mean
        if a.saturation:
            s = self._rand(n, max(0.0, 1 - a.saturation), 1 + a.saturation, x).view(n, 1, 1, 1)
            g = _gray(x)
            x = (x - g) * s + g
        if a.hue:
            phi = self._rand(n, -a.hue, a.hue, x) * (2 * math.pi)
            x = _rotate_hue(x, phi)
        return x


_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114],
                         [0.596, -0.274, -0.322],
                         [0.211, -0.523, 0.312]])


def _gray(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _rotate_hue(x: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Shift hue by ``phi`` radians per image: rotate the I/Q chroma plane of YIQ."""
    fwd = _RGB2YIQ.to(x.device, x.dtype)
    inv = torch.linalg.inv(fwd)
    cos, sin = torch.cos(phi), torch.sin(phi)
    zero, one = torch.zeros_like(phi), torch.ones_like(phi)
    rot = torch.stack([torch.stack([one, zero, zero], 1),
                       torch.stack([zero, cos, -sin], 1),
                       torch.stack([zero, sin, cos], 1)], 1)  # (n, 3, 3)
    m = inv @ rot @ fwd  # per-image RGB -> RGB
    return torch.einsum("nij,njhw->nihw", m, x)


def centre_crop(images: torch.Tensor, area: float) -> torch.Tensor:
    """A centred crop of ``area`` (a fraction of each image's area), resized back.

    ``uint8`` or [0, 1] float images (N, 3, H, W) -> float in [0, 1], same
    size; the same bilinear ``grid_sample`` resampling as the training crops
    of :class:`BatchAugment`, with the aspect ratio kept.
    """
    if not (isinstance(area, Real) and 0 < area <= 1):
        raise ValueError(f"centre_crop area must be a fraction in (0, 1], got {area!r}")
    x = _unit_float(images)
    s = math.sqrt(float(area))
    theta = torch.tensor([[s, 0.0, 0.0], [0.0, s, 0.0]], dtype=x.dtype, device=x.device)
    return _resample(x, theta.expand(x.shape[0], 2, 3))


# the named colour-constancy methods: their Minkowski norm
_CONSTANCY = {"gray_world": 1.0, "shades_of_gray": 6.0, "max_rgb": math.inf}


def resolve_colour_constancy(value, *, owner: str = "") -> float | None:
    """The Minkowski norm ``p`` a ``colour_constancy`` setting means (``None``: off).

    ``None`` or ``"none"`` -> ``None``; ``"gray_world"`` -> 1,
    ``"shades_of_gray"`` -> 6, ``"max_rgb"`` -> ``inf``; a number ``p >= 1``
    (``math.inf`` included) -> ``p``. Anything else raises a ``ValueError``
    naming the value and the choices, prefixed by ``owner`` (the estimator's
    class name) when given.
    """
    if value is None or (isinstance(value, str) and value == "none"):
        return None
    if isinstance(value, str) and value in _CONSTANCY:
        return _CONSTANCY[value]
    if isinstance(value, Real) and not isinstance(value, bool) and value >= 1:
        return float(value)
    raise ValueError(f"{owner + ' ' if owner else ''}colour_constancy={value!r} is not valid; "
                     "use None (off), "
                     f"{', '.join(repr(k) for k in _CONSTANCY)} or a Minkowski norm "
                     "p >= 1 (1 is gray world, 6 shades of gray, math.inf max-RGB)")


def colour_constancy(images: torch.Tensor, power: float = 6.0) -> torch.Tensor:
    """Shades-of-gray colour constancy (Finlayson and Trezzi, 2004), per image.

    Dermoscopes light and image lesions differently; this takes each image's
    illuminant out before the network sees it. The illuminant is estimated
    as the Minkowski ``power``-mean of each channel, ``e_c = mean(I_c ** p)
    ** (1 / p)``, and divided out so that it becomes neutral grey: ``I_c *
    |e| / (sqrt(3) * e_c)``, clipped to [0, 1]. An image already lit by grey
    light is unchanged. ``power=1`` is Gray World, ``math.inf`` max-RGB
    (White Patch); 6 is what Barata et al. (2015) found best for dermoscopy
    and what ISIC 2018 and 2019 entries used.

    Parameters
    ----------
    images : Tensor (N, 3, H, W)
        ``uint8`` or float in [0, 1].
    power : float, default=6.0
        The Minkowski norm ``p >= 1``.

    Returns
    -------
    Tensor (N, 3, H, W), float32 in [0, 1], on the input's device.
    """
    p = resolve_colour_constancy(power)
    if p is None:
        raise ValueError("colour_constancy power must be a number >= 1, got None")
    x = _unit_float(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"colour_constancy takes (N, 3, H, W) images, got shape "
                         f"{tuple(images.shape)}")
    if math.isinf(p):
        illuminant = x.amax(dim=(2, 3), keepdim=True)
    else:
        illuminant = x.pow(p).mean(dim=(2, 3), keepdim=True).pow(1.0 / p)
    norm = illuminant.square().sum(dim=1, keepdim=True).sqrt()
    # a channel that is black everywhere stays black (0 * anything finite)
    gain = norm / (math.sqrt(3.0) * illuminant.clamp_min(1e-6))
    return (x * gain).clamp_(0.0, 1.0)


def _unit_float(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` or [0, 1] float images -> float in [0, 1]."""
    x = images.float()
    return x / 255.0 if images.dtype == torch.uint8 else x


def _resample(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of ``x`` (N, C, H, W) by per-image affine maps ``theta`` (N, 2, 3)."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resolve_augmentation(value) -> Augmentation | None:
    """``"default"`` -> :class:`Augmentation()`, ``None``/``"none"``/``False`` -> no augmentation."""
    if value is None or value is False or (isinstance(value, str) and value == "none"):
        return None
    if isinstance(value, str) and value == "default":
        return Augmentation()
    if value is True:
        return Augmentation()
    if isinstance(value, Augmentation):
        return value
    raise ValueError(f"augmentation must be 'default', 'none', None or an "
                     f"skderm.transforms.Augmentation, got {value!r}")


class Mixup(BaseEstimator):
    """Mixup or CutMix one training batch; returns the mixed batch and soft targets.

    Each image ``i`` is combined with image ``perm[i]`` of the batch (``perm``
    a random permutation); its own label keeps the share ``lam``:

    mixup (Zhang et al., 2018)
        ``lam * x[i] + (1 - lam) * x[perm[i]]``, ``lam ~ Beta(alpha, alpha)``;
    CutMix (Yun et al., 2019)
        a box of ``x[perm[i]]`` pasted into ``x[i]`` (one box per batch), and
        ``lam`` recomputed as the share of pixels that stayed.

    With both alphas > 0 each batch uses one of the two with probability 1/2,
    as timm's ``Mixup``. Metadata rows are blended with the same ``lam``.
    Randomness comes from torch's default CPU generator (seeded by
    ``random_state`` and saved in checkpoints), whatever the batch's device.

    Parameters
    ----------
    mixup_alpha, cutmix_alpha : float, >= 0, not both 0
    """

    def __init__(self, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0):
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha

    def check(self) -> None:
        """Refuse alphas that are not numbers >= 0, or both 0."""
        for name in ("mixup_alpha", "cutmix_alpha"):
            alpha = getattr(self, name)
            if isinstance(alpha, bool) or not isinstance(alpha, Real) or not alpha >= 0:
                raise ValueError(f"Mixup({name}={alpha!r}) is not valid; use a float >= 0 "
                                 "(0 turns it off)")
        if not (self.mixup_alpha or self.cutmix_alpha):
            raise ValueError("Mixup(mixup_alpha=0, cutmix_alpha=0) mixes nothing: set one "
                             "of them > 0, or pass mixup=None")

    def __call__(self, images: torch.Tensor, metadata: torch.Tensor | None,
                 target: torch.Tensor):
        """``uint8`` or [0, 1] images (N, C, H, W), metadata (N, F) or None, one-hot or
        soft targets (N, n_classes) -> float images in [0, 1], blended metadata, soft
        targets."""
        self.check()
        x = _unit_float(images)
        cut = bool(self.cutmix_alpha) and (not self.mixup_alpha or torch.rand(()).item() < 0.5)
        alpha = float(self.cutmix_alpha if cut else self.mixup_alpha)
        n, _, h, w = x.shape
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        perm = torch.randperm(n).to(x.device)
        if cut:
            ratio = math.sqrt(1.0 - lam)
            ch, cw = int(h * ratio), int(w * ratio)
            cy, cx = int(torch.randint(h, ()).item()), int(torch.randint(w, ()).item())
            y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
            x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
            x = x.clone()
            x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
        else:
            x = x * lam + x[perm] * (1.0 - lam)
        if metadata is not None:
            m = metadata.float()
            metadata = m * lam + m[perm.to(m.device)] * (1.0 - lam)
        target = target.float()
        soft = target * lam + target[perm.to(target.device)] * (1.0 - lam)
        return x, metadata, soft


class InferenceView:
    """What validation and prediction show the network: one deterministic view per image.

    Colour constancy (``colour_power``, None: off), then a centred crop of
    ``crop_area`` of each image resized back (None: the whole image); with
    ``flips`` the prediction is the mean probability over the four flips.

    Parameters
    ----------
    colour_power : float or None
    crop_area : float in (0, 1) or None
    flips : bool
    """

    _FLIPS = ((), (3,), (2,), (2, 3))

    def __init__(self, *, colour_power: float | None = None, crop_area: float | None = None,
                 flips: bool = False):
        self.colour_power = colour_power
        self.crop_area = crop_area
        self.flips = bool(flips)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Colour constancy and the centred crop (images unchanged when both are off)."""
        if self.colour_power is not None:
            images = colour_constancy(images, self.colour_power)
        if self.crop_area is not None:
            images = centre_crop(images, self.crop_area)
        return images

    def views(self, images: torch.Tensor):
        """The prepared images, then their flips when ``flips`` is on."""
        x = self.prepare(images)
        for dims in self._FLIPS if self.flips else ((),):
            yield torch.flip(x, dims) if dims else x
