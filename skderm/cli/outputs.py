"""Where each command writes, checked before any work: never over an input, never in the data."""

from __future__ import annotations

import os
from collections.abc import Iterable

from skderm._utils.paths import check_output_path

__all__ = ["check_outputs", "image_folders"]


def image_folders(paths: Iterable[str]) -> list[str]:
    """The folders the images of a loaded data set lie in."""
    return sorted({os.path.dirname(os.path.abspath(p)) for p in paths})


def check_outputs(outputs: Iterable[tuple[str | None, str, str]], *,
                  inputs: Iterable[str] = (), data_folders: Iterable[str] = ()) -> None:
    """Check each ``(path, kind, option)`` output; a None path is not written.

    Raises OutputPathError naming the option and the path, so the user knows
    which argument to change.
    """
    inputs, data_folders = list(inputs), list(data_folders)
    for path, kind, option in outputs:
        if path is not None:
            check_output_path(path, kind=kind, inputs=inputs, data_folders=data_folders,
                              what=option)
