"""Atomic writes and file hashing: the one place skderm writes or hashes a file.

Every file skderm writes goes through :func:`atomic_write`: the bytes land in a
temporary sibling ``.<name>.skderm-tmp-<host>-<pid>-<random>``, are flushed to
disk, and the temporary is renamed over the target only once complete, so
neither a killed process nor a crash of the machine leaves a half-written file
under the real name. Temporaries left by killed processes of this host are
removed by the next write into the same folder (:func:`remove_stale_temporaries`);
a folder shared between machines keeps other hosts' temporaries, whose
processes this one cannot see.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "file_digest", "remove_stale_temporaries"]

_TMP_MARK = ".skderm-tmp-"
_TMP_NAME = re.compile(r"^\..+" + re.escape(_TMP_MARK) + r"([A-Za-z0-9.-]+)-(\d+)-[0-9a-f]+$")
# the host part of a temporary's name: a pid means something only on its own host
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "host"
_CHUNK = 1 << 20


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# read once, at import: os.umask can only be read by setting it, which races between threads
_UMASK = _read_umask()
# folders already swept for stale temporaries by this process
_SWEPT: set[str] = set()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[str]:
    """Delete the temporaries of :func:`atomic_write` whose process is gone; return them."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TMP_NAME.match(entry.name)
            if match and match.group(1) == _HOST and entry.is_file(follow_symlinks=False) \
                    and not _pid_alive(int(match.group(2))):
                with contextlib.suppress(OSError):
                    os.remove(entry.path)
                    removed.append(entry.path)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *,
                 durable: bool = True) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception the temporary is removed and ``path`` is untouched. The
    file gets the permissions any new file gets (0o666 less the umask). With
    ``durable`` its bytes reach the disk (``fsync``) before the rename, so a
    crash of the machine leaves the old file or the new one; a cache whose
    entries carry their own checksum may skip that cost.
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    if str(folder) not in _SWEPT:  # once per folder and process: a scan per write is slow
        remove_stale_temporaries(folder)
        _SWEPT.add(str(folder))
    # host and pid say whose it is; the random part keeps two writers of one path apart
    tmp = folder / f".{path.name}{_TMP_MARK}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
