"""Decoding, resizing, the decoded-image cache and streaming in chunks.

This is the one place in skderm that opens image files. Every estimator gets
its pixels from :func:`load_images`, which

* decodes JPEG/PNG/anything Pillow reads, in whatever mode real folders hold
  (RGB, RGBA, grayscale, CMYK, palette, 16-bit), applies the EXIF orientation
  and returns ``uint8`` arrays of shape ``(height, width, 3)``;
* resizes to the requested size while decoding (JPEG draft mode lets libjpeg
  decode at 1/2, 1/4 or 1/8 scale when the target is that much smaller);
* keeps what it decoded in a process-wide, in-memory LRU cache, so the second
  epoch, the next GridSearchCV candidate and the next ``predict`` decode
  nothing again;
* optionally keeps it on disk too, in a cache folder (:func:`set_cache_dir`,
  ``SKDERM_CACHE_DIR``), so the next process decodes nothing either.

Both levels are keyed by the *content* of the source file (a blake2b digest of
its bytes) and the target size: an edited or replaced file is a new key, and
its old pixels can never be served. The digest of a file is remembered by
path, size, modification time, change time and inode, and trusted only once
the file has been left alone for two seconds, so a warm cache costs one
``stat`` per image. Nothing is ever written into a folder images are read
from: a disk cache folder there is refused.

Single-use passes over many images (``predict`` on 10,000 files) should not
fill the in-memory cache: :func:`iter_chunks` cuts ``X`` into chunks of
:data:`STREAM_CHUNK_SIZE` rows and :func:`cache_mode` (``"read"``) lets them
use what is cached without adding to it, so memory is bounded by the chunk.

The package reads like the data flow: ``_decode`` (pixels from a file),
``_keys`` (content digests), ``_disk`` and ``_cache`` (the two cache levels and
their switches), ``_load`` (:func:`load_images`), ``_stream`` (chunks).
"""

from __future__ import annotations

from skderm.images._cache import (
    CacheInfo,
    cache_info,
    cache_mode,
    clear_cache,
    get_cache_dir,
    set_cache_dir,
    set_cache_limit,
)
from skderm.images._decode import read_image, resize_array
from skderm.images._keys import file_digest
from skderm.images._load import load_images
from skderm.images._stream import iter_chunks, stream_cache_mode

__all__ = [
    "read_image",
    "load_images",
    "resize_array",
    "file_digest",
    "cache_info",
    "clear_cache",
    "set_cache_limit",
    "set_cache_dir",
    "get_cache_dir",
    "cache_mode",
    "iter_chunks",
    "stream_cache_mode",
    "STREAM_CHUNK_SIZE",
    "CacheInfo",
]

STREAM_CHUNK_SIZE = 1024
"""Rows per chunk when a long pass streams (:func:`iter_chunks`,
``BackboneFeatures.transform``): 1,024 images at 224x224 are 154 MB of
``uint8``, at 112x150 52 MB. Set it to trade memory for fewer chunks."""
