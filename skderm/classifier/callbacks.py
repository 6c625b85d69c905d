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
import re
import sys
import time
import warnings
from numbers import Integral

import numpy as np
import torch
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
from skderm.exceptions import TrainingDivergedError

__all__ = ["CleanTrainScore", "EpochTable", "FiniteLoss", "FitProgress", "default_callbacks",
           "print_plain_unless_terminal"]

def _bacc(net, X, y):
    with warnings.catch_warnings():
        # a small validation split may lack a rare class: every epoch would say so
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return balanced_accuracy_score(y, net.predict_proba(X).argmax(1))


def _mcc(net, X, y):
    return matthews_corrcoef(y, net.predict_proba(X).argmax(1))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def print_plain_unless_terminal(text: str) -> None:
    """print, without skorch's colour codes when stdout is not a terminal (a log file)."""
    isatty = getattr(sys.stdout, "isatty", None)
    print(text if isatty is not None and isatty() else _ANSI.sub("", text))


class EpochTable(PrintLog):
    """skorch's epoch table, printed only with ``verbose``, without colour codes in a log."""

    def _sink(self, text, verbose):
        if verbose:
            print_plain_unless_terminal(text)


class FiniteLoss(Callback):
    """Stop training at the first non-finite training loss, with what to do about it.

    A diverged network predicts NaN, which ``argmax`` turns silently into the
    first class; so the fit fails instead of returning such a model.
    """

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if training and loss is not None and not torch.isfinite(loss).all():
            groups = ", ".join(f"{g['lr']:g}" for g in net.optimizer_.param_groups)
            raise TrainingDivergedError(
                f"training diverged: the loss became {loss.item()} in epoch {len(net.history)} "
                f"(learning rates {groups}); lower lr (e.g. by 10x), or check the inputs for "
                "non-finite metadata values")


class CleanTrainScore(Callback):
    """Balanced accuracy on up to ``max_images`` training images, unaugmented and unmixed.

    Recorded as ``train_bacc`` each epoch when there is no validation split: a
    signal that rises while the mixed-label training loss stays high. Each image
    is seen once, as in skorch's ``validation_step`` (no flips, which would cost
    four passes). It leaves torch's CPU generator as it found it, so the fit is
    the same without it.
    """

    def __init__(self, max_images: int = 512):
        self.max_images = max_images

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        if dataset_train is None or dataset_train.y is None:
            return
        n = len(dataset_train)
        rows = np.arange(n) if n <= self.max_images else np.sort(
            np.random.default_rng(0).choice(n, self.max_images, replace=False))
        subset = dataset_train.subset(rows)
        # a DataLoader draws its seed from torch's global generator, which also draws the
        # next epoch's augmentation and mixing: watching must not change the training
        with torch.random.fork_rng(devices=[]):
            y_pred = torch.cat([net.validation_step(batch)["y_pred"].cpu()
                                for batch in net.get_iterator(subset, training=False)])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
            net.history.record("train_bacc", balanced_accuracy_score(
                subset.y, y_pred.argmax(1).numpy()))


class FitProgress(Callback):
    """Say "fit k of n" and the time left when each fit of a search begins.

    ``LesionClassifier(callbacks=[("fit_progress", FitProgress(n, "my-search"))])``
    inside a GridSearchCV of ``n`` fits. A search clones its estimator (and this
    callback) for every fit, so the count lives in a table the clones share,
    under the search's ``token``; it counts the fits of this process (with
    ``n_jobs > 1`` each worker counts its own).
    """

    _runs: dict = {}

    def __init__(self, total: int, token: str, sink=print):
        self.total = total
        self.token = token
        self.sink = sink

    def on_train_begin(self, net, **kwargs):
        run = self._runs.setdefault(self.token, {"done": 0, "start": time.perf_counter()})
        run["done"] += 1
        done, elapsed = run["done"], time.perf_counter() - run["start"]
        left = ("" if done == 1 else
                f", about {elapsed / (done - 1) * max(self.total - done + 1, 0):.0f} s left")
        self.sink(f"fit {done} of {self.total}{left}")
        if done >= self.total:  # the search is over: a rerun with this token counts afresh
            del self._runs[self.token]


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
    if isinstance(freeze, str) and freeze == "backbone":
        return [("freeze_backbone", Freezer("backbone.*", at=_epoch_in))]
    if isinstance(freeze, Integral) and not isinstance(freeze, bool) and freeze > 0:
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
    if net.valid_size is None and net.train_split is None:
        cbs.append(("train_bacc", CleanTrainScore()))
    cbs.append(("finite_loss", FiniteLoss()))
    cbs += _freezing(net.freeze)
    cbs.append(("frozen_norms", FrozenNormsEval()))
    cbs.append(("early_stopping", ResumableEarlyStopping()))
    cbs.append(("checkpoint", EpochCheckpoint()))  # after early stopping
    if isinstance(net.lr_schedule, str) and net.lr_schedule == "cosine":
        # after the checkpoint: it builds its schedule from the restored history
        cbs.append(("lr_scheduler", LRScheduler(
            LambdaLR, lr_lambda=functools.partial(_cosine, epochs=net.max_epochs),
            event_name="lr")))
    if net.verbose > 1:
        cbs.append(("progress_bar", ProgressBar()))
    cbs.append(("print_log", EpochTable()))
    for name, cb in cbs:
        # skorch applies callbacks__<name>__* in initialize; applying them here too makes
        # get_params() report them, not the defaults, before that
        params = net.get_params_for(f"callbacks__{name}")
        if params:
            try:
                cb.set_params(**params)
            except (TypeError, ValueError):
                pass  # initialize_callbacks names the bad parameter
    return cbs
