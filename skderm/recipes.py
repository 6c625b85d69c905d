"""Named training recipes: LesionClassifier settings measured on real HAM10000.

A recipe is a dict of :class:`~skderm.LesionClassifier` parameters;
:func:`make_recipe` builds the classifier (any parameter can be overridden)
and ``skderm train`` / ``skderm cv`` start from the ``"cpu"`` recipe unless
told otherwise. The figures each recipe reaches, in 5-fold lesion-grouped
cross-validation, are in ``benchmarks/README.md`` (made by
``benchmarks/ham10000_cv.py``, which builds its fine-tuned model here, so the
two cannot drift apart).

``"cpu"``
    Fine-tunes ImageNet EfficientNet-Lite0 at 112x150 (HAM10000's 4:3), in
    channels_last (1.6x faster on a CPU), the head alone for the first epoch,
    then everything with a cosine learning rate (1e-3 head, 5e-4 backbone)
    over 12 epochs; class-balanced cross-entropy; flips, rotation, crops and
    colour jitter; the best epoch on a lesion-grouped 10% validation split
    by balanced accuracy; flip test-time augmentation. On 2 quiet CPU cores an
    epoch of 5,800 training images takes 105-130 s (12 epochs: about 22
    minutes; all 8,012 HAM10000 images: about 30). In lesion-grouped CV on
    the 200x150 HAM10000 copy its first fold scored balanced accuracy 0.675
    and MCC 0.553 (``benchmarks/README.md``).
``"defaults"``
    LesionClassifier's own defaults (ImageNet input size, constant learning
    rate, no class weights): a plain starting point.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RECIPES", "make_recipe"]

RECIPES: dict[str, dict[str, Any]] = {
    "cpu": {
        "backbone": "tf_efficientnet_lite0",
        "image_size": (112, 150),
        "freeze": 1,
        "lr": 1e-3,
        "backbone_lr": 5e-4,
        "lr_schedule": "cosine",
        "max_epochs": 12,
        "batch_size": 32,
        "class_weight": "balanced",
        "valid_size": 0.1,
        "monitor": "bacc",
        "patience": None,
        "tta": True,
        "random_state": 0,
    },
    "defaults": {},
}


def make_recipe(name: str = "cpu", **overrides):
    """A :class:`~skderm.LesionClassifier` with recipe ``name``'s settings.

    Parameters
    ----------
    name : {"cpu", "defaults"}, default="cpu"
        A key of :data:`RECIPES` (see the module docstring).
    **overrides
        LesionClassifier parameters that replace the recipe's.

    Returns
    -------
    LesionClassifier
        Unfitted.

    Examples
    --------
    >>> from skderm.recipes import make_recipe
    >>> make_recipe("cpu", max_epochs=3).get_params()["image_size"]
    (112, 150)
    """
    from skderm.classifier import LesionClassifier

    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return LesionClassifier(**{**RECIPES[name], **overrides})
