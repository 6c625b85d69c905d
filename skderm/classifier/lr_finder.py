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
import torch
from sklearn.base import clone

__all__ = ["LRFinderResult", "lr_find"]


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


def lr_find(estimator, X, y, *, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_it: int = 100, beta: float = 0.98) -> LRFinderResult:
    """Run the range test on a clone of ``estimator`` (a LesionClassifier).

    Every parameter group's rate follows the sweep (their ratios are not
    kept: the sweep is of one rate). Stops early when the smoothed loss
    exceeds four times its minimum. Batches cycle through ``X`` as needed.
    """
    from skderm.classifier import LesionClassifier

    if not isinstance(estimator, LesionClassifier):
        raise TypeError(f"lr_find sweeps one LesionClassifier, got {type(estimator).__name__}; "
                        "for a soft vote, sweep each member")
    if not (0 < start_lr < end_lr):
        raise ValueError(f"lr_find needs 0 < start_lr < end_lr, got {start_lr!r}, {end_lr!r}")
    if not (isinstance(num_it, int) and num_it >= 2):
        raise ValueError(f"lr_find num_it must be an int >= 2, got {num_it!r}")
    from skderm.classifier.network import resolve_device

    net = clone(estimator).set_params(valid_size=None, verbose=0, checkpoint_dir=None)
    net.set_params(device=resolve_device(net.device))
    net._validate_params()
    if net.random_state is not None:
        torch.manual_seed(int(net.random_state))
    y = np.asarray(y)
    net.classes_inferred_ = np.unique(y)
    from skderm.inputs import class_prior, class_weights

    net.image_size_ = net._image_size()
    net.class_weight_ = class_weights(net.class_weight, y, net.classes_inferred_)
    net.class_prior_ = class_prior(y, net.classes_inferred_)
    dataset = net._dataset(X, net._encode_y(y), fit=True)
    net.initialize()
    net.on_train_begin(net)
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(num_it) / (num_it - 1))
    tried, losses, avg, best = [], [], 0.0, np.inf
    while len(tried) < num_it:
        for batch in net.get_iterator(dataset, training=True):
            if len(tried) == num_it:
                break
            lr = float(lrs[len(tried)])
            for group in net.optimizer_.param_groups:
                group["lr"] = lr
            loss = float(net.train_step(batch)["loss"].detach())
            avg = beta * avg + (1 - beta) * loss
            smooth = avg / (1 - beta ** (len(tried) + 1))
            tried.append(lr)
            losses.append(smooth)
            best = min(best, smooth)
            if not np.isfinite(smooth) or smooth > 4 * best:
                num_it = len(tried)  # diverged: the rest says nothing
                break
    lrs_, losses_ = np.asarray(tried), np.asarray(losses)
    # steepest descent of the smoothed loss in log-rate, ignoring the diverged tail
    keep = max(np.argmin(losses_) + 1, 2)
    slope = np.gradient(losses_[:keep], np.log(lrs_[:keep]))
    return LRFinderResult(lrs_, losses_, float(lrs_[int(np.argmin(slope))]))
