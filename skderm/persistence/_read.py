"""Reading a model file: every check that comes before its contents are trusted.

In order: the file's digest against the caller's (before anything is
unpickled), the zip archive's declared sizes, ``torch.load(weights_only=True)``,
format and version, the size of what was unpickled, the in-file digest.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile

import torch

from skderm._utils.files import file_digest
from skderm.exceptions import ModelFileError
from skderm.persistence._format import (
    FORMAT,
    FORMAT_VERSION,
    FORMATS,
    MAX_ARCHIVE_BYTES,
    MAX_PICKLE_BYTES,
    MAX_PLAIN_VALUES,
    payload_digest,
    refused,
)

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_NOT_READABLE = ("is not a readable skderm model file (truncated, damaged or another kind "
                 "of file)")


def check_sha256(path: str, expected: str) -> None:
    """Refuse ``path`` unless the SHA-256 of its bytes is ``expected``."""
    if not (isinstance(expected, str) and _HEX64.match(expected.strip())):
        raise ValueError(f"sha256={expected!r} is not a SHA-256 digest (64 hexadecimal "
                         "characters); pass the digest published with the model file")
    actual = file_digest(path)
    if actual != expected.strip().lower():
        raise ModelFileError(
            f"{path!r} is not the file whose digest you passed: its SHA-256 is {actual}, "
            f"expected {expected.strip().lower()}. The file was changed, damaged or replaced "
            "since the digest was published; do not use it: get the file again from its "
            "source and compare with the digest its author published")


def _check_archive(fh, path: str) -> None:
    """Bound what the zip archive can inflate to, from its directory alone."""
    size = os.fstat(fh.fileno()).st_size
    try:
        infos = zipfile.ZipFile(fh).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFileError(f"{path!r} {_NOT_READABLE}: {exc}; pass the file "
                             "skderm.save_model (or `skderm train --out`) wrote") from exc
    total = 0
    for info in infos:
        # torch.save stores members uncompressed: a member is as large as its bytes
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > size or \
                (info.filename.endswith("data.pkl") and info.file_size > MAX_PICKLE_BYTES):
            raise refused(repr(path), f"its archive member {info.filename!r} declares "
                          f"{info.file_size} bytes (compression {info.compress_type}); "
                          "torch.save stores members uncompressed")
        total += info.file_size
    if total > MAX_ARCHIVE_BYTES:
        raise refused(repr(path), f"its archive declares {total} bytes in all, more than the "
                      f"{MAX_ARCHIVE_BYTES} a model file may hold")


def _check_contents(payload, path: str) -> None:
    """Count the unpickled values and refuse tensors larger than their storage."""
    stack, seen = [payload], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_PLAIN_VALUES:
            raise refused(repr(path), f"it holds more than {MAX_PLAIN_VALUES} values")
        if isinstance(node, dict):
            if not all(isinstance(k, str) for k in node):
                raise refused(repr(path), "it has a dict with keys that are not text")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, torch.Tensor):
            # a view with stride 0 claims more elements than its storage holds
            if node.numel() * node.element_size() > node.untyped_storage().nbytes():
                raise refused(repr(path), f"a tensor of shape {tuple(node.shape)} claims more "
                              "elements than its storage holds")
        elif not (node is None or isinstance(node, (str, int, float, bool))):
            raise refused(repr(path), f"it holds a {type(node).__name__}")


def read_payload(path: str, sha256: str | None) -> dict:
    """The checked payload of the model file at ``path``."""
    if not os.path.isfile(path):
        raise ModelFileError(f"no model file at {path!r}: pass the file skderm.save_model "
                             "(or `skderm train --out`) wrote")
    if sha256 is not None:
        check_sha256(path, sha256)
    with open(path, "rb") as fh:
        if not zipfile.is_zipfile(fh):
            # torch.save writes a zip archive; a CSV, an image or a cut-off file is not one
            raise ModelFileError(f"{path!r} {_NOT_READABLE}; pass the file skderm.save_model "
                                 "(or `skderm train --out`) wrote")
        _check_archive(fh, path)
        fh.seek(0)
        try:
            payload = torch.load(fh, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ModelFileError(
                f"{path!r} is not a skderm model file: it holds Python objects (not only "
                "tensors and plain values), which skderm refuses to unpickle because "
                "unpickling can run code; it was not written by skderm.save_model") from exc
        except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ModelFileError(f"{path!r} {_NOT_READABLE}: "
                                 f"{str(exc).splitlines()[0]}") from exc
    if not isinstance(payload, dict) or payload.get("format") not in FORMATS:
        raise ModelFileError(f"{path!r} is not a skderm model file (it has no 'format': "
                             f"{FORMAT!r} entry); write models with skderm.save_model or "
                             "`skderm train --out`")
    version = payload.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        import skderm

        raise ModelFileError(
            f"{path!r} is skderm model format version {version!r} (written by skderm "
            f"{payload.get('skderm_version', '?')!s:.40}), but skderm {skderm.__version__} "
            f"reads format version {FORMAT_VERSION} only: re-train and save the model with "
            "this skderm, or load it with the skderm that wrote it")
    _check_contents(payload, path)
    recorded = payload.get("sha256")
    try:
        actual = payload_digest(payload)
    except (TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise refused(repr(path), f"its contents cannot be digested ({exc})") from exc
    if actual != recorded:
        raise ModelFileError(
            f"{path!r} failed its integrity check: its contents digest to {actual[:12]}... "
            f"but the file records {str(recorded)[:12]}...; the file was damaged (or edited) "
            "after it was saved: use the original file or re-train")
    return payload
