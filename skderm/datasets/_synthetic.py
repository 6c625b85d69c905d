"""make_lesions: a learnable synthetic HAM10000 look-alike, written in the real layout.

Tests and examples run on it without the real images: every lesion is a
coloured blob whose class sets its hue, shape, texture and size, and
:func:`~skderm.datasets.load_ham10000` reads the folder it writes.
"""

from __future__ import annotations

import colorsys
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.utils import Bunch, check_random_state

from skderm.datasets._ham10000 import DX_CLASSES, HAM10000_COUNTS, REQUIRED_COLUMNS, load_ham10000

__all__ = ["make_lesions"]

# Per-class look: hue/saturation/value of the blob, ellipse eccentricity, border
# irregularity, texture kind and strength, relative size. Neighbouring classes
# share hues (akiec/bcc/vasc are pinkish-red, bkl/df/nv/mel brown) so that no
# single cue separates everything; per-lesion jitter blurs them further.
# fmt: off
_STYLE = {
    "akiec": dict(hsv=(0.985, 0.42, 0.72), ecc=0.30, irregular=0.10, texture="noise", strength=0.30, size=1.0),
    "bcc": dict(hsv=(0.930, 0.28, 0.78), ecc=0.15, irregular=0.06, texture="stripes", strength=0.30, size=0.95),
    "bkl": dict(hsv=(0.075, 0.45, 0.60), ecc=0.40, irregular=0.08, texture="noise", strength=0.20, size=1.05),
    "df": dict(hsv=(0.045, 0.50, 0.55), ecc=0.10, irregular=0.03, texture="dots", strength=0.35, size=0.75),
    "mel": dict(hsv=(0.035, 0.60, 0.32), ecc=0.30, irregular=0.13, texture="blotch", strength=0.45, size=1.15),
    "nv": dict(hsv=(0.060, 0.60, 0.45), ecc=0.12, irregular=0.03, texture="network", strength=0.25, size=0.9),
    "vasc": dict(hsv=(0.965, 0.70, 0.50), ecc=0.05, irregular=0.05, texture="dots", strength=0.30, size=0.8),
}
# fmt: on

_LOCATIONS = (
    "abdomen", "acral", "back", "chest", "ear", "face", "foot", "genital", "hand",
    "lower extremity", "neck", "scalp", "trunk", "unknown", "upper extremity",
)  # fmt: skip
# Images per (class, location) in the development copy of HAM10000, so that
# localization carries the weak signal it carries in the real data.
_LOCATION_COUNTS = {
    "akiec": (5, 0, 26, 11, 2, 95, 0, 0, 13, 44, 5, 13, 1, 0, 47),
    "bcc": (9, 0, 149, 37, 0, 91, 0, 0, 0, 46, 11, 17, 11, 4, 36),
    "bkl": (34, 0, 161, 57, 6, 259, 0, 2, 10, 131, 23, 32, 59, 18, 87),
    "df": (4, 0, 2, 0, 0, 0, 0, 1, 0, 65, 0, 0, 0, 0, 20),
    "mel": (53, 0, 257, 57, 16, 79, 23, 0, 1, 158, 23, 12, 34, 7, 171),
    "nv": (659, 7, 1171, 150, 23, 86, 200, 39, 42, 1201, 71, 36, 1010, 151, 518),
    "vasc": (19, 0, 15, 6, 0, 7, 0, 0, 3, 22, 3, 1, 28, 0, 9),
}
# mean and standard deviation of age per class in HAM10000
_AGE = {
    "akiec": (66, 12),
    "bcc": (67, 13),
    "bkl": (65, 14),
    "df": (54, 14),
    "mel": (61, 15),
    "nv": (46, 15),
    "vasc": (50, 22),
}
_DX_TYPES = ("histo", "follow_up", "consensus", "confocal")
_DX_TYPE_P = {
    "akiec": (1.0, 0.0, 0.0, 0.0),
    "bcc": (1.0, 0.0, 0.0, 0.0),
    "bkl": (0.6, 0.0, 0.3, 0.1),
    "df": (0.5, 0.0, 0.5, 0.0),
    "mel": (1.0, 0.0, 0.0, 0.0),
    "nv": (0.35, 0.55, 0.08, 0.02),
    "vasc": (0.5, 0.0, 0.5, 0.0),
}
# lesions per class guaranteed when there are enough lesions (5 = one per fold of
# a stratified 5-fold split over lesions)
_MIN_LESIONS_PER_CLASS = 5


