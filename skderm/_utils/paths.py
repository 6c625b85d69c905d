"""Output-path checks: skderm never writes over what it reads, nor into a data folder."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from skderm.exceptions import OutputPathError

__all__ = ["check_output_path", "is_within"]


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def is_within(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (symlinks resolved)."""
    p, f = _real(path), _real(folder)
    return p == f or f in p.parents


def check_output_path(path: str | os.PathLike, *, kind: str = "file",
                      inputs: Iterable[str | os.PathLike] = (),
                      data_folders: Iterable[str | os.PathLike] = (),
                      what: str = "output") -> Path:
    """Refuse an output ``path`` that is an input, lies in a data folder, or has the wrong kind.

    ``kind`` is ``"file"`` (a file to create or replace) or ``"dir"`` (a folder
    to create or fill); the folder it goes in must be one this process can
    write to (missing folders are created later). Call it before any work
    starts, so a bad path costs nothing. Returns the path, resolved.
    """
    out = _real(path)
    shown = os.fspath(path)
    for item in inputs:
        item = _real(item)
        if out == item or (kind == "dir" and item.is_relative_to(out)) or \
                (kind == "file" and item.is_dir() and out.is_relative_to(item)):
            raise OutputPathError(f"{what} {shown!r} would overwrite an input of this command "
                                  f"({str(item)!r}); choose another path")
    for folder in data_folders:
        folder = _real(folder)
        if out == folder or folder in out.parents or (kind == "dir" and out in folder.parents):
            raise OutputPathError(f"{what} {shown!r} lies in the data folder {str(folder)!r}, "
                                  "which skderm never writes into; choose a path outside it")
    if kind == "file" and out.is_dir():
        raise OutputPathError(f"{what} {shown!r} is a folder; give a file name, "
                              f"e.g. {os.path.join(shown, 'model.skderm')!r}")
    if kind == "dir" and out.exists() and not out.is_dir():
        raise OutputPathError(f"{what} {shown!r} is a file; give a folder to write into")
    # the folder the output goes in (or its nearest existing ancestor) must take new files
    place = out if kind == "dir" and out.is_dir() else out.parent
    while not place.exists():
        place = place.parent
    if not place.is_dir():
        raise OutputPathError(f"{what} {shown!r} needs the folder {str(place)!r}, which is a "
                              "file; choose a path in a folder")
    if not os.access(place, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {shown!r}: cannot write into {str(place)!r}; choose a "
                              "folder you can write to")
    return out
