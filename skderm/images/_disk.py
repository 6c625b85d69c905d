"""The disk level of the decoded-image cache: entries, their folder, and clearing them.

An entry is one decoded, resized ``uint8`` image, named by the blake2b digest
of its source file's bytes and the target size, so a changed file can never be
served an old entry: its digest is another name.

Entry format (little-endian)::

    8 bytes   magic b"SKDRMIMG"
    4 bytes   height
    4 bytes   width
    4 bytes   CRC-32 of the pixels
    h*w*3     the pixels, row-major RGB

Entries are written with :func:`skderm._utils.files.atomic_write`, so a killed
process never leaves half an entry under an entry's name, and its temporary is
removed by the next write into that folder. The checksum catches what that
cannot (a truncated file after a power cut, a flipped bit): such an entry is a
miss and is rewritten. A folder that cannot be written (read-only, full, not a
folder) turns writing off for this process with one warning; nothing raises.

Each namespace folder skderm makes holds a marker file with a random token;
:meth:`DiskCache.clear` deletes only marked folders' entries that start with
the magic, so nothing a user keeps in the cache folder is ever deleted.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import struct
import sys
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import PIL

from skderm._utils.files import atomic_write, remove_stale_temporaries
from skderm._utils.paths import is_within
from skderm.exceptions import OutputPathError

__all__ = ["DiskCache", "default_cache_dir", "resolve_cache_dir", "MARKER", "NAMESPACE"]

_MAGIC = b"SKDRMIMG"
_HEADER = struct.Struct("<8sIII")
# Pixels depend on the decoder as well as on the file: a new Pillow (another
# libjpeg, another resampling filter) or a change to skderm's decoding gets a
# fresh namespace instead of reusing pixels it would not produce.
_FORMAT = 1
NAMESPACE = f"images-v{_FORMAT}-pillow{PIL.__version__}"
MARKER = ".skderm-cache"
_MARKER_HEAD = "skderm image cache"
_MARKER_TEXT = re.compile(re.escape(_MARKER_HEAD) + r"\nnamespace (.+)\ntoken [0-9a-f]{32}\n")
_ENTRY_NAME = re.compile(r"[0-9a-f]{40}-\d+x\d+\.rgb")
_FANOUT_NAME = re.compile(r"[0-9a-f]{2}")


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


def _checksum(pixels) -> int:
    # CRC-32 catches truncation and flipped bits, and is 4x cheaper than
    # blake2b on a 50 KB entry; nobody forges entries in their own cache
    return zlib.crc32(pixels)


def _is_marked(folder: Path) -> bool:
    """Whether skderm made ``folder``: its marker names it and holds a token."""
    try:
        text = (folder / MARKER).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return False
    match = _MARKER_TEXT.fullmatch(text)
    return match is not None and match.group(1) == folder.name


def _is_entry(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


class DiskCache:
    """Entries under ``root/NAMESPACE``; ``root=None`` is a disabled cache."""

    def __init__(self, root: Path | None):
        self.root = root
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        # atomic_write reads the umask by setting it, which is not thread-safe:
        # one write at a time (decoding, the costly part, stays parallel)
        self._write_lock = threading.Lock()
        self._writable = True
        self._warning: str | None = None
        self._apart: set[str] = set()
        self._marked = False

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def entry_path(self, digest: str, size: tuple[int, int]) -> Path:
        # two-character fan-out keeps folders small with 100,000s of entries
        return self.root / NAMESPACE / digest[:2] / f"{digest}-{size[0]}x{size[1]}.rgb"

    def check_apart_from(self, image_folders: Iterable[str]) -> None:
        """Refuse a cache folder that is, holds or lies inside a folder images are read from.

        Raises
        ------
        OutputPathError
            Naming both folders and how to choose another cache folder.
        """
        for folder in image_folders:
            if folder in self._apart or "\x00" in folder:
                continue  # no file has a NUL byte in its path: reading it reports that
            if is_within(self.root, folder):
                where = "is" if is_within(folder, self.root) else "lies inside"
            elif is_within(folder, self.root):
                where = "holds"
            else:
                self._apart.add(folder)
                continue
            raise OutputPathError(
                f"the image cache folder {str(self.root)!r} {where} the folder "
                f"{folder!r} that images are read from, and skderm never writes where it "
                "reads: choose a cache folder outside your data with "
                "skderm.images.set_cache_dir(...) or SKDERM_CACHE_DIR (\"default\" is "
                f"{str(default_cache_dir())!r}), or turn the disk cache off with "
                "set_cache_dir(None)")

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
            with self._write_lock:
                self._mark_namespace()
                with atomic_write(path, durable=False) as f:  # entries carry a checksum
                    f.write(header)
                    f.write(memoryview(pixels).cast("B"))
        except OSError as exc:
            with self._lock:
                if self._writable:
                    self._writable = False
                    self._warning = (
                        f"skderm cannot write its image cache in {str(self.root)!r} ({exc}); "
                        "decoding continues without writing to it. Free space, fix the "
                        "permissions, or choose another folder with "
                        "skderm.images.set_cache_dir(...) or SKDERM_CACHE_DIR")

    def _mark_namespace(self) -> None:
        """Make the namespace folder with its marker, the proof that skderm made it."""
        if self._marked:  # checked once per process, and again after clear()
            return
        folder = self.root / NAMESPACE
        if not _is_marked(folder):
            with atomic_write(folder / MARKER, "w") as f:
                f.write(f"{_MARKER_HEAD}\nnamespace {NAMESPACE}\n"
                        f"token {secrets.token_hex(16)}\n")
        self._marked = True

    def reset_counts(self) -> None:
        with self._lock:
            self.hits = self.misses = 0

    def take_warning(self) -> str | None:
        """The write-failure message, once (callers warn from the main thread)."""
        with self._lock:
            message, self._warning = self._warning, None
            return message

    def clear(self) -> None:
        """Delete the entries skderm wrote under ``root``, and nothing else there.

        Only folders with skderm's marker are entered, and in them only files
        named and headed as entries (and the temporaries of dead writers).
        """
        if self.root is None or not self.root.is_dir():
            return
        with self._write_lock:
            self._marked = False
            for child in self.root.iterdir():
                if not child.is_symlink() and child.is_dir() and _is_marked(child):
                    _clear_namespace(child)


def _clear_namespace(folder: Path) -> None:
    for sub in folder.iterdir():
        if sub.is_symlink() or not sub.is_dir() or not _FANOUT_NAME.fullmatch(sub.name):
            continue
        remove_stale_temporaries(sub)
        with os.scandir(sub) as entries:
            for entry in entries:
                if _ENTRY_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False) \
                        and _is_entry(entry.path):
                    with contextlib.suppress(OSError):
                        os.remove(entry.path)
        with contextlib.suppress(OSError):
            sub.rmdir()  # only when empty: anything else in it stays
    remove_stale_temporaries(folder)
    if os.listdir(folder) == [MARKER]:
        with contextlib.suppress(OSError):
            (folder / MARKER).unlink()
            folder.rmdir()


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
