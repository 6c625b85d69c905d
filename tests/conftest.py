"""Shared fixtures: the real HAM10000 copy (when present) and small synthetic sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One torch thread per test process: the tests run tiny models, where a second
# thread costs more in synchronisation than it gains (measured 50x slower for
# small-tensor work on a shared 2-core machine). Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# tests never write into the user's on-disk image cache (tests of it set their own)
os.environ.pop("SKDERM_CACHE_DIR", None)

from skderm.datasets import make_lesions  # noqa: E402

_DEFAULT_HAM10000 = Path(__file__).resolve().parents[1].parent / "shared" / "ham10000"


@pytest.fixture(scope="session")
def ham10000_root() -> Path:
    """Folder of the real HAM10000 copy: $SKDERM_HAM10000, else <repo>/../shared/ham10000."""
    root = Path(os.environ.get("SKDERM_HAM10000") or _DEFAULT_HAM10000)
    if not (root / "HAM10000_metadata.csv").is_file():
        pytest.skip(
            "real HAM10000 copy not found: set SKDERM_HAM10000 or place it at ../shared/ham10000"
        )
    return root


@pytest.fixture(scope="session")
def lesions(tmp_path_factory):
    """Synthetic HAM10000-like set: 210 images of 7 classes at 150x200 (read-only: shared)."""
    return make_lesions(210, random_state=0, directory=tmp_path_factory.mktemp("lesions"))


@pytest.fixture(scope="session")
def tiny_lesions(tmp_path_factory):
    """Tiny synthetic set: 60 images of 7 classes at 48x64, at least 5 lesions per class."""
    return make_lesions(
        60, image_size=(48, 64), random_state=0, directory=tmp_path_factory.mktemp("tiny_lesions")
    )


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Also when torch was imported before OMP_NUM_THREADS could take effect."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
