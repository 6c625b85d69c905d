"""Decoding, resizing, the decoded-image cache and streaming in chunks.

This is the one place in skderm that opens image files. Every estimator gets
its pixels from :func:`load_images`, which

* decodes JPEG/PNG/anything Pillow reads, in whatever mode real folders hold
  (RGB, RGBA, grayscale, CMYK, palette, 16-bit), applies the EXIF orientation
  and returns ``uint8`` arrays of shape ``(height, width, 3)``;
* resizes to the requested size while decoding (JPEG draft mode lets libjpeg
  decode at 1/2, 1/4 or 1/8 scale when the target is that much smaller);
* keeps what it decoded in a process-wide, in-memory LRU cache, so the second
  epoch, the next GridSearchCV candidate and the next ``predict`` decode
  nothing again;
* optionally keeps it on disk too, in a cache folder (:func:`set_cache_dir`,
  ``SKDERM_CACHE_DIR``), so the next process decodes nothing either.

Both levels are keyed by the *content* of the source file (a blake2b digest of
its bytes) and the target size: an edited or replaced file is a new key, and
its old pixels can never be served. The digest of a file is remembered by
path, size, modification time, change time and inode, and trusted only once
the file has been left alone for two seconds, so a warm cache costs one
``stat`` per image. Nothing is ever written into the user's data folder.

Single-use passes over many images (``predict`` on 10,000 files) should not
fill the in-memory cache: :func:`iter_chunks` cuts ``X`` into chunks of
:data:`STREAM_CHUNK_SIZE` rows and :func:`cache_mode` (``"read"``) lets them
use what is cached without adding to it, so memory is bounded by the chunk.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skderm._cache import DigestMemo, DiskCache, MemoryCache, resolve_cache_dir
from skderm.exceptions import ImageError

__all__ = [
    "read_image",
    "load_images",
    "resize_array",
    "file_digest",
    "cache_info",
    "clear_cache",
    "set_cache_limit",
    "set_cache_dir",
    "get_cache_dir",
    "cache_mode",
    "iter_chunks",
    "stream_cache_mode",
    "STREAM_CHUNK_SIZE",
    "CacheInfo",
]

# Size is always (height, width), like numpy arrays and torchvision.
Size = tuple[int, int]
CacheMode = bool | Literal["read"]

_DEFAULT_CACHE_BYTES = 6 * 1024**3

STREAM_CHUNK_SIZE = 1024
"""Rows per chunk when a long pass streams (:func:`iter_chunks`,
``BackboneFeatures.transform``): 1,024 images at 224x224 are 154 MB of
``uint8``, at 112x150 52 MB. Set it to trade memory for fewer chunks."""


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
    if "\x00" in str(path):
        raise ImageError(f"image path {path!r} contains a NUL byte: no file can have that "
                         "name; check the path column", path=path)
    return _decode(path, path, None if size is None else _as_size(size))


def _decode(source, path: str, target: Size | None) -> np.ndarray:
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



# ---------------------------------------------------------------------------
# content keys
# ---------------------------------------------------------------------------

# A rewrite within one tick of the file-system clock can leave size, mtime and
# ctime unchanged, so a remembered digest is trusted only for files older than
# this; younger files are hashed again at every look-up (about 20 us for a
# HAM10000 JPEG).
_SETTLE_NS = 2_000_000_000
_MEMO_ENTRIES = 1 << 18


_MEMO = DigestMemo(_MEMO_ENTRIES, _SETTLE_NS)


def _signature(path: str, st: os.stat_result) -> tuple:
    # ctime cannot be set by users (os.utime, cp -p, rsync -t set mtime only),
    # and a replaced file has a new inode: both catch what mtime alone misses
    return (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path!r}", path=path) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ImageError(f"cannot read {path!r}: {exc}", path=path) from None


def _read_source(path: str) -> tuple[bytes, os.stat_result]:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())  # before reading: a later edit gets a new signature
            return f.read(), st
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path!r}", path=path) from None
    except IsADirectoryError:
        raise ImageError(f"expected an image file but found a directory: {path!r}",
                         path=path) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ImageError(f"cannot read {path!r}: {exc}", path=path) from None


def _hash(path: str, data: bytes, st: os.stat_result) -> str:
    digest = hashlib.blake2b(data, digest_size=20).hexdigest()
    _MEMO.remember(_signature(path, st), st, digest)
    return digest


def file_digest(path: str | os.PathLike) -> str:
    """Content key of an image file: the blake2b digest (hex) of its bytes.

    Remembered per path, size, modification time, change time and inode once
    the file has been untouched for two seconds, so asking again costs a
    ``stat``; any edit, replacement or younger file is hashed afresh.

    Parameters
    ----------
    path : str or path-like
        The image file.

    Returns
    -------
    str
        40 hexadecimal characters; equal for files with equal bytes.

    Raises
    ------
    ImageError
        The file is missing or cannot be read.
    """
    path = os.path.abspath(os.fspath(path))
    digest = _MEMO.get(_signature(path, _stat(path)))
    if digest is None:
        data, st = _read_source(path)
        digest = _hash(path, data, st)
    return digest


# ---------------------------------------------------------------------------
# the in-memory level
# ---------------------------------------------------------------------------


@dataclass
class CacheInfo:
    """Counters of the decoded-image cache (like ``functools.lru_cache``)."""

    hits: int
    """Images served from memory."""
    misses: int
    """Images not in memory: decoded, or read from the disk cache (``disk_hits``)."""
    currsize: int
    """Number of images in memory."""
    nbytes: int
    """Bytes of the images in memory."""
    maxbytes: int
    """Bound of the in-memory cache."""
    disk_hits: int = 0
    """Images read from the disk cache instead of decoded."""
    disk_misses: int = 0
    """Images looked up in the disk cache and not found (then decoded and written)."""
    disk_dir: str | None = None
    """Folder of the disk cache, ``None`` when it is off."""


def _cache_limit_from_env() -> int:
    raw = os.environ.get("SKDERM_CACHE_BYTES")
    if raw is None:
        return _DEFAULT_CACHE_BYTES
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"SKDERM_CACHE_BYTES must be a number of bytes, got {raw!r}") from None


_CACHE = MemoryCache(_cache_limit_from_env())
_DISK = DiskCache(resolve_cache_dir(os.environ.get("SKDERM_CACHE_DIR")))


def cache_info() -> CacheInfo:
    """Hits, misses, entries and bytes of the in-memory cache; disk-cache hits and misses."""
    disk = _DISK
    return CacheInfo(*_CACHE.counts(), disk_hits=disk.hits, disk_misses=disk.misses,
                     disk_dir=None if disk.root is None else str(disk.root))


def clear_cache(*, disk: bool = False) -> None:
    """Empty the in-memory cache and reset every counter.

    Parameters
    ----------
    disk : bool, default=False
        Also delete skderm's entries in the disk cache folder (only those:
        anything else in the folder is left alone).
    """
    _CACHE.clear()
    _MEMO.clear()
    _DISK.reset_counts()
    if disk:
        _DISK.clear()


def set_cache_limit(maxbytes: int) -> None:
    """Bound the in-memory cache to ``maxbytes`` (``0`` disables it).

    The default is 6 GiB, or the environment variable ``SKDERM_CACHE_BYTES``.
    All 10,015 HAM10000 images at 224x224 take 1.5 GB.
    """
    if maxbytes < 0:
        raise ValueError(f"maxbytes must be >= 0, got {maxbytes}")
    _CACHE.maxbytes = int(maxbytes)
    _CACHE.trim()


def set_cache_dir(path: str | os.PathLike | None) -> Path | None:
    """Turn the disk cache on in ``path``, or off with ``None``.

    Decoded, resized images are then also written there (one file per image
    and size, about ``height * width * 3`` bytes) and read back by later
    processes instead of decoding. Entries are named by the content of the
    source file, so an edited image is decoded afresh; they are written
    atomically, a corrupt entry is a miss that gets rewritten, and a folder
    that cannot be written is skipped with one warning. The folder is not
    bounded in size: delete it, or ``clear_cache(disk=True)``, to reclaim space.

    Parameters
    ----------
    path : str, path-like, "default" or None
        ``"default"`` is the platform's cache folder (``$XDG_CACHE_HOME/skderm``
        or ``~/.cache/skderm`` on Linux, ``~/Library/Caches/skderm`` on macOS,
        ``%LOCALAPPDATA%\\skderm\\Cache`` on Windows). Never choose a folder
        inside your data. The environment variable ``SKDERM_CACHE_DIR``,
        read when skderm is imported, sets the same.

    Returns
    -------
    Path or None
        The folder now in use (created on the first write).
    """
    global _DISK
    _DISK = DiskCache(resolve_cache_dir(path))
    return _DISK.root


def get_cache_dir() -> Path | None:
    """The disk cache's folder, or ``None`` when it is off."""
    return _DISK.root


