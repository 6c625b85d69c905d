"""Synthetic labels shared by the metrics tests."""

from __future__ import annotations

import numpy as np


def random_labels(n, k=5, accuracy=0.7, seed=0, classes=None):
    """y_true with unequal class sizes and y_pred right about `accuracy` of the time."""
    rng = np.random.default_rng(seed)
    classes = np.array(classes if classes is not None else [f"c{i}" for i in range(k)])
    p = np.arange(1, len(classes) + 1, dtype=float)
    y_true = rng.choice(classes, size=n, p=p / p.sum())
    wrong = rng.random(n) > accuracy
    y_pred = np.where(wrong, rng.choice(classes, size=n), y_true)
    return y_true, y_pred
