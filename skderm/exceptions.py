"""Exceptions raised by skderm.

Every error skderm raises on purpose derives from :class:`SkdermError`, and
also from the builtin exception a caller would naturally catch (``ValueError``
for bad data, ``FileNotFoundError`` for absent files), so that both
``except SkdermError`` and ``except ValueError`` work.
"""

from __future__ import annotations

__all__ = [
    "SkdermError",
    "ModelFileError",
    "OutputPathError",
    "TrainingDivergedError",
    "DatasetError",
    "ImageError",
    "WeightsError",
    "DownloadError",
]


class SkdermError(Exception):
    """Base class of every error skderm raises deliberately."""


class DatasetError(SkdermError, ValueError):
    """A dataset folder or metadata table is missing, incomplete or inconsistent."""


class ImageError(SkdermError, ValueError):
    """An image file is missing, unreadable, corrupt or unsupported.

    Attributes
    ----------
    path : str or None
        The file that failed.
    """

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class WeightsError(SkdermError, FileNotFoundError):
    """Pretrained weights are not available on this machine, or failed their checksum."""


class DownloadError(SkdermError, OSError):
    """A download failed, or its checksum did not match."""


class OutputPathError(SkdermError, ValueError):
    """A path given for writing would overwrite an input or land inside a data folder."""


class ModelFileError(SkdermError, ValueError):
    """A model or checkpoint file that is damaged, edited, too old, or asks too much."""


class TrainingDivergedError(SkdermError, FloatingPointError):
    """Training produced a non-finite loss, or a model holds non-finite weights."""
