"""Streaming: long passes cut into chunks, so memory is bounded by the chunk.

:func:`iter_chunks` cuts ``X`` into chunks of
:data:`skderm.images.STREAM_CHUNK_SIZE` rows and :func:`stream_cache_mode`
says whether a pass may keep its images in memory (one chunk) or must only
read what is cached (``"read"``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from skderm.images._cache import CacheMode

__all__ = ["iter_chunks", "stream_cache_mode"]


def _chunk_size(chunk_size: int | None) -> int:
    if chunk_size is None:
        # the knob users set is the package attribute, so read it there, at call time
        import skderm.images

        chunk_size = skderm.images.STREAM_CHUNK_SIZE
    if not (isinstance(chunk_size, (int, np.integer)) and not isinstance(chunk_size, bool)
            and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    return int(chunk_size)


def stream_cache_mode(n_rows: int, *, chunk_size: int | None = None) -> CacheMode:
    """The cache mode of a pass over ``n_rows`` images: ``True`` in one chunk, else ``"read"``.

    A pass that fits in one chunk keeps its images (a cross-validation fold
    predicted by every grid candidate); a longer one streams and adds nothing
    to the in-memory cache, so its memory is bounded by the chunk.
    ``chunk_size=None`` reads :data:`STREAM_CHUNK_SIZE` now.
    """
    return True if n_rows <= _chunk_size(chunk_size) else "read"


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
