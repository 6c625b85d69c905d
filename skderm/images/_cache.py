"""The process-wide decoded-image cache: its two levels, their switches and counters.

Memory: an LRU of decoded arrays keyed by ``(content digest, size)``, bounded
in bytes. Disk (opt-in): :class:`~skderm.images._disk.DiskCache` in the folder
set by :func:`set_cache_dir` or ``SKDERM_CACHE_DIR``. :func:`cache_mode` sets
how :func:`~skderm.images.load_images` uses them inside a ``with`` block.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from skderm._utils.lru import LRUCache
from skderm.images._disk import DiskCache, resolve_cache_dir
from skderm.images._keys import forget_digests

__all__ = ["CacheInfo", "CacheMode", "MEMORY", "cache_info", "cache_mode", "check_mode",
           "clear_cache", "current_disk", "current_mode", "get_cache_dir", "set_cache_dir",
           "set_cache_limit"]

CacheMode = bool | Literal["read"]

_DEFAULT_CACHE_BYTES = 6 * 1024**3


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


MEMORY = LRUCache(_cache_limit_from_env())
_DISK = DiskCache(resolve_cache_dir(os.environ.get("SKDERM_CACHE_DIR")))


def current_disk() -> DiskCache:
    """The disk cache in use now (replaced by :func:`set_cache_dir`)."""
    return _DISK


def cache_info() -> CacheInfo:
    """Hits, misses, entries and bytes of the in-memory cache; disk-cache hits and misses."""
    disk = _DISK
    return CacheInfo(*MEMORY.info(), disk_hits=disk.hits, disk_misses=disk.misses,
                     disk_dir=None if disk.root is None else str(disk.root))


def clear_cache(*, disk: bool = False) -> None:
    """Empty the in-memory cache and reset every counter.

    Parameters
    ----------
    disk : bool, default=False
        Also delete the entries skderm wrote in the disk cache folder. Only
        files skderm can prove it wrote (in folders holding its marker, with
        its entry header) are deleted: anything else in the folder is left alone.
    """
    MEMORY.clear()
    forget_digests()
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
    MEMORY.maxsize = int(maxbytes)


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
        ``%LOCALAPPDATA%\\skderm\\Cache`` on Windows). A folder that is, holds
        or lies inside a folder of the images being loaded is refused when they
        are loaded (:class:`~skderm.exceptions.OutputPathError`): skderm never
        writes where it reads. The environment variable ``SKDERM_CACHE_DIR``,
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


_MODE: contextvars.ContextVar[CacheMode] = contextvars.ContextVar("skderm_cache_mode",
                                                                  default=True)
_MODES = (True, "read", False)


def check_mode(cache) -> CacheMode:
    """``cache`` itself if it is a cache mode, else a ValueError naming the choices."""
    if not any(cache is m or (isinstance(m, str) and cache == m) for m in _MODES):
        raise ValueError(f"cache must be True, 'read' or False, got {cache!r}")
    return cache


def current_mode() -> CacheMode:
    """The mode of the innermost :func:`cache_mode` block, ``True`` outside any."""
    return _MODE.get()


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
    token = _MODE.set(check_mode(mode))
    try:
        yield
    finally:
        _MODE.reset(token)
