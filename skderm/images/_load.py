"""load_images: many files decoded and resized through both cache levels, on threads."""

from __future__ import annotations

import io
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from skderm.exceptions import ImageError
from skderm.images._cache import MEMORY, CacheMode, check_mode, current_disk, current_mode
from skderm.images._decode import Size, as_size, decode
from skderm.images._disk import DiskCache
from skderm.images._keys import hash_bytes, read_source, remembered_digest

__all__ = ["load_images"]


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
        return None, decode(path, path, target), False
    if digest is not None and disk.enabled:
        arr = disk.get(digest, target)
        if arr is not None:
            return digest, arr, False
    data, st = read_source(path)
    fresh = hash_bytes(path, data, st)
    if digest is None:
        # same bytes under another path, or a touched but unchanged file
        arr = MEMORY.get((fresh, target)) if mode else None
        if arr is not None:
            return fresh, arr, True
        arr = disk.get(fresh, target) if disk.enabled else None
        if arr is not None:
            return fresh, arr, False
    arr = decode(io.BytesIO(data), path, target)
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
    OutputPathError
        The disk cache folder is, holds or lies inside a folder of ``paths``;
        nothing is read or written then.
    """
    target = as_size(size)
    mode = current_mode() if cache is None else check_mode(cache)
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    disk = current_disk()
    if mode is not False and disk.enabled:
        disk.check_apart_from({os.path.dirname(p) for p in paths})
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
                digest = remembered_digest(p)
            except ImageError as exc:
                errors.append(exc)
                continue
            arr = None if digest is None else MEMORY.get((digest, target))
            if arr is not None:
                out[i] = arr
                continue
        todo[p] = (digest, [i])
    if todo:
        _fill(out, todo, target, mode, disk, errors, n_jobs=n_jobs, progress=progress)
    if errors:
        _raise_first(errors, len(paths))
    return out  # type: ignore[return-value]


def _fill(out, todo, target, mode, disk, errors, *, n_jobs, progress) -> None:
    """Fetch every file of ``todo`` on threads; store what was not in memory."""
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
            if mode is False:
                MEMORY.count_miss()  # no look-up, but not served from memory either
            elif not from_memory and mode is True:
                MEMORY.put((digest, target), arr)
            for i in rows:
                out[i] = arr
            done += 1
            if progress and (done % 500 == 0 or done == len(items)):
                print(f"\rdecoded {done}/{len(items)} images", end="", file=sys.stderr,
                      flush=True)
    if progress:
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
