"""``skderm cv``: lesion-grouped stratified K-fold cross-validation of a recipe."""

from __future__ import annotations

import os
import time

from skderm.cli.options import add_training_options, at_least
from skderm.cli.outputs import check_outputs, image_folders

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("cv", help="lesion-grouped stratified cross-validation")
    add_training_options(p)
    p.add_argument("--folds", type=at_least(2), default=5, help="number of folds, 2 or more")
    p.add_argument("--out", metavar="DIR", help="folder for results.csv and learning curves")
    p.set_defaults(func=run)


def run(args, log) -> int:
    import pandas as pd
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    from skderm import load_ham10000
    from skderm._utils.files import atomic_write
    from skderm.cli.models import build_model, decided_by, describe, epochs, named_members
    from skderm.cli.report import plotting_or_none
    from skderm.model_selection import check_no_lesion_leakage

    outputs = [(args.out, "dir", "--out"), (args.checkpoint_dir, "dir", "--checkpoint-dir")]
    check_outputs(outputs, data_folders=[args.data])
    data = load_ham10000(args.data)
    check_outputs(outputs, data_folders=image_folders(data.data["path"]))
    X, y, groups = data.data, data.target, data.groups
    template = build_model(args, log)
    plotting = plotting_or_none(log) if args.out else None
    cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=0)
    log(f"{args.folds}-fold StratifiedGroupKFold on lesion_id of {len(y)} images "
        f"({groups.nunique()} lesions): {describe(template)}")
    rows = []
    for k, (train, test) in enumerate(cv.split(X, y, groups), start=1):
        check_no_lesion_leakage(train, test, groups)
        clf = clone(template)
        t0 = time.perf_counter()
        clf.fit(X.iloc[train], y.iloc[train])
        row = {"fold": k, "n_train": len(train), "n_test": len(test)}
        pred, image_pred = _fold_predictions(clf, X.iloc[test])
        row |= _scores(y.iloc[test], pred, "")
        if image_pred is not None:  # the same networks' argmax, image by image
            row |= _scores(y.iloc[test], image_pred, "_image")
        rows.append(row | {"epochs": epochs(clf), "fit_seconds": time.perf_counter() - t0})
        log(f"fold {k}: balanced accuracy {row['balanced_accuracy']:.3f}, MCC {row['mcc']:.3f}")
        if plotting is not None:
            for name, member in named_members(clf):
                suffix = f"_{name}" if name else ""
                plotting.save_figure(plotting.plot_learning_curves(member.history_),
                                     os.path.join(args.out, f"learning_curves_fold{k}{suffix}.png"))
    table = pd.DataFrame(rows)
    if args.out:
        with atomic_write(os.path.join(args.out, "results.csv"), "w") as fh:
            table.to_csv(fh, index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    note = f" ({decided_by(template)})" if decided_by(template) != "argmax" else ""
    print(f"{_mean_sd(table, '')}   (chance balanced accuracy {1 / y.nunique():.3f}){note}")
    if "balanced_accuracy_image" in table:
        print(f"image by image, argmax: {_mean_sd(table, '_image')}")
    return 0


def _scores(y_true, y_pred, suffix: str) -> dict:
    from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef

    return {f"balanced_accuracy{suffix}": balanced_accuracy_score(y_true, y_pred),
            f"mcc{suffix}": matthews_corrcoef(y_true, y_pred)}


def _mean_sd(table, suffix: str) -> str:
    import numpy as np

    bacc, mcc = table[f"balanced_accuracy{suffix}"], table[f"mcc{suffix}"]
    return (f"balanced accuracy {bacc.mean():.3f} +/- {np.std(bacc, ddof=1):.3f}   "
            f"MCC {mcc.mean():.3f} +/- {np.std(mcc, ddof=1):.3f}")


def _fold_predictions(clf, X):
    """The model's labels for X and, for a LesionLevelClassifier, its network's own
    image-by-image argmax (else None), from one pass through the network."""
    import numpy as np

    from skderm.cli.models import unwrapped

    inner = unwrapped(clf)
    if inner is clf:
        return clf.predict(X), None
    proba = inner.predict_proba(X)
    return clf.decide(clf.pool(proba, X)), np.asarray(inner.classes_)[proba.argmax(axis=1)]
