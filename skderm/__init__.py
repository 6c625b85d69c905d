"""skderm: scikit-learn compatible classifiers for dermatoscopic lesion images.

Importing :mod:`skderm` is cheap: torch, skorch and torchvision are imported
only when a name that needs them is first used, and no weights are ever loaded
at import time. It does one thing to the process: where glibc is the C
library, it raises malloc's mmap and trim thresholds so that a network's
per-batch buffers are reused instead of page-faulted in again every batch
(``skderm._utils.malloc``; ``SKDERM_MALLOC_TUNING=0`` turns it off).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from skderm._utils.malloc import tune_malloc as _tune_malloc

__version__ = "0.1.0"

# before torch allocates its first batch: mallopt changes how later frees behave
_tune_malloc()

# public name -> module that defines it
_LAZY = {
    "load_ham10000": "skderm.datasets",
    "fetch_ham10000": "skderm.datasets",
    "make_lesions": "skderm.datasets",
    "DX_CLASSES": "skderm.datasets",
    "lesion_train_test_split": "skderm.model_selection",
    "LesionClassifier": "skderm.classifier",
    "BackboneFeatures": "skderm.features",
    "LesionLevelClassifier": "skderm.decision",
    "LesionVotingClassifier": "skderm.ensemble",
    "list_backbones": "skderm.backbones",
    "OverRateSampler": "skderm.sampling",
    "LesionDeduplicator": "skderm.sampling",
    "Augmentation": "skderm.transforms",
    "classification_report_frame": "skderm.metrics",
    "save_model": "skderm.persistence",
    "load_model": "skderm.persistence",
    "SkdermError": "skderm.exceptions",
    "DatasetError": "skderm.exceptions",
    "ImageError": "skderm.exceptions",
    "WeightsError": "skderm.exceptions",
    "DownloadError": "skderm.exceptions",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'skderm' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for static analysers only
    from skderm.backbones import list_backbones
    from skderm.classifier import LesionClassifier
    from skderm.datasets import DX_CLASSES, fetch_ham10000, load_ham10000, make_lesions
    from skderm.decision import LesionLevelClassifier
    from skderm.ensemble import LesionVotingClassifier
    from skderm.exceptions import DatasetError, DownloadError, ImageError, SkdermError, WeightsError
    from skderm.features import BackboneFeatures
    from skderm.metrics import classification_report_frame
    from skderm.model_selection import lesion_train_test_split
    from skderm.persistence import load_model, save_model
    from skderm.sampling import LesionDeduplicator, OverRateSampler
    from skderm.transforms import Augmentation