def make_lesions(
    n_samples: int = 300,
    *,
    n_classes: int = 7,
    image_size: tuple[int, int] = (150, 200),
    images_per_lesion: tuple[int, int] = (1, 3),
    weights: Sequence[float] | None = None,
    random_state: int | np.random.RandomState | None = None,
    directory: str | os.PathLike | None = None,
) -> Bunch:
    """Write a learnable synthetic HAM10000-like dataset and load it.

    Each lesion is a coloured blob on a skin-toned background; its class sets
    the hue, the shape (eccentricity, border irregularity), the texture (dots,
    stripes, network, noise, blotches) and the size, each with per-lesion
    random variation. Each lesion has several images that differ by a small
    shift, rotation, scale and brightness change. Age and localization carry a
    weak class signal drawn from the real data's statistics, and ``dx_type``
    leaks the label as it does in HAM10000.

    Parameters
    ----------
    n_samples : int, default=300
        Number of images.
    n_classes : int, default=7
        Number of classes, the first ``n_classes`` of :data:`DX_CLASSES`.
    image_size : tuple of int, default=(150, 200)
        ``(height, width)`` of every image.
    images_per_lesion : tuple of int, default=(1, 3)
        Inclusive range of images per lesion; counts are drawn uniformly, then
        nudged so that they add up to ``n_samples``.
    weights : sequence of float, default=None
        Proportion of lesions per class (renormalised). ``None`` uses
        HAM10000's class frequencies. Every class gets at least 5 lesions
        when ``n_samples`` allows it, so a stratified 5-fold split over
        lesions works from about 150 images.
    random_state : int, RandomState instance or None, default=None
        Seed; the same seed writes the same bytes.
    directory : str or path-like, default=None
        Where to write ``HAM10000_metadata.csv`` and ``images/ISIC_*.jpg``;
        ``None`` creates a new temporary folder (``skderm_lesions_*``), which
        the caller may delete.

    Returns
    -------
    bunch : :class:`~sklearn.utils.Bunch`
        What :func:`load_ham10000` returns for the folder, plus ``directory``
        and ``masks``: where each lesion is, a boolean (n_samples, height,
        width) array in the rows' order (for testing saliency maps).
    """
    _check_make_params(n_samples, n_classes, image_size, images_per_lesion, weights)
    rng = check_random_state(random_state)
    classes = DX_CLASSES[:n_classes]
    if weights is None:
        weights = [HAM10000_COUNTS[dx] for dx in classes]
    weights = np.asarray(weights, dtype=float) / np.sum(weights)

    per_lesion = _images_per_lesion(n_samples, images_per_lesion, n_classes, rng)
    lesion_dx = _lesion_classes(len(per_lesion), weights, rng)
    lesions = _lesion_metadata(lesion_dx, classes, rng)

    directory = (
        Path(directory)
        if directory is not None
        else Path(tempfile.mkdtemp(prefix="skderm_lesions_"))
    )
    (directory / "images").mkdir(parents=True, exist_ok=True)
    image_ids = [
        f"ISIC_{k:07d}"
        for k in 24306 + rng.choice(max(10**5, 2 * n_samples), n_samples, replace=False)
    ]

    rows = []
    height, width = image_size
    # one noise bank, cropped at random offsets: far cheaper than fresh noise per image
    noise = rng.normal(0, 3, size=(2 * height, 2 * width, 3)).astype(np.float32)
    images = iter(image_ids)
    masks = {}
    for lesion, count in zip(lesions, per_lesion, strict=True):
        look = _lesion_look(lesion["dx"], min(height, width), rng)
        patch, skin = _draw_lesion(look), _draw_skin(look, height, width)
        for _ in range(count):
            image_id = next(images)
            pixels, masks[image_id] = _photograph(patch, skin, noise, rng)
            Image.fromarray(pixels).save(directory / "images" / f"{image_id}.jpg", quality=90)
            rows.append({**lesion, "image_id": image_id})
    columns = list(REQUIRED_COLUMNS)
    pd.DataFrame(rows)[columns].to_csv(
        directory / "HAM10000_metadata.csv", index=False, na_rep="", float_format="%.1f"
    )
    bunch = load_ham10000(directory)
    bunch.directory = str(directory.resolve())
    bunch.masks = np.stack([masks[i] for i in bunch.frame["image_id"]])
    return bunch