# ---------------------------------------------------------------------------
# cache modes and streaming
# ---------------------------------------------------------------------------

_MODE: contextvars.ContextVar[CacheMode] = contextvars.ContextVar("skderm_cache_mode",
                                                                  default=True)
_MODES = (True, "read", False)


def _check_mode(cache) -> CacheMode:
    if not any(cache is m or (isinstance(m, str) and cache == m) for m in _MODES):
        raise ValueError(f"cache must be True, 'read' or False, got {cache!r}")
    return cache


@contextlib.contextmanager
def cache_mode(mode: CacheMode) -> Iterator[None]:
    """Set how :func:`load_images` calls inside the ``with`` block use the memory cache.

    Parameters
    ----------
    mode : {True, "read", False}
        ``True``: read and fill it (the default outside any block);
        ``"read"``: serve images it holds, add none (the disk cache, when on,
        is still read and written), for single-use passes that must not grow
        memory; ``False``: bypass both levels and decode every file.

    Examples
    --------
    >>> from skderm import images
    >>> with images.cache_mode("read"):
    ...     pass  # load_images here adds nothing to the in-memory cache
    """
    token = _MODE.set(_check_mode(mode))
    try:
        yield
    finally:
        _MODE.reset(token)


def stream_cache_mode(n_rows: int, *, chunk_size: int | None = None) -> CacheMode:
    """The cache mode of a pass over ``n_rows`` images: ``True`` in one chunk, else ``"read"``.

    A pass that fits in one chunk keeps its images (a cross-validation fold
    predicted by every grid candidate); a longer one streams and adds nothing
    to the in-memory cache, so its memory is bounded by the chunk.
    ``chunk_size=None`` reads :data:`STREAM_CHUNK_SIZE` now.
    """
    return True if n_rows <= _chunk_size(chunk_size) else "read"


