"""``skderm demo``: the showcase, end to end, running the code of examples/grid_search.py.

:func:`make_grid_search` is that code: a RandomOverSampler and a
LesionClassifier in an imbalanced-learn Pipeline, searched over the learning
rate on lesion-grouped stratified folds, scored on balanced accuracy and MCC.
The demo then reports the refitted best model on lesions it never saw.
"""

from __future__ import annotations

import tempfile
import time

from skderm.cli.options import at_least, freeze_value
from skderm.cli.outputs import check_outputs

__all__ = ["add_parser", "make_grid_search", "run"]


def make_grid_search(*, backbone: str = "tf_efficientnet_lite0",
                     image_size: tuple[int, int] = (112, 150), freeze="backbone",
                     epochs: int = 5, batch_size: int = 32, lr: float = 3e-3, folds: int = 3,
                     seed: int = 0, verbose: int = 0, progress: bool = False):
    """An unfitted GridSearchCV of the showcase pipeline; fit it with ``groups=lesion ids``.

    The pipeline oversamples rare classes (rows, not pixels) before a
    LesionClassifier; candidates are ``lr`` and ``lr / 3``; the folds are
    StratifiedGroupKFold, so no lesion is on both sides; the refit is on
    balanced accuracy. ``progress`` prints "fit k of n" before each fit.
    """
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import make_pipeline
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from skderm import LesionClassifier
    from skderm.classifier.callbacks import FitProgress
    from skderm.metrics import get_scorers

    total = 2 * folds + 1  # two candidates on every fold, then the refit
    callbacks = [("fit_progress", FitProgress(total, f"demo-{time.time_ns()}"))] if progress \
        else None
    clf = LesionClassifier(backbone=backbone, image_size=tuple(image_size), freeze=freeze,
                           max_epochs=epochs, batch_size=batch_size, lr=lr,
                           random_state=seed, verbose=verbose, callbacks=callbacks,
                           # the lesion-grouped folds do the evaluating: no inner split
                           valid_size=None)
    return GridSearchCV(make_pipeline(RandomOverSampler(random_state=seed), clf),
                        {"lesionclassifier__lr": [lr, lr / 3]},
                        cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed),
                        scoring=get_scorers(probabilities=False),
                        refit="bacc", error_score="raise")


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="lesion-grouped grid search and held-out report, end to end")
    p.add_argument("--data", metavar="DIR",
                   help="a HAM10000 folder (CSV + images); default: synthetic lesions")
    p.add_argument("--max-images", type=at_least(0), default=1500,
                   help="subsample whole lesions to about this many images (0: all)")
    p.add_argument("--n-synthetic", type=at_least(1),
                   default=300, help="synthetic images to make when --data is not given")
    p.add_argument("--folds", type=at_least(2), default=3)
    p.add_argument("--backbone", default="tf_efficientnet_lite0")
    p.add_argument("--image-size", type=at_least(1), nargs=2, default=(96, 128),
                   metavar=("H", "W"))
    p.add_argument("--freeze", type=freeze_value, default="backbone",
                   help="'backbone' (train the head), 'none' (fine-tune all) or N epochs")
    p.add_argument("--epochs", type=at_least(1), default=3)
    p.add_argument("--batch-size", type=at_least(1), default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR",
                   help="also write metrics.json, report.csv and PNGs of the held-out report")
    p.add_argument("--quiet", action="store_true", help="print only the results")
    p.set_defaults(func=run)


def _subsample(data, max_images: int, seed: int):
    """Keep whole lesions, stratified by class, until about ``max_images`` images."""
    import numpy as np

    from skderm.model_selection import grouped_split_indices

    n = len(data.target)
    if not max_images or n <= max_images:
        return data.data, data.target
    # the held-out part of a grouped, stratified split is the subsample
    _, keep = grouped_split_indices(data.target.to_numpy(), data.groups.to_numpy(),
                                    test_size=max_images / n, random_state=seed)
    keep = np.sort(keep)
    return (data.data.iloc[keep].reset_index(drop=True),
            data.target.iloc[keep].reset_index(drop=True))


def _held_out_split(X, y, seed, log):
    """A quarter of the lesions, never seen by model selection."""
    from skderm.model_selection import lesion_train_test_split

    try:
        return lesion_train_test_split(X, y, groups="lesion_id", stratify=y, test_size=0.25,
                                       random_state=seed)
    except ValueError as exc:  # too few lesions of a rare class to stratify
        log(f"note: held-out split not stratified ({str(exc).split(';')[0]})")
        return lesion_train_test_split(X, y, groups="lesion_id", test_size=0.25,
                                       random_state=seed)


