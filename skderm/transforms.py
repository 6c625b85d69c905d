"""Training-time augmentation, on ``uint8`` image tensors.

Images reach the network as ``uint8`` tensors of the cached size; they are
augmented here (training iterator only) and converted to float and normalised
inside the network (:class:`skderm.classifier.LesionNet`), with the mean and
std of the backbone's own entry. Prediction applies no random transform, so it
is deterministic.

:class:`Augmentation` is a small estimator-like object, so GridSearchCV can
reach its settings: ``lesionclassifier__augmentation__rotation``.
"""

from __future__ import annotations

from numbers import Real

from sklearn.base import BaseEstimator

__all__ = ["Augmentation", "resolve_augmentation"]


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

    def build(self, size: tuple[int, int]):
        """Return a callable mapping a ``uint8`` (3, H, W) tensor to an augmented one."""
        from torchvision.transforms import v2

        self._check()
        steps = []
        if self.crop_scale is not None:
            ratio = size[1] / size[0]
            steps.append(v2.RandomResizedCrop(
                size, scale=tuple(self.crop_scale), ratio=(ratio * 3 / 4, ratio * 4 / 3),
                antialias=True))
        if self.flip:
            steps += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
        if self.rotation:
            steps.append(v2.RandomRotation(float(self.rotation)))
        if any((self.brightness, self.contrast, self.saturation, self.hue)):
            steps.append(v2.ColorJitter(brightness=self.brightness or None,
                                        contrast=self.contrast or None,
                                        saturation=self.saturation or None,
                                        hue=self.hue or None))
        if not steps:
            return None
        return v2.Compose(steps)


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
