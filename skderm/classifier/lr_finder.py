"""A learning-rate range test (Smith, 2017; fastai's ``lr_find``) for LesionClassifier.

The rate grows exponentially from ``start_lr`` to ``end_lr`` over ``num_it``
training batches of a copy of the estimator (the estimator itself is not
touched); the smoothed loss against the rate shows where training is fast and
where it diverges. The suggestion is the rate of steepest descent of the
smoothed loss, as fastai's ``steep``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from skorch.callbacks import Callback

__all__ = ["LRFinderResult", "LRSweep", "lr_find"]


@dataclass
class LRFinderResult:
    """Rates tried, their smoothed losses, and the suggested rate."""

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float

    def plot(self, ax=None):
        """Loss against rate (log scale), the suggestion marked; returns the figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses)
        ax.set_xscale("log")
        ax.axvline(self.suggestion, color="tab:red", linestyle="--",
                   label=f"suggested lr {self.suggestion:.2g}")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss (smoothed)")
        ax.legend()
        return ax.figure


class LRSweep(Callback):
    """Set every parameter group's rate to the next of ``lrs`` before each training
    batch, record the smoothed loss after it, and stop the fit (skorch's
    ``KeyboardInterrupt``, as its ``EarlyStopping``) when the rates run out or
    the loss diverges."""

    def __init__(self, lrs, beta: float = 0.98):
        self.lrs = lrs
        self.beta = beta

    def on_train_begin(self, net, **kwargs):
        self.tried_, self.losses_, self.avg_, self.best_ = [], [], 0.0, np.inf

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            for group in net.optimizer_.param_groups:
                group["lr"] = float(self.lrs[len(self.tried_)])

    def on_batch_end(self, net, training=False, loss=None, **kwargs):
        if not training:
            return
        self.avg_ = self.beta * self.avg_ + (1 - self.beta) * float(loss)
        smooth = self.avg_ / (1 - self.beta ** (len(self.tried_) + 1))
        self.tried_.append(float(self.lrs[len(self.tried_)]))
        self.losses_.append(smooth)
        self.best_ = min(self.best_, smooth)
        # diverged (the rest says nothing), or every rate tried
        if not np.isfinite(smooth) or smooth > 4 * self.best_ or \
                len(self.tried_) == len(self.lrs):
            raise KeyboardInterrupt


def lr_find(estimator, X, y, *, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_it: int = 100, beta: float = 0.98) -> LRFinderResult:
    """Run the range test on a clone of ``estimator`` (a LesionClassifier).

    The clone is fitted as ``fit`` would fit it (its freezing, augmentation,
    mixing and loss), on all of ``X`` (no validation split), while every
    parameter group's rate follows the sweep (their ratios are not kept: the
    sweep is of one rate). Stops early when the smoothed loss exceeds four
    times its minimum. Batches cycle through ``X`` as needed.
    """
    from skderm.classifier import LesionClassifier

    if not isinstance(estimator, LesionClassifier):
        raise TypeError(f"lr_find sweeps one LesionClassifier, got {type(estimator).__name__}; "
                        "for a soft vote, sweep each member")
    if not (0 < start_lr < end_lr):
        raise ValueError(f"lr_find needs 0 < start_lr < end_lr, got {start_lr!r}, {end_lr!r}")
    if not (isinstance(num_it, int) and num_it >= 2):
        raise ValueError(f"lr_find num_it must be an int >= 2, got {num_it!r}")
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(num_it) / (num_it - 1))
    sweep = LRSweep(lrs, beta)
    net = clone(estimator).set_params(
        valid_size=None, train_split=None, verbose=0, callbacks__checkpoint__dirname=None,
        warm_start=False,
        max_epochs=num_it,  # an upper bound: the sweep stops the fit
        callbacks=[*(estimator.callbacks or []), ("lr_sweep", sweep)],
        # a diverging loss is the sweep's end, not an error; no per-epoch score to compute
        callbacks__finite_loss=None, callbacks__train_bacc=None)
    net.fit(X, y)
    lrs_, losses_ = np.asarray(sweep.tried_), np.asarray(sweep.losses_)
    # steepest descent of the smoothed loss in log-rate, ignoring the diverged tail
    keep = max(np.argmin(losses_) + 1, 2)
    slope = np.gradient(losses_[:keep], np.log(lrs_[:keep]))
    return LRFinderResult(lrs_, losses_, float(lrs_[int(np.argmin(slope))]))
