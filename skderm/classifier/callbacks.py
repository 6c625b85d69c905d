"""The skorch callbacks LesionClassifier is built from, and the pieces they need.

Head-first training is skorch's ``Freezer``/``Unfreezer``, the cosine schedule
is skorch's ``LRScheduler`` over torch's ``LambdaLR``, early stopping is
skorch's ``EarlyStopping`` (made resumable in :mod:`.checkpoint`). The
``at`` conditions are functions of the epoch alone, so a resumed fit freezes
exactly what the uninterrupted one froze.
"""

from __future__ import annotations

import functools
import math
from numbers import Integral

from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef
from skorch.callbacks import (
    Callback,
    EpochScoring,
    EpochTimer,
    Freezer,
    LRScheduler,
    PassthroughScoring,
    PrintLog,
    ProgressBar,
    Unfreezer,
)
from torch.optim.lr_scheduler import LambdaLR

from skderm.classifier.checkpoint import EpochCheckpoint, ResumableEarlyStopping

__all__ = ["default_callbacks"]

MONITORS = {"bacc": "valid_bacc", "mcc": "valid_mcc", "loss": "valid_loss"}


def _bacc(net, X, y):
    return balanced_accuracy_score(y, net.predict_proba(X).argmax(1))


def _mcc(net, X, y):
    return matthews_corrcoef(y, net.predict_proba(X).argmax(1))


def _epoch_in(net, first: int = 1, last: float = math.inf) -> bool:
    return first <= len(net.history) <= last


def _cosine(epoch: int, epochs: int) -> float:
    """Half a cosine from 1 in the first epoch towards 0 after ``epochs``."""
    return 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))


class FrozenNormsEval(Callback):
    """Re-apply LesionNet's rule (frozen BatchNorm layers stay in eval mode) after
    the freezers changed which parameters train."""

    def on_epoch_begin(self, net, **kwargs):
        net.module_.train(net.module_.training)


def _freezing(freeze) -> list:
    if freeze == "backbone":
        return [("freeze_backbone", Freezer("backbone.*", at=_epoch_in))]
    if isinstance(freeze, Integral) and freeze > 0:
        return [("freeze_backbone", Freezer("backbone.*", at=functools.partial(
                    _epoch_in, last=int(freeze)))),
                ("unfreeze_backbone", Unfreezer("backbone.*", at=functools.partial(
                    _epoch_in, first=int(freeze) + 1)))]
    return []


def default_callbacks(net) -> list:
    """The callbacks a LesionClassifier's parameters ask for, in skorch's (name, cb) form."""
    cbs = [("epoch_timer", EpochTimer()),
           ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
           ("valid_loss", PassthroughScoring(name="valid_loss")),
           ("valid_bacc", EpochScoring(_bacc, name="valid_bacc", lower_is_better=False)),
           ("valid_mcc", EpochScoring(_mcc, name="valid_mcc", lower_is_better=False))]
    cbs += _freezing(net.freeze)
    cbs.append(("frozen_norms", FrozenNormsEval()))
    if net.lr_schedule == "cosine":
        cbs.append(("lr_scheduler", LRScheduler(
            LambdaLR, lr_lambda=functools.partial(_cosine, epochs=net.max_epochs),
            event_name="lr")))
    if net.valid_size is not None or net.train_split is not None:
        key = MONITORS.get(net.monitor, "valid_bacc")  # a bad monitor is reported by fit
        cbs.append(("early_stopping", ResumableEarlyStopping(
            monitor=key, lower_is_better=(key == "valid_loss"),
            # absolute threshold: a relative one never "improves" on a negative MCC
            threshold=1e-4, threshold_mode="abs",
            patience=net.patience if net.patience is not None else 10**9,
            load_best=True, sink=print)))
    if net.checkpoint_dir is not None:
        cbs.append(("checkpoint", EpochCheckpoint()))  # after early stopping
    if net.progress_bar is True:
        cbs.append(("progress_bar", ProgressBar()))
    cbs.append(("print_log", PrintLog()))
    return cbs