def _check_make_params(n_samples, n_classes, image_size, images_per_lesion, weights) -> None:
    if not isinstance(n_classes, (int, np.integer)) or not 2 <= n_classes <= len(DX_CLASSES):
        raise ValueError(f"n_classes must be an int from 2 to {len(DX_CLASSES)}, got {n_classes!r}")
    low, high = images_per_lesion
    if not (
        isinstance(low, (int, np.integer))
        and isinstance(high, (int, np.integer))
        and 1 <= low <= high
    ):
        raise ValueError(
            f"images_per_lesion must be (low, high) ints with 1 <= low <= high, got {images_per_lesion!r}"
        )
    if not isinstance(n_samples, (int, np.integer)) or n_samples < n_classes * low:
        raise ValueError(
            f"n_samples must be an int of at least n_classes * images_per_lesion[0] = "
            f"{n_classes * low} (one lesion per class), got {n_samples!r}"
        )
    if len(image_size) != 2 or min(image_size) < 16:
        raise ValueError(
            f"image_size must be (height, width), each at least 16, got {image_size!r}"
        )
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n_classes,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"weights must be {n_classes} non-negative numbers (one per class) with a "
                f"positive sum, got {weights!r}"
            )


def _images_per_lesion(n_samples, images_per_lesion, n_classes, rng) -> np.ndarray:
    """Images of each lesion: uniform in the range, adding up to n_samples."""
    low, high = images_per_lesion
    n_lesions = int(round(2 * n_samples / (low + high)))
    # enough lesions for the per-class minimum when the image budget allows it
    wanted = min(_MIN_LESIONS_PER_CLASS * n_classes, n_samples // low)
    n_lesions = int(np.clip(max(n_lesions, wanted), -(-n_samples // high), n_samples // low))
    counts = rng.randint(low, high + 1, size=n_lesions)
    # nudge random lesions up or down, within the range, until the total fits
    while counts.sum() != n_samples:
        step = 1 if counts.sum() < n_samples else -1
        room = np.flatnonzero(counts < high) if step == 1 else np.flatnonzero(counts > low)
        chosen = rng.choice(room, size=min(len(room), abs(n_samples - counts.sum())), replace=False)
        counts[chosen] += step
    return counts


def _lesion_classes(n_lesions, weights, rng) -> np.ndarray:
    """Class index of each lesion: a floor per class, the rest by weights."""
    n_classes = len(weights)
    floor = min(_MIN_LESIONS_PER_CLASS, n_lesions // n_classes)
    share = weights * (n_lesions - floor * n_classes)
    counts = floor + np.floor(share).astype(int)
    # largest remainders get the lesions left over, as in apportionment
    left = n_lesions - counts.sum()
    counts[np.argsort(-(share - np.floor(share)), kind="stable")[:left]] += 1
    return rng.permutation(np.repeat(np.arange(n_classes), counts))


def _lesion_metadata(lesion_dx, classes, rng) -> list[dict]:
    ids = rng.choice(max(10**4, 2 * len(lesion_dx)), len(lesion_dx), replace=False)
    lesions = []
    for k, c in zip(ids, lesion_dx, strict=True):
        dx = classes[c]
        mean, sd = _AGE[dx]
        age = float(np.clip(5 * round(rng.normal(mean, sd) / 5), 0, 85))
        location_p = np.asarray(_LOCATION_COUNTS[dx], float) + 0.5
        lesions.append(
            {
                "lesion_id": f"HAM_{k:07d}",
                "dx": dx,
                "dx_type": _DX_TYPES[rng.choice(4, p=_DX_TYPE_P[dx])],
                "age": np.nan if rng.uniform() < 0.007 else age,
                "sex": rng.choice(["male", "female", "unknown"], p=[0.54, 0.455, 0.005]),
                "localization": _LOCATIONS[
                    rng.choice(len(_LOCATIONS), p=location_p / location_p.sum())
                ],
            }
        )
    return lesions


def _lesion_look(dx, side, rng) -> dict:
    """Everything shared by the images of one lesion (plain floats: float32 maths)."""
    style = _STYLE[dx]
    h, s, v = style["hsv"]
    hue = (h + rng.normal(0, 0.012)) % 1.0
    sat = float(np.clip(s + rng.normal(0, 0.07), 0.05, 1))
    val = float(np.clip(v + rng.normal(0, 0.07), 0.08, 1))
    light, tan = np.array([240, 208, 188]), np.array([185, 135, 100])
    irregular = max(style["irregular"] + rng.normal(0, 0.02), 0.0)
    return {
        "colour": np.float32(colorsys.hsv_to_rgb(hue, sat, val)) * 255,
        "skin": np.float32(light + rng.uniform(0, 0.7) * (tan - light)),
        "vignette": rng.uniform(0.0, 0.5),
        "radius": side * rng.uniform(0.24, 0.36) * style["size"],
        "axis": 1 - float(np.clip(style["ecc"] + rng.normal(0, 0.06), 0, 0.7)),
        "angle": rng.uniform(0, 2 * np.pi),
        "border": rng.normal(0, irregular / np.sqrt(2), 5).tolist(),
        "border_phase": rng.uniform(0, 2 * np.pi, 5).tolist(),
        "texture": style["texture"],
        "strength": style["strength"] * rng.uniform(0.7, 1.3),
        "freq": rng.uniform(7, 12),
        "phase": rng.uniform(0, 2 * np.pi, 2).tolist(),
        "waves": rng.uniform([0, 4, 0], [2 * np.pi, 12, 2 * np.pi], size=(6, 3)).tolist(),
    }


def _draw_lesion(look) -> Image.Image:
    """The lesion as an RGBA patch: colour, shape and texture, drawn once per lesion."""
    radius, border = look["radius"], look["border"]
    half = int(np.ceil(radius * (1 + sum(map(abs, border)))) + 3)
    coords = np.arange(-half, half + 1, dtype=np.float32) / np.float32(radius)
    y, x = np.meshgrid(coords, coords, indexing="ij")
    cos, sin = math.cos(look["angle"]), math.sin(look["angle"])
    u, v = cos * x + sin * y, (-sin * x + cos * y) / look["axis"]
    rho = np.sqrt(u**2 + v**2)
    # border harmonics cos(k*theta + phase) from powers of the unit complex number
    unit = (u + 1j * v) / np.maximum(rho, 1e-6)
    power, edge = unit, np.ones_like(rho)
    for k, (weight, phase) in enumerate(zip(border, look["border_phase"], strict=True), start=2):
        power = power * unit
        # low harmonics dominate: a blobby outline rather than a star
        edge += 2 / k * weight * (power * np.exp(1j * phase)).real.astype(np.float32)
    alpha = np.clip((edge - rho) / 0.12, 0, 1)

    blob = look["colour"] * (1 + look["strength"] * _texture(look, u, v))[..., None]
    if look["texture"] == "blotch":  # blue-grey veil, as in melanoma
        veil = np.clip((_waves(look, v, u, 0.5) - 0.3) / 0.3, 0, 1)[..., None] * 0.6
        blob = blob * (1 - veil) + np.float32([91, 100, 115]) * veil
    blob *= (1 - 0.15 * np.clip(1 - rho, 0, 1))[..., None]  # pigment densest at the centre
    rgba = np.concatenate([blob, 255 * alpha[..., None]], axis=-1)
    return Image.fromarray(np.clip(rgba, 0, 255).astype(np.uint8), mode="RGBA")


def _draw_skin(look, height, width) -> Image.Image:
    """Skin-toned background with a smooth tone field and a dark vignette."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((x - width / 2) / width) ** 2 + ((y - height / 2) / height) ** 2
    shade = (1 - look["vignette"] * np.clip(r2 * 4 - 0.6, 0, 1)) * (
        1 + 0.04 * _waves(look, x / 40, y / 40, 1.0)
    )
    return Image.fromarray(np.clip(look["skin"] * shade[..., None], 0, 255).astype(np.uint8))


def _photograph(patch, skin, noise, rng) -> tuple[np.ndarray, np.ndarray]:
    """One image of a lesion (small scale, rotation, shift and brightness change, plus
    noise) and the boolean mask of where the lesion lies in it."""
    width, height = skin.size
    size = max(3, round(patch.width * rng.uniform(0.93, 1.07)))
    patch = patch.resize((size, size), Image.Resampling.BILINEAR)
    patch = patch.rotate(rng.uniform(-23, 23), resample=Image.Resampling.BICUBIC, expand=True)
    x0 = round(width / 2 * (1 + rng.uniform(-0.12, 0.12)) - patch.width / 2)
    y0 = round(height / 2 * (1 + rng.uniform(-0.12, 0.12)) - patch.height / 2)
    canvas = skin.copy()
    canvas.paste(patch, (x0, y0), patch)
    alpha = Image.new("L", skin.size, 0)
    alpha.paste(patch.getchannel("A"), (x0, y0))
    top, left = rng.randint(0, height + 1), rng.randint(0, width + 1)
    pixels = np.asarray(canvas, dtype=np.float32) * np.float32(rng.uniform(0.9, 1.1))
    pixels += noise[top : top + height, left : left + width]
    return np.clip(pixels, 0, 255).astype(np.uint8), np.asarray(alpha) > 127


def _waves(look, u, v, scale) -> np.ndarray:
    """Smooth random field in [-1, 1]: a sum of plane waves fixed per lesion."""
    total = np.zeros_like(u)
    for direction, freq, phase in look["waves"]:
        cu, cv = (
            np.float32(scale * freq * np.cos(direction)),
            np.float32(scale * freq * np.sin(direction)),
        )
        total += np.cos(cu * u + cv * v + np.float32(phase))
    return np.clip(total / np.float32(np.sqrt(len(look["waves"]) / 2) * 2), -1, 1)


def _texture(look, u, v) -> np.ndarray:
    """Class texture in [-1, 1] (negative: darker), blended with lesion noise."""
    f, (p1, p2) = np.float32(look["freq"]), np.float32(look["phase"])
    noise = _waves(look, u, v, 1.0)
    kind = look["texture"]
    if kind == "stripes":
        pattern = np.cos(1.4 * f * u + p1)
    elif kind == "dots":
        pattern = 0.5 - 2 * np.clip((np.sin(f * u + p1) * np.sin(f * v + p2) - 0.45) / 0.3, 0, 1)
    elif kind == "network":
        lines = np.minimum(np.abs(np.sin(f * u + p1)), np.abs(np.sin(f * v + p2)))
        pattern = 1 - 2 * np.clip(1 - lines / 0.35, 0, 1)
    elif kind == "blotch":
        pattern = np.sign(noise) * np.sqrt(np.abs(noise))
    else:  # noise: fine scaly grain
        pattern = _waves(look, u, v, 2.5)
    return np.clip(0.75 * pattern + 0.25 * noise, -1, 1).astype(np.float32)
