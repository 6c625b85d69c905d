"""Experiment logging: skorch's TensorBoard callback records a LesionClassifier's epochs."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorboard", reason="tensorboard not installed: pip install "
                                          "'skderm[logging]'")

from skorch.callbacks import TensorBoard  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from skderm import LesionClassifier  # noqa: E402


def _tag(key):
    """The key_mapper of docs/user_guide/logging.rst: losses and scores apart."""
    if key.endswith("loss"):
        return "Loss/" + key
    if key.startswith(("train_", "valid_")):
        return "Score/" + key
    return key


def test_tensorboard_records_each_epochs_losses(tiny_lesions, tmp_path):
    X, y = tiny_lesions.data, tiny_lesions.target
    logger = TensorBoard(SummaryWriter(tmp_path), key_mapper=_tag)
    clf = LesionClassifier(backbone="tiny", weights=None, image_size=(48, 64), max_epochs=2,
                           valid_size=0.3, callbacks__early_stopping__patience=None,
                           batch_size=16, verbose=0, random_state=0, callbacks=[logger])
    clf.fit(X, y)

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"Loss/train_loss", "Loss/valid_loss"} <= set(tags), tags
    logged = events.Scalars("Loss/train_loss")
    assert [e.step for e in logged] == [1, 2]
    for event, row in zip(logged, clf.history_, strict=True):
        assert event.value == pytest.approx(row["train_loss"], rel=1e-6)
    # skderm's own per-epoch validation score, apart from the losses
    assert [e.value for e in events.Scalars("Score/valid_bacc")] == pytest.approx(
        clf.history_[:, "valid_bacc"], rel=1e-6)
