"""Decoding, resizing and the decoded-image cache.

This is the one place in skderm that opens image files. Every estimator gets
its pixels from :func:`load_images`, which

* decodes JPEG/PNG/anything Pillow reads, in whatever mode real folders hold
  (RGB, RGBA, grayscale, CMYK, palette, 16-bit), applies the EXIF orientation
  and returns ``uint8`` arrays of shape ``(height, width, 3)``;
* resizes to the requested size while decoding (JPEG draft mode lets libjpeg
  decode at 1/2, 1/4 or 1/8 scale when the target is that much smaller);
* keeps what it decoded in a process-wide cache keyed by path, size,
  modification time and file size, so the second epoch, the next
  GridSearchCV candidate and the next ``predict`` decode nothing again, and an
  edited file is decoded afresh.

The cache lives only in memory, never in the user's data folder.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skderm.exceptions import ImageError

__all__ = [
    "read_image",
    "load_images",
    "resize_array",
    "cache_info",
    "clear_cache",
    "set_cache_limit",
]

# Size is always (height, width), like numpy arrays and torchvision.
Size = tuple[int, int]

_DEFAULT_CACHE_BYTES = 6 * 1024**3


def _as_size(size: int | Sequence[int]) -> Size:
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
    target = None if size is None else _as_size(size)
    try:
        with Image.open(path) as img:
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
    target = _as_size(size)
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


@dataclass
class CacheInfo:
    """Counters of the decoded-image cache (like ``functools.lru_cache``)."""

    hits: int
    misses: int
    """Number of files decoded."""
    currsize: int
    """Number of cached images."""
    nbytes: int
    maxbytes: int


class _ImageCache:
    """Thread-safe LRU of decoded arrays, bounded in bytes."""

    def __init__(self, maxbytes: int):
        self.maxbytes = maxbytes
        self._data: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self._lock:
            arr = self._data.get(key)
            if arr is not None:
                self._data.move_to_end(key)
                self.hits += 1
            return arr

    def put(self, key, arr: np.ndarray) -> None:
        with self._lock:
            self.misses += 1
            if arr.nbytes > self.maxbytes:
                return
            old = self._data.pop(key, None)
            if old is not None:
                self._nbytes -= old.nbytes
            self._data[key] = arr
            self._nbytes += arr.nbytes
            while self._nbytes > self.maxbytes and self._data:
                _, dropped = self._data.popitem(last=False)
                self._nbytes -= dropped.nbytes

    def trim(self) -> None:
        with self._lock:
            while self._nbytes > self.maxbytes and self._data:
                _, dropped = self._data.popitem(last=False)
                self._nbytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._nbytes = 0
            self.hits = 0
            self.misses = 0

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self.hits, self.misses, len(self._data), self._nbytes, self.maxbytes)


def _cache_limit_from_env() -> int:
    raw = os.environ.get("SKDERM_CACHE_BYTES")
    if raw is None:
        return _DEFAULT_CACHE_BYTES
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"SKDERM_CACHE_BYTES must be a number of bytes, got {raw!r}") from None


_CACHE = _ImageCache(_cache_limit_from_env())


def cache_info() -> CacheInfo:
    """Hits, misses (files decoded), entries and bytes of the decoded-image cache."""
    return _CACHE.info()


def clear_cache() -> None:
    """Empty the decoded-image cache and reset its counters."""
    _CACHE.clear()


def set_cache_limit(maxbytes: int) -> None:
    """Bound the decoded-image cache to ``maxbytes`` (``0`` disables caching).

    The default is 6 GiB, or the environment variable ``SKDERM_CACHE_BYTES``.
    All 10,015 HAM10000 images at 224x224 take 1.5 GB.
    """
    if maxbytes < 0:
        raise ValueError(f"maxbytes must be >= 0, got {maxbytes}")
    _CACHE.maxbytes = int(maxbytes)
    _CACHE.trim()


def _cache_key(path: str, size: Size) -> tuple:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path!r}", path=path) from None
    except OSError as exc:
        raise ImageError(f"cannot read {path!r}: {exc}", path=path) from None
    return (path, size, st.st_mtime_ns, st.st_size)


def _default_workers() -> int:
    # Pillow releases the GIL while decoding and resizing, so threads scale.
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


def load_images(
    paths: Iterable[str | os.PathLike],
    size: int | Sequence[int],
    *,
    n_jobs: int | None = None,
    progress: bool = False,
) -> list[np.ndarray]:
    """Decode and resize many images through the cache.

    Parameters
    ----------
    paths : iterable of str or path-like
        Image files.
    size : int or (height, width)
        Output size of every image.
    n_jobs : int, default=None
        Decoding threads; ``None`` uses up to 8, bounded by the CPUs available.
    progress : bool, default=False
        Print a line on stderr as images are decoded.

    Returns
    -------
    list of ndarray of shape (height, width, 3), dtype uint8
        One array per path, in order. Arrays come from the cache and must be
        treated as read-only.

    Raises
    ------
    ImageError
        For the first file that is missing or cannot be decoded, once every
        other file was tried; with several paths, the message also says how
        many failed in total.
    """
    target = _as_size(size)
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    out: list[np.ndarray | None] = [None] * len(paths)
    missing: dict[tuple, list[int]] = {}
    errors: list[ImageError] = []
    for i, p in enumerate(paths):
        try:
            key = _cache_key(p, target)
        except ImageError as exc:
            errors.append(exc)
            continue
        arr = _CACHE.get(key)
        if arr is None:
            missing.setdefault(key, []).append(i)
        else:
            out[i] = arr

    keys = list(missing)
    if keys:
        workers = n_jobs or _default_workers()

        def decode(key):
            try:
                return read_image(key[0], target)
            except ImageError as exc:
                return exc

        done = 0
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for key, result in zip(keys, pool.map(decode, keys), strict=False):
                if isinstance(result, ImageError):
                    errors.append(result)
                    continue
                result.setflags(write=False)
                _CACHE.put(key, result)
                for i in missing[key]:
                    out[i] = result
                done += 1
                if progress and (done % 500 == 0 or done == len(keys)):
                    import sys
                    print(f"\rdecoded {done}/{len(keys)} images", end="", file=sys.stderr,
                          flush=True)
        if progress:
            import sys
            print(file=sys.stderr)
    if errors:
        _raise_first(errors, len(paths))
    return out  # type: ignore[return-value]


def _raise_first(errors: list[ImageError], total: int) -> None:
    first = errors[0]
    if total == 1:
        raise first
    raise ImageError(f"{len(errors)} of {total} images failed; the first: {first}",
                     path=first.path)