def _chunk_size(chunk_size: int | None) -> int:
    # read at call time, so setting skderm.images.STREAM_CHUNK_SIZE takes effect
    size = STREAM_CHUNK_SIZE if chunk_size is None else chunk_size
    if not (isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 1):
        raise ValueError(f"chunk_size must be a positive int, got {size!r}")
    return int(size)


def iter_chunks(X, *, chunk_size: int | None = None) -> Iterator[tuple[slice, object]]:
    """Cut ``X`` into consecutive chunks of rows, for predicting in bounded memory.

    Parameters
    ----------
    X : DataFrame, Series, list, tuple or ndarray
        Anything an estimator accepts as ``X``; pandas objects are cut with
        ``iloc``, the others with slicing.
    chunk_size : int or None, default=None
        Rows per chunk; ``None`` reads :data:`STREAM_CHUNK_SIZE` now.

    Yields
    ------
    rows : slice
        Positions of the chunk in ``X``.
    chunk : same type as X
        ``X`` itself when it fits in one chunk (or has no length, so the
        caller's own validation reports it), else its rows ``rows``.

    Examples
    --------
    >>> [rows for rows, _ in iter_chunks(list(range(5)), chunk_size=2)]
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    chunk_size = _chunk_size(chunk_size)
    try:
        n = len(X)
    except TypeError:
        n = None
    if n is None or n <= chunk_size or isinstance(X, (str, bytes)):
        yield slice(0, n), X
        return
    take = X.iloc.__getitem__ if hasattr(X, "iloc") else X.__getitem__
    for start in range(0, n, chunk_size):
        rows = slice(start, min(start + chunk_size, n))
        yield rows, take(rows)


# ---------------------------------------------------------------------------
# load_images
# ---------------------------------------------------------------------------


def _default_workers() -> int:
    # Pillow releases the GIL while decoding and resizing, so threads scale.
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


def _fetch(path: str, target: Size, digest: str | None, mode: CacheMode, disk: DiskCache):
    """Pixels of one file not found in memory: ``(digest, array, from_memory)``.

    ``digest`` is the remembered content key, or ``None`` when the file is
    new, young or changed: then it is hashed from the very bytes decoded, so a
    key always names the pixels stored under it.
    """
    if mode is False:
        return None, _decode(path, path, target), False
    if digest is not None and disk.enabled:
        arr = disk.get(digest, target)
        if arr is not None:
            return digest, arr, False
    data, st = _read_source(path)
    fresh = _hash(path, data, st)
    if digest is None:
        # same bytes under another path, or a touched but unchanged file
        arr = _CACHE.get((fresh, target)) if mode else None
        if arr is not None:
            return fresh, arr, True
        arr = disk.get(fresh, target) if disk.enabled else None
        if arr is not None:
            return fresh, arr, False
    arr = _decode(io.BytesIO(data), path, target)
    arr.setflags(write=False)
    if disk.enabled:
        disk.put(fresh, target, arr)
    return fresh, arr, False


def load_images(
    paths: Iterable[str | os.PathLike],
    size: int | Sequence[int],
    *,
    n_jobs: int | None = None,
    progress: bool = False,
    cache: CacheMode | None = None,
) -> list[np.ndarray]:
    """Decode and resize many images through the cache.

    Each file is looked up by its content digest and ``size`` in memory, then
    in the disk cache when one is set (:func:`set_cache_dir`), and decoded
    only when neither holds it.

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
    cache : {True, "read", False} or None, default=None
        How to use the in-memory cache: ``True`` reads and fills it,
        ``"read"`` serves what it holds and adds nothing (single-use passes),
        ``False`` bypasses the memory and disk caches. ``None`` follows the
        enclosing :func:`cache_mode` block, ``True`` outside one.

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
    mode = _MODE.get() if cache is None else _check_mode(cache)
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    out: list[np.ndarray | None] = [None] * len(paths)
    todo: dict[str, tuple[str | None, list[int]]] = {}
    errors: list[ImageError] = []
    for i, p in enumerate(paths):
        if p in todo:
            todo[p][1].append(i)
            continue
        digest = None
        if mode is not False:
            try:
                digest = _MEMO.get(_signature(p, _stat(p)))
            except ImageError as exc:
                errors.append(exc)
                continue
            arr = None if digest is None else _CACHE.get((digest, target))
            if arr is not None:
                out[i] = arr
                continue
        todo[p] = (digest, [i])
    if todo:
        _fill(out, todo, target, mode, errors, n_jobs=n_jobs, progress=progress)
    if errors:
        _raise_first(errors, len(paths))
    return out  # type: ignore[return-value]


