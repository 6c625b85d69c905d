"""Which images and class pairs to look at first: top losses and most-confused pairs.

The tables behind an interpretation gallery, as fastai's ``top_losses`` and
``most_confused`` give them; they need probabilities or labels only, so the
images (and their saliency maps) can be drawn for any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from skderm._utils.docs import fill_doc
from skderm.metrics.validation import check_integer, check_pair, check_scored, encode_labels

__all__ = ["top_losses", "most_confused"]


@fill_doc
def top_losses(
    y_true: Any, y_proba: Any, *, classes: Sequence | None = None, k: int = 9
) -> pd.DataFrame:
    """The ``k`` misclassified images with the largest loss: the most confidently wrong.

    Parameters
    ----------
    %(scored)s
    k : int, default=9
        Number of rows at most (fewer when fewer images are wrong).

    Returns
    -------
    losses : pandas.DataFrame
        Indexed by the row position of the image in ``y_true`` (so
        ``X.iloc[losses.index]`` are the images), largest loss first, with
        columns ``true``, ``pred``, ``p_pred`` (probability of the predicted
        class), ``p_true`` (probability of the true class) and ``loss``
        (``-log p_true``, the cross-entropy).
    """
    k = check_integer(k, "k", 1)
    y_true, proba, classes = check_scored(y_true, y_proba, classes)
    rows = np.arange(len(y_true))
    pred = proba.argmax(axis=1)
    p_true = proba[rows, encode_labels(y_true, classes)]
    table = pd.DataFrame({
        "true": y_true,
        "pred": classes[pred],
        "p_pred": proba[rows, pred],
        "p_true": p_true,
        "loss": -np.log(np.clip(p_true, 1e-12, None)),
    })
    wrong = table[table["true"] != table["pred"]]
    return wrong.sort_values("loss", ascending=False, kind="stable").head(k)


@fill_doc
def most_confused(y_true: Any, y_pred: Any, *, min_count: int = 1) -> pd.DataFrame:
    """Pairs of (true, predicted) classes the model mixes up, most frequent first.

    Parameters
    ----------
    %(y_true)s
    %(y_pred)s
    min_count : int, default=1
        Leave out pairs seen fewer times.

    Returns
    -------
    pairs : pandas.DataFrame
        Columns ``true``, ``pred``, ``count`` (off-diagonal cells of the
        confusion matrix) and ``share`` (``count`` over the true class's
        support); ties in ``count`` in label order.
    """
    min_count = check_integer(min_count, "min_count", 1)
    y_true, y_pred = check_pair(y_true, y_pred)
    frame = pd.DataFrame({"true": y_true, "pred": y_pred})
    support = frame["true"].value_counts()
    pairs = (frame[frame["true"] != frame["pred"]]
             .value_counts(["true", "pred"], sort=False).rename("count").reset_index())
    pairs = pairs[pairs["count"] >= min_count]
    pairs["share"] = pairs["count"] / support.reindex(pairs["true"]).to_numpy()
    pairs = pairs.sort_values(["count", "true", "pred"], ascending=[False, True, True],
                              kind="stable")
    return pairs.reset_index(drop=True)
