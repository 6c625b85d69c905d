"""A thread-safe LRU cache bounded by the total size of its values: the one skderm uses.

It holds the decoded images of :mod:`skderm.images`, the embeddings of
:mod:`skderm.features` and the remembered file digests, each with its own bound.
Like :func:`functools.lru_cache` it counts hits and misses, for ``cache_info()``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

__all__ = ["LRUCache", "LRUInfo", "nbytes"]


class LRUInfo(NamedTuple):
    """Counters of an :class:`LRUCache`."""

    hits: int
    misses: int
    currsize: int
    """Number of entries."""
    size: int
    """Total size of the entries (bytes, unless ``sizeof`` says otherwise)."""
    maxsize: int


def nbytes(value: Any) -> int:
    """Size of a numpy array (or anything with ``nbytes``) in bytes."""
    return int(value.nbytes)


class LRUCache:
    """Mapping that drops its least recently used entries once their total size passes ``maxsize``.

    Parameters
    ----------
    maxsize : int
        Bound on the total ``sizeof`` of the entries; ``0`` stores nothing.
    sizeof : callable, default=nbytes
        Size of one value: bytes of an array by default, ``lambda v: 1`` to
        bound the number of entries.
    """

    def __init__(self, maxsize: int, *, sizeof: Callable[[Any], int] = nbytes):
        self._maxsize = int(maxsize)
        self._sizeof = sizeof
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        with self._lock:
            self._maxsize = int(value)
            self._trim()

    def get(self, key: Hashable) -> Any:
        """The value stored under ``key`` (now the most recently used), else ``None``; counted."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self._misses += 1
                return None
            self._data.move_to_end(key)
            self._hits += 1
            return item[0]

    def count_miss(self) -> None:
        """Count a miss for a look-up skipped because it could not hit."""
        with self._lock:
            self._misses += 1

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value`` under ``key``; a value larger than the whole bound is not stored."""
        size = self._sizeof(value)
        with self._lock:
            if size > self._maxsize:
                return
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._data[key] = (value, size)
            self._size += size
            self._trim()

    def _trim(self) -> None:
        while self._size > self._maxsize and self._data:
            _, (_, size) = self._data.popitem(last=False)
            self._size -= size

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._data.clear()
            self._size = self._hits = self._misses = 0

    def info(self) -> LRUInfo:
        with self._lock:
            return LRUInfo(self._hits, self._misses, len(self._data), self._size,
                           self._maxsize)

    def __len__(self) -> int:
        return len(self._data)
