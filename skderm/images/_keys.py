"""Content keys: the blake2b digest of an image file's bytes, remembered by stat signature.

Both cache levels are keyed by content, so an edited or replaced file is a new
key and its old pixels can never be served. A digest is remembered by path,
size, modification time, change time and inode, and trusted only once the
file has been left alone for :data:`SETTLE_NS`, so a warm look-up costs one
``stat``.
"""

from __future__ import annotations

import hashlib
import os
import time

from skderm._utils.lru import LRUCache
from skderm.exceptions import ImageError

__all__ = ["SETTLE_NS", "file_digest", "forget_digests", "hash_bytes", "read_source",
           "remembered_digest"]

# A rewrite within one tick of the file-system clock can leave size, mtime and
# ctime unchanged, so a remembered digest is trusted only for files older than
# this; younger files are hashed again at every look-up (about 20 us for a
# HAM10000 JPEG).
SETTLE_NS = 2_000_000_000

_MEMO = LRUCache(1 << 18, sizeof=lambda digest: 1)


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


def remembered_digest(path: str) -> str | None:
    """The digest remembered for ``path`` as it is now (one ``stat``), else ``None``."""
    return _MEMO.get(_signature(path, _stat(path)))


def read_source(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of an image file and its stat, taken before reading."""
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


def hash_bytes(path: str, data: bytes, st: os.stat_result) -> str:
    """Digest of ``data`` read from ``path``; remembered if the file has settled."""
    digest = hashlib.blake2b(data, digest_size=20).hexdigest()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > SETTLE_NS:
        _MEMO.put(_signature(path, st), digest)
    return digest


def forget_digests() -> None:
    _MEMO.clear()


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
    digest = remembered_digest(path)
    if digest is None:
        digest = hash_bytes(path, *read_source(path))
    return digest