def _fill(out, todo, target, mode, errors, *, n_jobs, progress) -> None:
    """Fetch every file of ``todo`` on threads; store what was not in memory."""
    disk = _DISK
    workers = n_jobs or _default_workers()

    def fetch(item):
        path, (digest, _) = item
        try:
            return _fetch(path, target, digest, mode, disk)
        except ImageError as exc:
            return exc

    items = list(todo.items())
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for (_, (_, rows)), result in zip(items, pool.map(fetch, items), strict=True):
            if isinstance(result, ImageError):
                errors.append(result)
                continue
            digest, arr, from_memory = result
            if not from_memory:
                _CACHE.miss()
                if mode is True:
                    _CACHE.put((digest, target), arr)
            for i in rows:
                out[i] = arr
            done += 1
            if progress and (done % 500 == 0 or done == len(items)):
                import sys
                print(f"\rdecoded {done}/{len(items)} images", end="", file=sys.stderr,
                      flush=True)
    if progress:
        import sys
        print(file=sys.stderr)
    message = disk.take_warning()
    if message:
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _raise_first(errors: list[ImageError], total: int) -> None:
    first = errors[0]
    if total == 1:
        raise first
    raise ImageError(f"{len(errors)} of {total} images failed; the first: {first}",
                     path=first.path)
