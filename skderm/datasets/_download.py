"""Downloading one published file: resumable, checked against its checksum, then renamed.

A file is streamed to ``<name>.part`` with :mod:`urllib` only, resumed with an
HTTP Range request after an interruption (the ``.part`` file is kept across
runs on purpose, so :func:`~skderm._utils.files.atomic_write`, whose temporary
dies with its process, does not fit), checked against the published checksum
and only then renamed to its real name.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import zipfile
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from skderm._utils.files import file_digest
from skderm.datasets._remote import DOI_URL, URL_ENV, RemoteFile
from skderm.exceptions import DownloadError

__all__ = ["download", "verify_placed"]

logger = logging.getLogger(__name__)

# Seconds a connect or a single read may block; a stalled server then fails
# instead of hanging the caller for ever.
TIMEOUT = 60.0
_CHUNK = 1 << 20
# Dataverse answers urllib's default "Python-urllib/x.y" agent with 403 while
# serving the same URL to curl (noted independently by several public download
# scripts for this record), so a descriptive agent is required, not polite.
_USER_AGENT = f"skderm (+{DOI_URL})"


class _RangeNotSatisfiable(Exception):
    """The server refused the resume offset (HTTP 416)."""


def download(entry: RemoteFile, dest: Path, *, instructions: str, verbose: bool) -> None:
    """Download ``entry`` to ``dest`` through ``dest.part``, verify it, rename it.

    ``instructions`` (how to place the file by hand) end every error message.
    """
    base = os.environ.get(URL_ENV) or None
    url = entry.url(base)
    if url is None:
        raise DownloadError(
            f"no download address is known for {entry.name}.\n" + instructions
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for _attempt in range(2):
        offset = part.stat().st_size if part.exists() else 0
        if entry.size is not None and offset > entry.size:
            part.unlink()  # longer than the real file: cannot be a prefix of it
            offset = 0
        if entry.size is not None and offset == entry.size:
            break  # a previous run got every byte; only verification is left
        if verbose:
            action = f"Resuming at byte {offset}" if offset else "Downloading"
            print(f"{action} {entry.name} from {url}", file=sys.stderr)
        try:
            _transfer(url, part, offset, label=entry.name, instructions=instructions,
                      verbose=verbose)
        except _RangeNotSatisfiable:
            part.unlink(missing_ok=True)  # stale .part; start over once
            continue
        break
    _verify_download(part, entry)
    os.replace(part, dest)


def _transfer(
    url: str, part: Path, offset: int, *, label: str, instructions: str, verbose: bool
) -> None:
    """Stream ``url`` into ``part``, appending from ``offset`` when the server allows."""
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=TIMEOUT)
    except HTTPError as exc:
        if exc.code == 416 and offset:
            raise _RangeNotSatisfiable from None
        raise DownloadError(
            f"downloading {label} failed: HTTP {exc.code} {exc.reason} from {url}. "
            f"Check the address (set {URL_ENV} for a mirror) or place the file by hand.\n"
            + instructions
        ) from None
    except (URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not connect to {url} to download {label}: {reason}.\n" + instructions
        ) from None
    with response:
        start = _resume_start(response, offset, part)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        done = start
        progress = _Progress(label, total, enabled=verbose)
        try:
            with open(part, "ab" if start else "wb") as handle:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    done += len(chunk)
                    progress.update(done)
        except (OSError, HTTPException) as exc:
            progress.close()
            raise DownloadError(
                f"download of {label} from {url} was interrupted after {done} bytes ({exc}); "
                f"the partial file {part} is kept: call fetch_ham10000 again to resume."
            ) from None
        progress.close()
    if total is not None and done < total:
        raise DownloadError(
            f"download of {label} from {url} ended after {done} of {total} bytes; the "
            f"partial file {part} is kept: call fetch_ham10000 again to resume."
        )


def _resume_start(response, offset: int, part: Path) -> int:
    """Byte the response body starts at: ``offset`` if the Range was honoured, else 0."""
    if not offset or response.status != 206:
        return 0  # the server ignored Range and sent the whole file: start over
    content_range = response.headers.get("Content-Range", "")
    try:
        first = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        first = None
    if first != offset:
        raise DownloadError(
            f"the server answered a resume at byte {offset} with Content-Range "
            f"{content_range!r}; delete {part} and call fetch_ham10000 again."
        )
    return offset


def _verify_download(part: Path, entry: RemoteFile) -> None:
    """Check a finished download; remove it and raise if it is not the published file."""
    actual = part.stat().st_size
    if entry.size is not None and actual != entry.size:
        part.unlink()
        raise DownloadError(
            f"size mismatch for {entry.name}: expected {entry.size} bytes, got {actual}; "
            f"the partial file {part} was removed: call fetch_ham10000 again to download it afresh."
        )
    problem = _checksum_problem(part, entry)
    if problem:
        part.unlink()
        raise DownloadError(
            f"checksum mismatch for {entry.name}: {problem}; the partial file {part} was "
            f"removed: call fetch_ham10000 again to download it afresh (a mirror set with "
            f"{URL_ENV} may serve a different file)."
        )


def verify_placed(path: Path, entry: RemoteFile) -> None:
    """Check an archive that was placed by hand (or left by an interrupted run)."""
    problem = _checksum_problem(path, entry)
    if problem:
        raise DownloadError(
            f"{path} does not match the published checksum of {entry.name}: {problem}. "
            f"Delete it and call fetch_ham10000 again to download it, or replace it with "
            f"a good copy from {DOI_URL}."
        )


def _checksum_problem(path: Path, entry: RemoteFile) -> str | None:
    """Describe how ``path`` differs from ``entry``'s checksum; None if it matches."""
    for algorithm in ("sha256", "md5"):
        expected = getattr(entry, algorithm)
        if expected:
            got = file_digest(path, algorithm)
            if got != expected.lower():
                return f"expected {algorithm} {expected}, got {got}"
            return None
    logger.warning(
        "no published checksum is recorded for %s: checked only its size and, for a zip, "
        "its integrity",
        entry.name,
    )
    if path.name.endswith((".zip", ".zip.part")):
        return _zip_problem(path)
    return None


def _zip_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile as exc:
        return f"not a valid zip archive ({exc})"
    return f"corrupt zip member {bad!r}" if bad else None


class _Progress:
    """A plain-text progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, label: str, total: int | None, *, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self._last = 0.0
        self._drawn = False

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done != self.total):
            return
        self._last = now
        mb = f"{done / 1e6:.1f}"
        if self.total:
            fraction = min(done / self.total, 1.0)
            bar = "#" * int(fraction * 30)
            line = f"{self.label} [{bar:<30}] {100 * fraction:5.1f}% {mb}/{self.total / 1e6:.1f} MB"
        else:
            line = f"{self.label} {mb} MB"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
