"""The model a command trains or reads: built from a recipe, unwrapped, described."""

from __future__ import annotations

import sys

import numpy as np

from skderm.cli.options import check_param_names, parse_params
from skderm.decision import LesionLevelClassifier
from skderm.recipes import (
    LESION_DECISIONS,
    RECIPES,
    make_ensemble,
    make_lesion_level,
    make_recipe,
    override_notes,
)

__all__ = ["auto_recipe", "build_model", "decided_by", "decision_scores", "describe", "epochs",
           "labels", "members", "metadata_columns", "named_members", "pooling_column", "read_model",
           "unwrapped"]


def auto_recipe(device) -> str:
    """``--recipe auto``: the three-network vote where a CUDA GPU trains, else 'cpu'."""
    from skderm.classifier import resolve_device

    return "vote" if str(resolve_device(device)).startswith("cuda") else "cpu"


def watched() -> bool:
    """Whether a person watches stderr (a terminal, not a log file): then progress bars."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def build_model(args, log=print):
    """The unfitted model of train and cv: the recipe, then the options, then --param."""
    params = parse_params(args.param)
    check_param_names(params)
    name = args.recipe
    if name == "auto":
        name = auto_recipe(params.get("device", "auto"))
        log(f"recipe {name!r}: " + ("a CUDA GPU is here (--recipe cpu trains one network)"
                                    if name == "vote" else
                                    "no CUDA GPU (--recipe vote trains the three-network vote)"))
    # verbose=2 adds progress bars: only for a person watching, not for a log file
    overrides = {"random_state": args.seed,
                 "verbose": 0 if args.quiet else 2 if watched() else 1}
    if args.backbone is not None:
        overrides["backbone"] = args.backbone
    if args.epochs is not None:
        overrides["max_epochs"] = args.epochs
    if args.weights is not None:
        overrides["weights"] = None if args.weights.lower() == "none" else args.weights
    if args.image_size is not None:
        overrides["image_size"] = tuple(args.image_size)
    if args.resume:
        if args.checkpoint_dir is None:
            raise ValueError("--resume needs --checkpoint-dir DIR: the folder the interrupted "
                             "run wrote its checkpoints to")
        overrides["warm_start"] = True
    if args.checkpoint_dir is not None:
        overrides["callbacks__checkpoint__dirname"] = args.checkpoint_dir
    overrides.update(params)
    for note in override_notes(name, **overrides):
        log(f"note: {note}")
    if args.decision == "lesion" and name in LESION_DECISIONS:
        return make_lesion_level(name, **overrides)
    if RECIPES[name].members:
        return make_ensemble(name, **overrides)
    return make_recipe(name, **overrides)


def unwrapped(clf):
    """The model inside a LesionLevelClassifier (the fitted one once it is fitted), else clf."""
    if isinstance(clf, LesionLevelClassifier):
        return getattr(clf, "estimator_", clf.estimator)
    return clf


def pooling_column(clf) -> str | None:
    """The column a LesionLevelClassifier pools images by, or None."""
    if isinstance(clf, LesionLevelClassifier) and clf.pooling is not None:
        return clf.group_column
    return None


def named_members(clf) -> list[tuple[str, object]]:
    """``[(name, LesionClassifier)]``: ``[("", clf)]``, or a VotingClassifier's members."""
    clf = unwrapped(clf)
    if not hasattr(clf, "estimators"):
        return [("", clf)]
    named = [(name, est) for name, est in clf.estimators if est != "drop"]
    fitted = getattr(clf, "estimators_", None)
    if fitted is None:
        return named
    return [(name, est) for (name, _), est in zip(named, fitted, strict=True)]


def members(clf) -> list:
    return [member for _, member in named_members(clf)]


def epochs(clf) -> str:
    """Epochs trained: ``12``, or ``12+24+12`` for an ensemble's members."""
    return "+".join(str(len(m.history_)) for m in members(clf))


def metadata_columns(clf) -> list:
    """The metadata columns any member reads, in first-seen order."""
    columns = []
    for m in members(clf):
        columns += [c for c in (m.metadata_columns or []) if c not in columns]
    return columns


def decided_by(clf) -> str:
    """How ``clf`` turns probabilities into labels, in words (also a CSV column)."""
    if not isinstance(clf, LesionLevelClassifier):
        return "argmax"
    column = pooling_column(clf)
    how = f"per lesion (each {column}'s images pooled)" if column else "per image"
    return f"deciding {how}, prior shift {clf.prior_shift:+g}"


def decision_scores(clf, proba) -> np.ndarray:
    """Probabilities whose argmax is ``clf``'s label: with a prior shift ``t``,
    ``p * prior**-t`` renormalised (LesionLevelClassifier.decide's rule), else ``proba``."""
    if not isinstance(clf, LesionLevelClassifier) or not clf.prior_shift:
        return proba
    scores = np.log(np.clip(proba, 1e-12, None)) - clf.prior_shift * np.log(clf.class_prior_)
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)


def labels(clf, proba):
    """The labels ``clf.predict`` gives, from the probabilities it gave."""
    if isinstance(clf, LesionLevelClassifier):
        return clf.decide(proba)
    return np.asarray(clf.classes_)[proba.argmax(axis=1)]


def describe(clf) -> str:
    """One line naming the model: backbone, image size, epochs, members, decision."""
    inner = unwrapped(clf)
    if inner is not clf:
        return f"{describe(inner)}; {decided_by(clf)}"
    if hasattr(clf, "estimators"):
        return "a soft vote of " + ", ".join(f"{name}: {describe(est)}"
                                             for name, est in named_members(clf))
    size = clf.image_size if clf.image_size is not None else "backbone default"
    return (f"LesionClassifier(backbone={clf.backbone!r}, image_size={size}, "
            f"max_epochs={clf.max_epochs})")


def read_model(args):
    """The model file of ``--model``, checked against ``--model-sha256`` when given."""
    from skderm.persistence import load_model

    if args.model_sha256 is None:
        return load_model(args.model)
    return load_model(args.model, sha256=args.model_sha256)
