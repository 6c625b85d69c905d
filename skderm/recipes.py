"""Named training recipes: LesionClassifier settings measured on real HAM10000.

A recipe is a dict of :class:`~skderm.LesionClassifier` parameters;
:func:`make_recipe` builds the classifier (any parameter can be overridden).
:func:`make_ensemble` builds the soft vote of several recipe variants
(:data:`ENSEMBLES`). ``skderm train`` / ``skderm cv`` start from
``--recipe auto`` unless told otherwise: the ``"vote"`` ensemble where a CUDA
GPU trains, the ``"cpu"`` recipe elsewhere. ``benchmarks/ham10000_cv.py``
builds its fine-tuned models here, so the figures and the recipes cannot
drift apart.

``"cpu"`` (the default of ``skderm train`` and ``skderm cv`` without a CUDA GPU)
    Fine-tunes ImageNet EfficientNet-Lite0 on HAM10000's 200x150 images
    upsampled to 192x256, with age, sex and localization fused into the head
    (so ``skderm predict`` needs ``--metadata``), in channels_last: the head
    alone for the first epoch, then everything from ``blocks.3`` on (the stem
    and first three stages keep their ImageNet weights, ``freeze_until``: a
    1.9x faster training step) with a cosine learning rate (1e-3 head, 5e-4
    backbone) over 12 epochs; the logit-adjusted cross-entropy
    (``loss="logit_adjusted"``: the training labels' log class frequencies
    added to the logits inside the loss, no class weights); flips, rotation,
    crops and colour jitter, then mixup (``mixup_alpha=0.4``) on half the
    batches and CutMix (``cutmix_alpha=1.0``) on the other half; every
    training image, keeping the last epoch; predictions on the centred crop
    of the training crops' mean area (``test_crop="auto"``, 0.875) with flip
    test-time augmentation. In 5-fold lesion-grouped cross-validation on the
    200x150 HAM10000 copy it scored balanced accuracy 0.766 +/- 0.017 and MCC
    0.634 +/- 0.014 (predicting on whole images 0.739 / 0.632). On 2 shared
    CPU cores its five fits took 49.7-79.4 minutes of epochs on slow evenings
    and a refit of the first fold 38.1 minutes (epochs of 179-189 s over
    6,400 images); mixup and CutMix add about 2% to an epoch (median ratio
    1.022 side by side, ``benchmarks/bench_mixing.py``). It replaced
    the same recipe without mixing, predicting on whole images (0.714 +/-
    0.022 / 0.638 +/- 0.017, fits of 32-40 minutes), after its folds were
    seen: the figures are somewhat optimistic (the crop's area follows from
    the training crops and was not tuned).
``"cpu_images"``
    The same from the image alone, at 112x150, with class-balanced
    cross-entropy and the best epoch on a lesion-grouped 10% validation
    split: for images that come without age, sex and site, fine-tuning every
    layer for 12 epochs (an epoch of 5,800 images: 105-130 s; 30 minutes per
    fit).
``"gpu"``
    For a CUDA GPU: the larger EfficientNet-Lite2 at 240x320 (the 200x150
    images upsampled), with age, sex and localization, every layer
    fine-tuned after the head-only first epoch (backbone learning rate 3e-4)
    for 15 epochs of 64 images, in bfloat16 autocast and channels_last, with
    class-balanced cross-entropy, no mixing, predictions on whole images;
    otherwise as ``"cpu"``. On one H100 a fit
    took 1.3-2.3 minutes. In the same 5-fold cross-validation it scored
    balanced accuracy 0.680 +/- 0.034 and MCC 0.638 +/- 0.017: no better than
    ``"cpu"`` (its training loss also ends near 0.2: the larger network
    fine-tuned end to end does not generalise better from these 6,400
    images), so it is a fast option, not the default. A soft vote of it with
    the ``"cpu"`` recipe before mixup and the test crop scored 0.718 +/-
    0.009 / 0.665 +/- 0.019.
``"defaults"``
    LesionClassifier's own defaults (ImageNet input size, constant learning
    rate, no class weights): a plain starting point.

Their balanced accuracy and MCC in 5-fold lesion-grouped cross-validation on
the 200x150 HAM10000 copy are in ``benchmarks/README.md``. ``"cpu"`` and
``"vote"`` also have a measured per-lesion decision rule
(:data:`LESION_DECISIONS`, :func:`make_lesion_level`), which ``skderm train``
uses: per lesion, with it, they scored 0.779 / 0.681 and 0.802 / 0.704. ``"cpu_images"``
and ``"gpu"`` predict on whole images (``test_crop=None``), the setting they
were measured with; ``make_recipe(name, test_crop="auto")`` predicts on the
centred crop of the training crops' mean area instead, which raised balanced
accuracy from 0.739 to 0.766 (MCC 0.632 to 0.634) for the ``"cpu"`` recipe's
five cross-validation networks (see the training guide).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["ENSEMBLES", "LESION_DECISIONS", "RECIPES", "make_ensemble", "make_lesion_level",
           "make_recipe"]

_CPU_IMAGES: dict[str, Any] = {
    "backbone": "tf_efficientnet_lite0",
    "image_size": (112, 150),
    "freeze": 1,
    "lr": 1e-3,
    "optimizer__param_groups": [("backbone.*", {"lr": 5e-4})],
    "lr_schedule": "cosine",
    "max_epochs": 12,
    "batch_size": 32,
    "class_weight": "balanced",
    "valid_size": 0.1,
    "monitor": "bacc",
    "patience": None,
    "tta": True,
    # measured predicting on whole images, before LesionClassifier's test_crop
    # (the "cpu" recipe overrides it)
    "test_crop": None,
    "random_state": 0,
}

RECIPES: dict[str, dict[str, Any]] = {
    "cpu": {**_CPU_IMAGES, "image_size": (192, 256),
            "metadata_columns": ["age", "sex", "localization"], "valid_size": None,
            "freeze_until": "blocks.3", "max_epochs": 12, "class_weight": None,
            "criterion": "logit_adjusted", "mixup_alpha": 0.4, "cutmix_alpha": 1.0,
            "test_crop": "auto"},
    "cpu_images": _CPU_IMAGES,
    # for a CUDA GPU: the larger EfficientNet-Lite2, every layer fine-tuned after
    # the head-only first epoch (backbone lr 3e-4), the images upsampled to
    # 240x320 (Lite2 was trained at 260x260), 15 epochs of 64 images (bfloat16
    # autocast and channels_last on CUDA by default)
    "gpu": {**_CPU_IMAGES, "backbone": "tf_efficientnet_lite2", "image_size": (240, 320),
            "metadata_columns": ["age", "sex", "localization"], "valid_size": None,
            "optimizer__param_groups": [("backbone.*", {"lr": 3e-4})], "batch_size": 64, "max_epochs": 15},
    "defaults": {},
}


def make_recipe(name: str = "cpu", **overrides):
    """A :class:`~skderm.LesionClassifier` with recipe ``name``'s settings.

    Parameters
    ----------
    name : {"cpu", "cpu_images", "gpu", "defaults"}, default="cpu"
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
    (192, 256)
    >>> make_recipe("cpu_images").get_params()["metadata_columns"] is None
    True
    >>> make_recipe("cpu", backbone="resnet50").get_params()["freeze_until"] is None
    True
    """
    from skderm.classifier import LesionClassifier

    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return LesionClassifier(**_for_backbone(copy.deepcopy(RECIPES[name]), overrides))


#: Soft votes of recipe variants: ``(member name, recipe, settings that replace
#: the recipe's)`` per member, for :func:`make_ensemble`. The settings are part
#: of the member's recipe, so a member's ``freeze_until`` is dropped, as a
#: recipe's is, when an override changes its backbone.
ENSEMBLES: dict[str, tuple[tuple[str, str, dict[str, Any]], ...]] = {
    "vote": (
        ("cpu", "cpu", {}),
        ("e24", "cpu", {"max_epochs": 24}),
        ("lite2", "cpu", {"backbone": "tf_efficientnet_lite2", "image_size": (240, 320),
                          "freeze_until": "blocks.3"}),
    ),
}


def member_recipes(name: str) -> list[tuple[str, dict[str, Any]]]:
    """``[(member name, the member's recipe), ...]`` of ensemble ``name``: its
    base recipe updated with its own settings (copies, free to change)."""
    if name not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {name!r}; choose one of {sorted(ENSEMBLES)}")
    return [(member, copy.deepcopy({**RECIPES[recipe], **settings}))
            for member, recipe, settings in ENSEMBLES[name]]


def make_ensemble(name: str = "vote", **overrides):
    """A soft-voting ensemble of recipe variants (``skderm train --recipe vote``).

    ``"vote"`` averages the probabilities of three networks: the ``"cpu"``
    recipe (``"cpu"``), the same trained for 24 epochs (``"e24"``) and the same
    on EfficientNet-Lite2 at 240x320 with its stem and first three stages
    frozen (``"lite2"``). In 5-fold lesion-grouped cross-validation on the
    200x150 HAM10000 copy it scored balanced accuracy 0.781 +/- 0.018 and MCC
    0.663 +/- 0.021, ahead of the ``"cpu"`` recipe alone (0.766 / 0.634) on
    every fold in both scores (``benchmarks/README.md``), for about four
    times its training: 4-5 hours of 2 CPU cores per fit on 6,400 images
    (the three networks' epochs took about 60, 105 and 70-140 minutes), about
    10 minutes on one H100 (where the 24-epoch and Lite2 networks took
    3.2-4.5 and 2.5 minutes).

    Parameters
    ----------
    name : {"vote"}, default="vote"
        A key of :data:`ENSEMBLES`.
    **overrides
        LesionClassifier parameters set on every member (``device``,
        ``random_state``, ``checkpoint_dir`` ...). One that changes a member's
        backbone also drops that member's ``freeze_until``, as
        :func:`make_recipe` does.

    Returns
    -------
    sklearn.ensemble.VotingClassifier
        Unfitted, ``voting="soft"`` with equal weights; members are fitted one
        after the other. :func:`skderm.save_model` saves it fitted.

    Examples
    --------
    >>> from skderm.recipes import make_ensemble
    >>> vote = make_ensemble("vote")
    >>> [(name, m.backbone, m.max_epochs) for name, m in vote.estimators]
    [('cpu', 'tf_efficientnet_lite0', 12), ('e24', 'tf_efficientnet_lite0', 24), \
('lite2', 'tf_efficientnet_lite2', 12)]
    """
    from sklearn.ensemble import VotingClassifier

    from skderm.classifier import LesionClassifier

    return VotingClassifier([(member, LesionClassifier(**_for_backbone(recipe, overrides)))
                             for member, recipe in member_recipes(name)], voting="soft")


#: The prior shift ``t`` of the per-lesion decision rule
#: (:class:`~skderm.LesionLevelClassifier`) measured for a recipe or ensemble:
#: in 5-fold lesion-grouped cross-validation, the shift each fold's other four
#: folds scored best at (``benchmarks/decision_rule.py``). ``skderm train``
#: and ``skderm cv`` decide with it unless given ``--decision image``.
LESION_DECISIONS: dict[str, float] = {"cpu": -0.15, "vote": -0.1}


def make_lesion_level(name: str = "vote", **overrides):
    """Recipe or ensemble ``name`` deciding per lesion with its measured prior shift.

    The images of a lesion (one ``lesion_id``) get their mean probabilities,
    and the label is ``argmax(log p - t * log prior)`` with ``t`` from
    :data:`LESION_DECISIONS` (:class:`~skderm.LesionLevelClassifier`). In
    5-fold lesion-grouped cross-validation on the 200x150 HAM10000 copy,
    ``"vote"`` scored balanced accuracy 0.802 +/- 0.018 and MCC 0.704 +/- 0.027
    this way (per image, plain argmax: 0.781 / 0.663) and ``"cpu"`` 0.779 /
    0.681 (per image: 0.766 / 0.634). Pooling needs each image's
    ``lesion_id`` at prediction time: predicting images one by one, set
    ``group_column=None`` (the shift still applies).

    Parameters
    ----------
    name : {"vote", "cpu"}, default="vote"
        A key of :data:`LESION_DECISIONS`.
    **overrides
        LesionClassifier parameters, as for :func:`make_recipe` and
        :func:`make_ensemble`.

    Returns
    -------
    LesionLevelClassifier
        Unfitted, around :func:`make_ensemble` ``(name)`` or
        :func:`make_recipe` ``(name)``.

    Examples
    --------
    >>> from skderm.recipes import make_lesion_level
    >>> clf = make_lesion_level("vote")
    >>> clf.prior_shift, clf.group_column, type(clf.estimator).__name__
    (-0.1, 'lesion_id', 'VotingClassifier')
    """
    from skderm.decision import LesionLevelClassifier

    if name not in LESION_DECISIONS:
        raise ValueError(f"recipe {name!r} has no measured per-lesion decision rule; choose "
                         f"one of {sorted(LESION_DECISIONS)}, or wrap any model in "
                         "LesionLevelClassifier(model, prior_shift=...) yourself")
    model = (make_ensemble(name, **overrides) if name in ENSEMBLES
             else make_recipe(name, **overrides))
    return LesionLevelClassifier(model, prior_shift=LESION_DECISIONS[name])


def _for_backbone(recipe: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``recipe`` updated with ``overrides``, minus what only fits the recipe's backbone.

    ``freeze_until`` names a layer of the recipe's backbone: with another
    backbone (and no ``freeze_until`` of its own) every layer is fine-tuned.
    """
    params = {**recipe, **overrides}
    if (recipe.get("freeze_until") and "freeze_until" not in overrides
            and params.get("backbone") != recipe.get("backbone")):
        params["freeze_until"] = None
    return params
