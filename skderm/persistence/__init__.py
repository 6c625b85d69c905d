"""Save a fitted LesionClassifier to one self-describing file, and load it back.

A model file is written with ``torch.save`` and holds only tensors and plain
values (str, int, float, bool, None, lists and dicts of them), so it is read
with ``torch.load(..., weights_only=True)``: loading never unpickles, and so
never runs, code from the file. Its top-level dict:

``format`` / ``format_version`` / ``skderm_version``
    ``"skderm-model"``, :data:`FORMAT_VERSION` and the skderm that wrote it.
``params``
    The constructor parameters that are plain values and describe the model
    (``backbone``, ``image_size``, ``optimizer__*`` ...); ``dropped_params``
    names the others (a custom optimizer class, callbacks) with their ``repr``.
    Run settings (``callbacks`` and their ``callbacks__*``, ``torch_load_kwargs`` ...)
    are never written.
``classes``, ``preprocessing``, ``image_size``, ``n_metadata``
    The fitted labels, the backbone's normalisation and the image size.
``metadata_encoder``
    What the fitted metadata encoder learned, as plain arrays, or None.
``state_dict`` / ``history``
    The network's weights (CPU) and the per-epoch history.
``sha256``
    A digest of the contents. It detects accidental damage only: whoever edits
    a file can recompute it. To know a file is the one its author published,
    pass the author's :func:`model_digest` to ``load_model(path, sha256=...)``.

A soft-voting :class:`~sklearn.ensemble.VotingClassifier` of LesionClassifiers
is written as ``format`` ``"skderm-ensemble"`` (``names``, ``weights``,
``voting_params``, ``classes`` and one dict per member in ``members``); a
:class:`~skderm.decision.LesionLevelClassifier` around either as
``"skderm-lesion-level"`` (``decision``, ``class_prior``, ``classes`` and the
wrapped model's fields in ``estimator``).
"""

from __future__ import annotations

import os

import torch

from skderm._utils.files import atomic_write, file_digest
from skderm._utils.paths import check_output_path
from skderm.persistence._build import build
from skderm.persistence._format import (
    FORMAT,
    FORMAT_ENSEMBLE,
    FORMAT_LESION_LEVEL,
    FORMAT_VERSION,
    MAX_BATCH_SIZE,
    MAX_IMAGE_SIDE,
    payload_digest,
)
from skderm.persistence._read import read_payload
from skderm.persistence._write import payload

__all__ = ["FORMAT", "FORMAT_ENSEMBLE", "FORMAT_LESION_LEVEL", "FORMAT_VERSION",
           "MAX_BATCH_SIZE", "MAX_IMAGE_SIDE", "load_model", "model_digest", "save_model"]


def save_model(clf, path: str | os.PathLike) -> str:
    """Write a fitted :class:`~skderm.LesionClassifier` to one file.

    Parameters
    ----------
    clf : LesionClassifier, VotingClassifier or LesionLevelClassifier
        A fitted classifier, a fitted soft-voting
        :class:`~sklearn.ensemble.VotingClassifier` of LesionClassifiers
        (:func:`skderm.recipes.make_ensemble`), or a fitted
        :class:`~skderm.decision.LesionLevelClassifier` around either.
    path : str or path-like
        File to write (conventionally ``*.skderm``); replaced atomically, so an
        interrupted save never leaves a half-written model. To let others check
        the file, publish :func:`model_digest` of it beside it.

    Returns
    -------
    path : str
        The file written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``clf`` is not fitted.
    skderm.exceptions.OutputPathError
        When ``path`` is a folder.
    """
    import skderm

    path = os.fspath(path)
    check_output_path(path, kind="file", what="model file")
    contents = {"format_version": FORMAT_VERSION, "skderm_version": skderm.__version__,
                **payload(clf)}
    contents["sha256"] = payload_digest(contents)
    with atomic_write(path) as fh:
        torch.save(contents, fh)
    return path


def model_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a model file's bytes, as 64 hexadecimal characters.

    Publish it with the file (out of band: on the page that links the file,
    not inside it); whoever loads the file passes it to
    ``load_model(path, sha256=...)``. Equal to ``sha256sum path``.
    """
    return file_digest(path)


def load_model(path: str | os.PathLike, *, sha256: str | None = None):
    """Load a model written by :func:`save_model`.

    Nothing in the file is unpickled as code (``torch.load(weights_only=True)``)
    and the network is built with ``weights=None``, then given the saved weights.
    The file may hold only the fields save_model writes, within bounds (image
    sides up to :data:`MAX_IMAGE_SIDE`, ``batch_size`` up to
    :data:`MAX_BATCH_SIZE`, an archive of at most 4 GiB, uncompressed).

    The digest stored in the file catches accidental damage only: whoever edits
    the file can recompute it. To trust a file from someone else, pass the
    digest its author published (:func:`model_digest`) as ``sha256``; it is
    checked against the whole file before anything in it is read.

    Parameters
    ----------
    path : str or path-like
        The model file.
    sha256 : str or None, default=None
        Expected SHA-256 of the file's bytes (64 hexadecimal characters).

    Returns
    -------
    clf : LesionClassifier, VotingClassifier or LesionLevelClassifier
        Fitted, in eval mode, predicting as the saved model did.

    Raises
    ------
    skderm.exceptions.ModelFileError
        When the file is missing, not a skderm model, of another format
        version, damaged, does not match ``sha256``, holds fields save_model
        never writes or values beyond the bounds above.
    ValueError
        When ``sha256`` is not 64 hexadecimal characters.
    """
    path = os.fspath(path)
    return build(read_payload(path, sha256), repr(path))
