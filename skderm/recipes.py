"""Named training recipes: starting points for :class:`~skderm.LesionClassifier`.

A recipe is plain data (:class:`Recipe`): a name, the LesionClassifier
parameters it sets, for an ensemble its members, for a recipe with a
per-lesion decision rule its prior shift, and two or three lines on what it
is for. Build one with :func:`make_recipe`, :func:`make_ensemble` or
:func:`make_lesion_level`; any parameter can be overridden. ``skderm train``
and ``skderm cv`` start from them (``--recipe``).

How each recipe scores on HAM10000, and what it costs to train, is on the
benchmarks pages of the documentation (``docs/benchmarks``); how the recipes
were found is in the changelog.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skderm.transforms import Mixup

__all__ = ["LESION_DECISIONS", "RECIPES", "Recipe", "make_ensemble", "make_lesion_level",
           "make_recipe", "override_notes"]


@dataclass(frozen=True)
class Recipe:
    """A named starting point: parameters, members, decision rule and purpose.

    Attributes
    ----------
    name : str
        The key in :data:`RECIPES` (``--recipe NAME``).
    purpose : str
        What it is for, in two or three lines.
    params : mapping
        LesionClassifier parameters; the rest stay LesionClassifier's defaults.
    members : tuple of (str, str, mapping)
        For a soft-voting ensemble: ``(member name, recipe name, settings that
        replace that recipe's)`` per member; empty for one network.
    prior_shift : float or None
        The per-lesion decision rule's shift ``t``
        (:class:`~skderm.LesionLevelClassifier`), chosen on out-of-fold
        predictions; None when the recipe decides image by image.
    """

    name: str
    purpose: str
    params: Mapping[str, Any] = field(default_factory=dict)
    members: tuple[tuple[str, str, Mapping[str, Any]], ...] = ()
    prior_shift: float | None = None


# The image-only fine-tuning recipe; "cpu" and "gpu" are written as changes to it.
_CPU_IMAGES_PARAMS: dict[str, Any] = {
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
    "callbacks__early_stopping__patience": None,
    "tta": True,
    "test_crop": None,
    "random_state": 0,
}

_METADATA = {"metadata_columns": ["age", "sex", "localization"]}

_RECIPES = (
    Recipe(
        "cpu",
        "The default where no CUDA GPU trains: EfficientNet-Lite0 fine-tuned from blocks.3 "
        "on, with age, sex and site fused into the head (predict needs --metadata), mixup and "
        "CutMix, deciding per lesion.",
        {**_CPU_IMAGES_PARAMS, "image_size": (192, 256), **_METADATA, "valid_size": None,
         "freeze_until": "blocks.3", "class_weight": None, "criterion": "logit_adjusted",
         "mixup": Mixup(mixup_alpha=0.4, cutmix_alpha=1.0), "test_crop": "auto"},
        prior_shift=-0.15),
    Recipe(
        "cpu_images",
        "The image alone, for pictures that come without age, sex and site: every layer "
        "of EfficientNet-Lite0 fine-tuned, the best epoch kept on a lesion-grouped "
        "validation split.",
        _CPU_IMAGES_PARAMS),
    Recipe(
        "gpu",
        "For a CUDA GPU, one network: the larger EfficientNet-Lite2 with age, sex and site, "
        "every layer fine-tuned after a head-only first epoch. A fast option, not the most "
        "accurate.",
        {**_CPU_IMAGES_PARAMS, "backbone": "tf_efficientnet_lite2", "image_size": (240, 320),
         **_METADATA, "valid_size": None, "optimizer__param_groups": [("backbone.*", {"lr": 3e-4})],
         "batch_size": 64,
         "max_epochs": 15}),
    Recipe(
        "vote",
        "The most accurate: a soft vote of three networks ('cpu', it trained twice as long, "
        "it on EfficientNet-Lite2), deciding per lesion. About four times the training of "
        "'cpu': the default where a CUDA GPU trains.",
        members=(
            ("cpu", "cpu", {}),
            ("e24", "cpu", {"max_epochs": 24}),
            ("lite2", "cpu", {"backbone": "tf_efficientnet_lite2", "image_size": (240, 320),
                              "freeze_until": "blocks.3"}),
        ),
        prior_shift=-0.1),
    Recipe(
        "defaults",
        "LesionClassifier's own defaults (ImageNet input size, constant learning rate, no "
        "class weights): a plain starting point."),
)

#: Every recipe by name.
RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in _RECIPES}

#: The prior shift of each recipe that decides per lesion (:func:`make_lesion_level`).
LESION_DECISIONS: dict[str, float] = {r.name: r.prior_shift for r in _RECIPES
                                      if r.prior_shift is not None}


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name]


def _members(recipe: Recipe) -> list[tuple[str, dict[str, Any]]]:
    """``[(member name, its parameters)]``: its base recipe's, then its own settings."""
    return [(member, copy.deepcopy({**RECIPES[base].params, **settings}))
            for member, base, settings in recipe.members]


def _merged(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` updated with ``overrides``, minus what only fits the recipe's backbone.

    ``freeze_until`` names a layer of the recipe's backbone: with another
    backbone (and no ``freeze_until`` of its own) every layer is fine-tuned.
    """
    merged = {**copy.deepcopy(dict(params)), **overrides}
    if (params.get("freeze_until") and "freeze_until" not in overrides
            and merged.get("backbone") != params.get("backbone")):
        merged["freeze_until"] = None
    return merged


def _classifier(params: dict[str, Any]):
    from skderm.classifier import LesionClassifier

    # nested parameters (augmentation__p_flip, optimizer__weight_decay) go through
    # set_params, which reaches every nested object
    nested = {k: params.pop(k) for k in list(params) if "__" in k}
    return LesionClassifier(**params).set_params(**nested)


def make_recipe(name: str = "cpu", **overrides):
    """A :class:`~skderm.LesionClassifier` with recipe ``name``'s parameters.

    Parameters
    ----------
    name : {"cpu", "cpu_images", "gpu", "defaults"}, default="cpu"
        A one-network recipe of :data:`RECIPES`.
    **overrides
        LesionClassifier parameters that replace the recipe's, nested ones
        included. Another ``backbone`` drops the recipe's ``freeze_until``
        (a layer name of its backbone) unless given too.

    Returns
    -------
    LesionClassifier
        Unfitted.

    Examples
    --------
    >>> from skderm.recipes import make_recipe
    >>> make_recipe("cpu", max_epochs=3).get_params()["image_size"]
    (192, 256)
    >>> make_recipe("cpu", backbone="resnet50").get_params()["freeze_until"] is None
    True
    """
    recipe = _recipe(name)
    if recipe.members:
        raise ValueError(f"recipe {name!r} is an ensemble; build it with make_ensemble({name!r})")
    return _classifier(_merged(recipe.params, overrides))


def make_ensemble(name: str = "vote", **overrides):
    """A soft-voting ensemble of recipe variants (``skderm train --recipe vote``).

    Parameters
    ----------
    name : {"vote"}, default="vote"
        A recipe of :data:`RECIPES` with members.
    **overrides
        LesionClassifier parameters set on every member, as for
        :func:`make_recipe`.

    Returns
    -------
    LesionVotingClassifier
        Unfitted, a soft vote with equal weights (:class:`skderm.ensemble.LesionVotingClassifier`).

    Examples
    --------
    >>> from skderm.recipes import make_ensemble
    >>> [(name, m.backbone, m.max_epochs) for name, m in make_ensemble("vote").estimators]
    [('cpu', 'tf_efficientnet_lite0', 12), ('e24', 'tf_efficientnet_lite0', 24), \
('lite2', 'tf_efficientnet_lite2', 12)]
    """
    from skderm.ensemble import LesionVotingClassifier

    recipe = _recipe(name)
    if not recipe.members:
        raise ValueError(f"recipe {name!r} is one network; build it with make_recipe({name!r}), "
                         f"or choose an ensemble of {sorted(r.name for r in _RECIPES if r.members)}")
    return LesionVotingClassifier([(member, _classifier(_merged(params, overrides)))
                                   for member, params in _members(recipe)])


def make_lesion_level(name: str = "vote", **overrides):
    """Recipe ``name`` deciding per lesion with its prior shift.

    The images of a lesion (one ``lesion_id``) get their mean probabilities
    and the label ``argmax(log p - t * log prior)``, ``t`` from
    :data:`LESION_DECISIONS` (:class:`~skderm.LesionLevelClassifier`). To
    predict images one by one, set ``group_column=None`` (the shift still
    applies).

    Parameters
    ----------
    name : {"vote", "cpu"}, default="vote"
        A key of :data:`LESION_DECISIONS`.
    **overrides
        LesionClassifier parameters, as for :func:`make_recipe`.

    Returns
    -------
    LesionLevelClassifier
        Unfitted, around :func:`make_ensemble` or :func:`make_recipe` ``(name)``.

    Examples
    --------
    >>> from skderm.recipes import make_lesion_level
    >>> clf = make_lesion_level("vote")
    >>> clf.prior_shift, clf.group_column, type(clf.estimator).__name__
    (-0.1, 'lesion_id', 'VotingClassifier')
    """
    from skderm.decision import LesionLevelClassifier

    recipe = _recipe(name)
    if recipe.prior_shift is None:
        raise ValueError(f"recipe {name!r} has no per-lesion decision rule; choose one of "
                         f"{sorted(LESION_DECISIONS)}, or wrap any model in "
                         "LesionLevelClassifier(model, prior_shift=...) yourself")
    model = (make_ensemble(name, **overrides) if recipe.members
             else make_recipe(name, **overrides))
    return LesionLevelClassifier(model, prior_shift=recipe.prior_shift)


def override_notes(name: str, **overrides) -> list[str]:
    """What ``overrides`` turn off in recipe ``name``, one sentence each (for a log).

    Examples
    --------
    >>> from skderm.recipes import override_notes
    >>> override_notes("cpu", backbone="tiny")[0][:60]
    "the 'cpu' recipe's freeze_until='blocks.3' is a layer of tf_"
    """
    recipe = _recipe(name)
    named = ([(f"{name}: {m}", p) for m, p in _members(recipe)] if recipe.members
             else [(name, dict(recipe.params))])
    notes = []
    for label, params in named:
        merged = _merged(params, overrides)
        if params.get("freeze_until") and merged.get("freeze_until") is None \
                and "freeze_until" not in overrides:
            notes.append(f"the {label!r} recipe's freeze_until={params['freeze_until']!r} is "
                         f"a layer of {params['backbone']}; fine-tuning every layer of "
                         f"{merged['backbone']} (set freeze_until=LAYER to keep the layers "
                         "before LAYER frozen)")
    return notes
