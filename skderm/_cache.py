"""Storage of the decoded-image cache: memory LRU, digest memo, disk entries.

:mod:`skderm.images` owns the policy and the public switches (``cache_mode``,
``set_cache_dir``, ``SKDERM_CACHE_DIR``); this module only stores and reads.

On disk, an entry is one decoded, resized ``uint8`` image, named by the
blake2b digest of its source file's bytes and the target size, so a changed
file can never be served an old entry: its digest is another name.

Entry format (little-endian)::

    8 bytes   magic b"SKDRMIMG"
    4 bytes   height
    4 bytes   width
    4 bytes   CRC-32 of the pixels
    h*w*3     the pixels, row-major RGB

Entries are written to a temporary file in the same folder and moved into place
with ``os.replace``, so a killed process leaves at most a stray ``.part`` file,
never half an entry under an entry's name. The checksum catches what that cannot
(a truncated file after a power cut, a flipped bit): such an entry is a miss and
is rewritten. A folder that cannot be written (read-only, full, not a folder)
turns writing off for this process with one warning; nothing raises.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import PIL

__all__ = ["MemoryCache", "DigestMemo", "DiskCache", "default_cache_dir", "resolve_cache_dir"]

_MAGIC = b"SKDRMIMG"
_HEADER = struct.Struct("<8sIII")
# Pixels depend on the decoder as well as on the file: a new Pillow (another
# libjpeg, another resampling filter) or a change to skderm's decoding gets a
# fresh namespace instead of reusing pixels it would not produce.
_FORMAT = 1
NAMESPACE_PREFIX = "images-v"
NAMESPACE = f"{NAMESPACE_PREFIX}{_FORMAT}-pillow{PIL.__version__}"


def default_cache_dir() -> Path:
    """The platform's per-user cache folder for skderm, far from any data folder.

    ``$XDG_CACHE_HOME/skderm`` (else ``~/.cache/skderm``) on Linux,
    ``~/Library/Caches/skderm`` on macOS, ``%LOCALAPPDATA%\\skderm\\Cache`` on
    Windows.
    """
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(Path.home(), "AppData", "Local")
        return Path(base) / "skderm" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "skderm"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # the XDG spec says to ignore a relative value
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "skderm"


def resolve_cache_dir(path: str | os.PathLike | None) -> Path | None:
    """``None`` or ``""``: no disk cache; ``"default"``: the platform folder; else that path."""
    if path is None:
        return None
    raw = os.fspath(path)
    if raw == "":
        return None
    if raw == "default":
        return default_cache_dir()
    # absolute now, so a later chdir does not move the cache
    return Path(os.path.abspath(os.path.expanduser(raw)))


class MemoryCache:
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

    def miss(self) -> None:
        with self._lock:
            self.misses += 1

    def put(self, key, arr: np.ndarray) -> None:
        with self._lock:
            if arr.nbytes > self.maxbytes:
                return
            old = self._data.pop(key, None)
            if old is not None:
                self._nbytes -= old.nbytes
            self._data[key] = arr
            self._nbytes += arr.nbytes
            self._trim()

    def trim(self) -> None:
        with self._lock:
            self._trim()

    def _trim(self) -> None:
        while self._nbytes > self.maxbytes and self._data:
            _, dropped = self._data.popitem(last=False)
            self._nbytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._nbytes = 0
            self.hits = 0
            self.misses = 0

    def counts(self) -> tuple[int, int, int, int, int]:
        with self._lock:
            return self.hits, self.misses, len(self._data), self._nbytes, self.maxbytes


class DigestMemo:
    """Digests of files by stat signature, bounded in entries.

    Only *settled* files are remembered (untouched for ``settle_ns``): a rewrite
    within one tick of the file-system clock can keep size, mtime and ctime, so
    a young file's signature does not prove its content.
    """

    def __init__(self, maxsize: int, settle_ns: int):
        self.maxsize = maxsize
        self.settle_ns = settle_ns
        self._data: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sig: tuple) -> str | None:
        with self._lock:
            return self._data.get(sig)

    def remember(self, sig: tuple, st: os.stat_result, digest: str) -> None:
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) <= self.settle_ns:
            return
        with self._lock:
            self._data[sig] = digest
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def _checksum(pixels) -> int:
    # CRC-32 catches truncation and flipped bits, and is 4x cheaper than
    # blake2b on a 50 KB entry; nobody forges entries in their own cache
    return zlib.crc32(pixels)


class DiskCache:
    """Entries under ``root/NAMESPACE``; ``root=None`` is a disabled cache."""

    def __init__(self, root: Path | None):
        self.root = root
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._writable = True
        self._warning: str | None = None

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def entry_path(self, digest: str, size: tuple[int, int]) -> Path:
        # two-character fan-out keeps folders small with 100,000s of entries
        return self.root / NAMESPACE / digest[:2] / f"{digest}-{size[0]}x{size[1]}.rgb"

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def get(self, digest: str, size: tuple[int, int]) -> np.ndarray | None:
        """The cached pixels, or ``None`` (absent, unreadable, truncated or corrupt)."""
        try:
            data = self.entry_path(digest, size).read_bytes()
        except OSError:
            self._count(False)
            return None
        arr = _parse(data, size)
        self._count(arr is not None)
        return arr

    def put(self, digest: str, size: tuple[int, int], arr: np.ndarray) -> None:
        """Store ``arr`` atomically; on any OS error stop writing and keep a warning."""
        if not self._writable:
            return
        path = self.entry_path(digest, size)
        pixels = np.ascontiguousarray(arr, dtype=np.uint8)
        header = _HEADER.pack(_MAGIC, size[0], size[1], _checksum(pixels))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(header)
                    f.write(memoryview(pixels).cast("B"))
                os.replace(tmp, path)
            except BaseException:
                _remove_quietly(tmp)
                raise
        except OSError as exc:
            with self._lock:
                if self._writable:
                    self._writable = False
                    self._warning = (
                        f"skderm cannot write its image cache in {str(self.root)!r} ({exc}); "
                        "decoding continues without writing to it. Free space, fix the "
                        "permissions, or choose another folder with "
                        "skderm.images.set_cache_dir(...) or SKDERM_CACHE_DIR")

    def reset_counts(self) -> None:
        with self._lock:
            self.hits = self.misses = 0

    def take_warning(self) -> str | None:
        """The write-failure message, once (callers warn from the main thread)."""
        with self._lock:
            message, self._warning = self._warning, None
            return message

    def clear(self) -> None:
        """Delete every skderm image entry under ``root`` (nothing else there)."""
        if self.root is None or not self.root.is_dir():
            return
        for child in self.root.iterdir():
            if child.is_dir() and child.name.startswith(NAMESPACE_PREFIX):
                shutil.rmtree(child, ignore_errors=True)


def _parse(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    h, w = size
    if len(data) != _HEADER.size + h * w * 3:
        return None
    magic, hh, ww, check = _HEADER.unpack_from(data)
    if magic != _MAGIC or (hh, ww) != (h, w):
        return None
    pixels = memoryview(data)[_HEADER.size:]
    if _checksum(pixels) != check:
        return None
    # a view of the immutable bytes: read-only, like the in-memory cache's arrays
    return np.frombuffer(data, dtype=np.uint8, offset=_HEADER.size).reshape(h, w, 3)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
