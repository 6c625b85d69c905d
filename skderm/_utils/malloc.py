"""Keep glibc's malloc from handing a network's activation buffers back to the kernel.

Every batch of a forward or backward pass allocates and frees the same large
buffers (tens of MB each at 192x256). By default glibc serves every request
above its mmap threshold (adjusted at run time, at most 32 MiB) with a fresh
``mmap``, unmaps it when freed, and trims free memory at the top of its heap
beyond twice that threshold: the next batch then page-faults every page in
again, and on a CPU that kernel time can exceed the arithmetic.
:func:`tune_malloc`, called once when :mod:`skderm` is imported, raises both
thresholds with ``mallopt`` so those buffers are reused from the heap.

What it costs: the heap keeps up to :data:`TRIM_THRESHOLD` of free memory at
its top instead of returning it, so resident memory stays near the process's
peak rather than dropping between batches; a single allocation of
:data:`MMAP_THRESHOLD` or more still gets its own mapping and goes back to the
system when freed.

Nothing is changed where glibc is absent (macOS, Windows, musl), when
``SKDERM_MALLOC_TUNING=0``, or when the user already tunes malloc through the
environment (``glibc.malloc.*`` in ``GLIBC_TUNABLES``, or ``MALLOC_*_``
variables): their choice wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["MMAP_THRESHOLD", "OPT_OUT", "TRIM_THRESHOLD", "MallocTuning", "malloc_tuning",
           "tune_malloc"]

#: Requests of at least this many bytes still get their own mapping.
MMAP_THRESHOLD = 1 << 30
#: Free memory at the heap's top kept for reuse, in bytes.
TRIM_THRESHOLD = 1 << 30
#: The environment variable that turns the tuning off (``0``, ``false``, ``no``, ``off``).
OPT_OUT = "SKDERM_MALLOC_TUNING"

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc's own environment settings of the same knobs (man 3 mallopt)
_MALLOC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                     "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST")


class MallocTuning(NamedTuple):
    """What :func:`tune_malloc` did: the thresholds set (bytes), or why none was."""

    applied: bool
    reason: str
    mmap_threshold: int | None = None
    trim_threshold: int | None = None


_STATE = MallocTuning(False, "tune_malloc has not run")


def _skip_reason(environ: Mapping[str, str]) -> str | None:
    if environ.get(OPT_OUT, "").strip().lower() in ("0", "false", "no", "off"):
        return f"turned off by {OPT_OUT}={environ[OPT_OUT]}"
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES already sets glibc.malloc tunables"
    preset = [name for name in _MALLOC_VARIABLES if name in environ]
    if preset:
        return f"{preset[0]} is set: the user's malloc settings win"
    return None


def _glibc_version() -> str | None:
    # os.confstr answers without loading anything; musl and non-Linux systems lack the name
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    return version if version and version.startswith("glibc") else None


def tune_malloc(environ: Mapping[str, str] | None = None) -> MallocTuning:
    """Raise glibc malloc's mmap and trim thresholds for this process, once.

    Parameters
    ----------
    environ : mapping or None, default=None
        The environment to read the opt-out and the user's own malloc settings
        from; ``None`` reads ``os.environ``.

    Returns
    -------
    MallocTuning
        Also returned later by :func:`malloc_tuning`.
    """
    global _STATE
    if _STATE.applied:
        return _STATE
    reason = _skip_reason(os.environ if environ is None else environ)
    version = _glibc_version()
    if reason is None and version is None:
        reason = "not glibc: its malloc is left as it is"
    if reason is None:
        _STATE = _apply(version)
    else:
        _STATE = MallocTuning(False, reason)
    return _STATE


def _apply(version: str) -> MallocTuning:
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError) as exc:
        return MallocTuning(False, f"{version}: mallopt not found ({exc})")
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # trim first: with it alone in place, the heap already keeps what it grows to
    trim = TRIM_THRESHOLD if mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 else None
    mmap = MMAP_THRESHOLD if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 else None
    if trim is None and mmap is None:
        return MallocTuning(False, f"{version} refused both thresholds")
    return MallocTuning(True, version, mmap_threshold=mmap, trim_threshold=trim)


def malloc_tuning() -> MallocTuning:
    """What :func:`tune_malloc` did in this process (``applied=False`` before it ran)."""
    return _STATE