def _print_search(search, folds: int) -> None:
    import numpy as np
    import pandas as pd

    res = search.cv_results_

    def mean_sd(score):
        return [f"{m:.3f} +/- {s:.3f}" for m, s in
                zip(res[f"mean_test_{score}"], res[f"std_test_{score}"], strict=True)]

    table = pd.DataFrame({"lr": res["param_lesionclassifier__lr"],
                          "balanced_accuracy": mean_sd("bacc"), "mcc": mean_sd("mcc"),
                          "rank": res["rank_test_bacc"]})
    best = search.best_index_
    bacc = [res[f"split{k}_test_bacc"][best] for k in range(folds)]
    mcc = [res[f"split{k}_test_mcc"][best] for k in range(folds)]
    print("\ngrid search (mean +/- sd over lesion-grouped folds):")
    print(table.to_string(index=False))
    print(f"cross-validated, best candidate: balanced accuracy {np.mean(bacc):.3f} +/- "
          f"{np.std(bacc, ddof=1):.3f}   MCC {np.mean(mcc):.3f} +/- {np.std(mcc, ddof=1):.3f}"
          "   (per fold: " + ", ".join(f"{b:.3f}" for b in bacc) + ")")


def run(args, log) -> int:
    from skderm import load_ham10000, make_lesions
    from skderm.cli.report import write_report
    from skderm.metrics import bootstrap_report, classification_report_frame

    check_outputs([(args.out, "dir", "--out")], data_folders=[args.data] if args.data else [])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skderm_demo_") as tmp:
        if args.data:
            data, source = load_ham10000(args.data), f"HAM10000 folder {args.data}"
        else:
            data = make_lesions(args.n_synthetic, random_state=args.seed, directory=tmp)
            source = f"{args.n_synthetic} synthetic lesion images (skderm.make_lesions)"
        X, y = _subsample(data, args.max_images, args.seed)
        log(f"data: {source}: using {len(X)} images of {X['lesion_id'].nunique()} lesions, "
            f"{y.nunique()} classes")
        X_train, X_test, y_train, y_test = _held_out_split(X, y, args.seed, log)
        search = make_grid_search(backbone=args.backbone, image_size=args.image_size,
                                  freeze=args.freeze, epochs=args.epochs,
                                  batch_size=args.batch_size, lr=args.lr, folds=args.folds,
                                  seed=args.seed, verbose=0 if args.quiet else 1,
                                  progress=not args.quiet)
        log(f"pipeline: RandomOverSampler -> LesionClassifier(backbone={args.backbone!r}); "
            f"grid {search.param_grid} over {args.folds} lesion-grouped stratified folds of "
            f"{len(X_train)} images; {len(X_test)} images of {X_test['lesion_id'].nunique()} "
            "other lesions held out")
        log(f"it trains {2 * args.folds + 1} networks of {args.epochs} epochs each (two "
            f"candidates on each of {args.folds} folds, then the best refitted on all "
            f"{len(X_train)} images): a few minutes on 2 CPU cores")
        search.fit(X_train, y_train, groups=X_train["lesion_id"])
        _print_search(search, args.folds)

        model = search.best_estimator_
        proba = model.predict_proba(X_test)
        classes = model.classes_
        y_pred = classes[proba.argmax(axis=1)]
        report = classification_report_frame(y_test.to_numpy(), y_pred, proba, classes=classes)
        boot = bootstrap_report(y_test.to_numpy(), y_pred, groups=X_test["lesion_id"].to_numpy(),
                                n_boot=500, random_state=args.seed)
        per_class = report.loc[[c for c in classes if c in report.index],
                               ["recall", "specificity", "f1", "auc", "support"]]
        print(f"\nheld-out lesions, refitted best model ({len(X_test)} images):")
        print(per_class.to_string(float_format=lambda v: f"{v:.3f}"))
        b, m = boot.loc["balanced_accuracy"], boot.loc["mcc"]
        print(f"held-out: balanced accuracy {b.estimate:.3f} [95% CI {b.low:.3f}-{b.high:.3f}]"
              f"   MCC {m.estimate:.3f} [{m.low:.3f}-{m.high:.3f}]   (chance balanced accuracy "
              f"{1 / y.nunique():.3f}; {time.perf_counter() - t0:.0f} s)")
        if args.out:
            written = write_report(args.out, y_test.to_numpy(), y_pred, proba, classes, report,
                                   log)
            log(f"wrote {', '.join(written)} to {args.out}")
    return 0
