"""HAM10000 loading, downloading and a learnable synthetic look-alike: data in, Bunch out.

:func:`load_ham10000` reads a local copy of the HAM10000 dataset (metadata CSV
plus JPEG images in any of the layouts it is distributed in) into a
:class:`sklearn.utils.Bunch`; :func:`fetch_ham10000` downloads it first;
:func:`make_lesions` writes a small synthetic dataset in the same layout, for
tests and examples that must run without the real images.

Every function here returns the same conventions: ``data`` holds
``["path", "lesion_id", "age", "sex", "localization"]``, ``target`` the ``dx``
codes and ``groups`` the ``lesion_id`` that every split must respect.

The package reads like the data flow: ``_ham10000`` (the CSV and its images),
``_remote`` and ``_download`` (the published files), ``_fetch`` (download,
unpack, load), ``_synthetic`` (:func:`make_lesions`).
"""

from __future__ import annotations

from skderm.datasets._fetch import fetch_ham10000, get_data_home, ground_truth_to_ham
from skderm.datasets._ham10000 import (
    DX_CLASSES,
    DX_NAMES,
    FEATURE_NAMES,
    load_ham10000,
    parse_age,
)
from skderm.datasets._synthetic import make_lesions

__all__ = [
    "DX_CLASSES",
    "DX_NAMES",
    "FEATURE_NAMES",
    "load_ham10000",
    "fetch_ham10000",
    "make_lesions",
    "get_data_home",
    "ground_truth_to_ham",
    "parse_age",
]
