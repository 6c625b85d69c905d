"""Decoding and resizing: any image Pillow reads, as ``uint8`` RGB of the size asked for."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skderm.exceptions import ImageError

__all__ = ["Size", "as_size", "decode", "read_image", "resize_array"]

# Size is always (height, width), like numpy arrays and torchvision.
Size = tuple[int, int]


def as_size(size: int | Sequence[int]) -> Size:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive (height, width), got {size!r}")
    return h, w


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit grayscale: scale the full range down to 8 bits instead of
        # letting Pillow clip everything above 255 to white.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr8 = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr8 = ((arr - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "P":
        # palette images may carry transparency; go through RGBA so Pillow
        # resolves it instead of warning
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite over black: dermatoscopy borders are black, so padding
        # with black is the least surprising fill.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def read_image(path: str | os.PathLike, size: int | Sequence[int] | None = None) -> np.ndarray:
    """Decode one image file to a ``uint8`` RGB array.

    Parameters
    ----------
    path : str or path-like
        The image file.
    size : int or (height, width), default=None
        Resize to this size (aspect ratio is not kept). ``None`` keeps the
        original size.

    Returns
    -------
    ndarray of shape (height, width, 3), dtype uint8

    Raises
    ------
    ImageError
        The file is missing, empty, truncated, not an image, or too large to
        decode safely (Pillow's decompression-bomb limit).
    """
    path = os.fspath(path)
    if "\x00" in str(path):
        raise ImageError(f"image path {path!r} contains a NUL byte: no file can have that "
                         "name; check the path column", path=path)
    return decode(path, path, None if size is None else as_size(size))


def decode(source, path: str, target: Size | None) -> np.ndarray:
    """Decode ``source`` (``path`` itself, or a file object of its bytes)."""
    try:
        with Image.open(source) as img:
            limit = Image.MAX_IMAGE_PIXELS
            if limit and img.size[0] * img.size[1] > limit:
                # checked here, not through warnings filters: those are process-wide
                # and not thread-safe, and decoding runs in threads
                raise Image.DecompressionBombError(
                    f"{img.size[0]}x{img.size[1]} pixels exceeds the limit of {limit}")
            if target is not None and img.format == "JPEG":
                # libjpeg scales by 1/2..1/8 while decoding: far cheaper
                # than decoding full size and shrinking afterwards.
                img.draft("RGB", (target[1], target[0]))
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            if target is not None and img.size != (target[1], target[0]):
                img = img.resize((target[1], target[0]), Image.Resampling.BILINEAR,
                                 reducing_gap=None)
            arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path!r}", path=path) from None
    except IsADirectoryError:
        raise ImageError(f"expected an image file but found a directory: {path!r}",
                         path=path) from None
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"image {path!r} is too large to decode safely ({exc}); if you trust the "
            "file, raise PIL.Image.MAX_IMAGE_PIXELS before loading", path=path) from None
    except UnidentifiedImageError:
        size_b = os.path.getsize(path) if os.path.exists(path) else 0
        what = "an empty (0-byte) file" if size_b == 0 else "not an image Pillow can read"
        raise ImageError(f"cannot decode {path!r}: {what}; remove it or replace it "
                         "with a valid JPEG/PNG", path=path) from None
    except (OSError, SyntaxError, ValueError) as exc:
        # truncated JPEGs raise OSError("image file is truncated"); broken
        # PNG chunks raise SyntaxError/ValueError
        raise ImageError(f"cannot decode {path!r}: {exc} (the file is corrupt or "
                         "truncated; re-download or remove it)", path=path) from None
    if arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover - _to_rgb guarantees it
        raise ImageError(f"decoded {path!r} to unexpected shape {arr.shape}", path=path)
    return np.ascontiguousarray(arr)


def resize_array(image: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Resize one in-memory ``uint8`` image (H, W, 3) or (H, W) to ``size``."""
    target = as_size(size)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"in-memory images must be uint8, got dtype {arr.dtype}; "
                         "convert with np.clip(x, 0, 255).astype(np.uint8)")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"in-memory images must have shape (H, W, 3), got {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.shape[:2] == target:
        return np.ascontiguousarray(arr)
    img = Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
    img = img.resize((target[1], target[0]), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)
