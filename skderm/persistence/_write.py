"""A fitted model as a payload of tensors and plain values (what save_model writes)."""

from __future__ import annotations

import numpy as np

from skderm.exceptions import ModelFileError, TrainingDivergedError
from skderm.persistence._build import check_params
from skderm.persistence._encoder import encoder_state
from skderm.persistence._format import (
    FORMAT,
    FORMAT_ENSEMBLE,
    FORMAT_LESION_LEVEL,
    NEVER_SAVED,
    is_saved_param,
    plain,
    saved_param_names,
)


def payload(clf) -> dict:
    """The fields of ``clf``'s file, ``format`` first, without the head and digest."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.utils.validation import check_is_fitted

    from skderm.classifier import LesionClassifier
    from skderm.decision import LesionLevelClassifier

    if isinstance(clf, VotingClassifier):
        return {"format": FORMAT_ENSEMBLE, **_ensemble(clf)}
    if isinstance(clf, LesionClassifier):
        return {"format": FORMAT, **member(clf)}
    if isinstance(clf, LesionLevelClassifier):
        check_is_fitted(clf, "estimator_")
        clf._validate_params()
        if isinstance(clf.estimator_, LesionLevelClassifier):
            raise TypeError("save_model saves one LesionLevelClassifier around a model, not "
                            "one wrapped in another: set its settings on a single wrapper")
        return {"format": FORMAT_LESION_LEVEL,
                "decision": {"group_column": clf.group_column, "pooling": clf.pooling,
                             "prior_shift": float(clf.prior_shift)},
                "class_prior": plain(np.asarray(clf.class_prior_, dtype=float)),
                "classes": plain(np.asarray(clf.classes_)),
                "estimator": payload(clf.estimator_)}
    raise TypeError(f"save_model saves a LesionClassifier, a soft-voting VotingClassifier of "
                    f"them or a LesionLevelClassifier around either, got {type(clf).__name__}")


def _ensemble(vote) -> dict:
    from sklearn.utils.validation import check_is_fitted

    from skderm.classifier import LesionClassifier

    if vote.voting != "soft":
        raise ValueError(f"save_model saves soft-voting ensembles; this VotingClassifier has "
                         f"voting={vote.voting!r}: use VotingClassifier(..., voting='soft')")
    check_is_fitted(vote)
    names = [name for name, est in vote.estimators if est != "drop"]
    others = [f"{name!r} ({type(est).__name__})"
              for name, est in zip(names, vote.estimators_, strict=True)
              if not isinstance(est, LesionClassifier)]
    if others:
        raise TypeError(f"save_model saves ensembles of LesionClassifiers; member "
                        f"{', '.join(others)} is not one: save the members with joblib instead")
    weights = vote._weights_not_none
    return {
        "names": names,
        "weights": None if weights is None else [float(w) for w in weights],
        "voting_params": {"voting": "soft", "flatten_transform": bool(vote.flatten_transform),
                          "verbose": bool(vote.verbose)},
        "classes": plain(np.asarray(vote.classes_)),
        "members": [member(est) for est in vote.estimators_],
    }


def _split_params(clf) -> tuple[dict, dict]:
    """Constructor params as (the plain ones a file may hold, repr of the others)."""
    from skderm.classifier import LesionClassifier

    allowed = saved_param_names()
    defaults = LesionClassifier().get_params(deep=False)
    kept, dropped = {}, {}
    for name, value in clf.get_params(deep=False).items():
        if name.startswith("_") or name in NEVER_SAVED:
            continue
        if name == "device" and value is None:
            value = "auto"  # Accelerate places the model itself (device=None)
        try:
            value = plain(value)
        except TypeError:
            # a default (the LesionNet class, AdamW) comes back by itself; record the rest
            if value is not defaults.get(name, object()):
                dropped[name] = repr(value)
            continue
        if is_saved_param(name, allowed):
            kept[name] = value
        else:
            dropped[name] = repr(value)  # callbacks__*, iterator_train__*: the run's
    return kept, dropped


def _history(history) -> list[dict]:
    rows = []
    for epoch in history or []:
        row = {}
        for key, value in epoch.items():
            if key == "batches":
                continue
            try:
                row[key] = plain(value)
            except TypeError:
                continue  # an exotic callback value: the history is informative only
        rows.append(row)
    return rows


def member(clf) -> dict:
    """One LesionClassifier's fields."""
    clf.check_is_fitted()
    params, dropped = _split_params(clf)
    try:  # a file load_model would refuse is never written
        check_params(params, "this model")
    except ModelFileError as exc:
        raise ValueError(f"cannot save {str(exc).split('; skderm.save_model')[0]}; "
                         "load_model refuses such files") from None
    state = {k: v.detach().cpu().clone() for k, v in clf.module_.state_dict().items()}
    broken = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if broken:
        raise TrainingDivergedError(f"cannot save a model whose weights are not finite ({broken[0]} "
                                    f"and {len(broken) - 1} more): training diverged; refit it "
                                    "with a lower lr")
    return {
        "params": params,
        "dropped_params": dropped,
        "classes": plain(np.asarray(clf.classes_)),
        "preprocessing": plain(clf.preprocessing_),
        "image_size": plain(clf.image_size_),
        "n_metadata": int(getattr(clf, "n_metadata_", 0)),
        "metadata_encoder": encoder_state(getattr(clf, "metadata_encoder_", None)),
        "history": _history(clf.history_),
        "state_dict": state,
    }
