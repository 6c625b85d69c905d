"""The ``skderm`` command (also ``python -m skderm``).

Subcommands:

``skderm demo [--data DIR]``
    A lesion-grouped, stratified cross-validated evaluation end to end: a
    RandomOverSampler and a LesionClassifier in an imbalanced-learn Pipeline,
    scored on balanced accuracy and MCC. Without ``--data`` it runs on a
    synthetic HAM10000-like set made on the fly, so it works on a fresh install
    with no data and no network.
``skderm backbones``
    The backbone registry and which ImageNet weights are on this machine.

Errors print one line and exit with status 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

__all__ = ["main"]


def _log(args, *msg) -> None:
    if not args.quiet:
        print(*msg, flush=True)


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
    return data.data.iloc[keep].reset_index(drop=True), data.target.iloc[keep].reset_index(
        drop=True)


def cmd_demo(args) -> int:
    import numpy as np
    import pandas as pd
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import make_pipeline
    from sklearn.model_selection import StratifiedGroupKFold, cross_validate

    from skderm import LesionClassifier, load_ham10000, make_lesions
    from skderm.model_selection import check_no_lesion_leakage

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skderm_demo_") as tmp:
        if args.data:
            data = load_ham10000(args.data)
            source = f"HAM10000 folder {args.data}"
        else:
            data = make_lesions(args.n_synthetic, random_state=args.seed, directory=tmp)
            source = f"{args.n_synthetic} synthetic lesion images (skderm.make_lesions)"
        X, y = _subsample(data, args.max_images, args.seed)
        groups = X["lesion_id"]
        _log(args, f"data: {source}: using {len(X)} images of {groups.nunique()} lesions, "
                   f"{y.nunique()} classes")
        _log(args, "classes: " + ", ".join(f"{k} {v}" for k, v in y.value_counts().items()))

        clf = LesionClassifier(
            backbone=args.backbone, image_size=tuple(args.image_size), freeze=args.freeze,
            max_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            random_state=args.seed, verbose=0 if args.quiet else 1,
            # the outer CV does the evaluation; no inner validation keeps the demo quick
            valid_size=None)
        pipe = make_pipeline(RandomOverSampler(random_state=args.seed), clf)
        cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
        for train, test in cv.split(X, y, groups):
            check_no_lesion_leakage(train, test, groups)
        _log(args, f"pipeline: RandomOverSampler -> LesionClassifier(backbone={args.backbone!r}, "
                   f"freeze={args.freeze!r}, image_size={tuple(args.image_size)}, "
                   f"max_epochs={args.epochs}); {args.folds}-fold StratifiedGroupKFold on "
                   "lesion_id (no lesion on both sides)")
        scores = cross_validate(
            pipe, X, y, groups=groups, cv=cv,
            scoring={"bacc": "balanced_accuracy", "mcc": "matthews_corrcoef"},
            error_score="raise")
    table = pd.DataFrame({"fold": np.arange(1, args.folds + 1),
                          "balanced_accuracy": scores["test_bacc"],
                          "mcc": scores["test_mcc"],
                          "fit_seconds": scores["fit_time"]})
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"balanced accuracy {table.balanced_accuracy.mean():.3f} +/- "
          f"{table.balanced_accuracy.std(ddof=1):.3f}   "
          f"MCC {table.mcc.mean():.3f} +/- {table.mcc.std(ddof=1):.3f}   "
          f"(chance balanced accuracy {1 / y.nunique():.3f}; "
          f"{time.perf_counter() - t0:.0f} s)")
    return 0


def cmd_backbones(args) -> int:
    from skderm.backbones import hub_checkpoint_dir, list_backbones

    frame = list_backbones(args.include)
    frame = frame.assign(weights=frame.weights_available.map({True: "available",
                                                              False: "missing"}))
    cols = ["name", "source", "input_size", "weights", "weights_file"]
    print(frame[cols].to_string(index=False))
    print(f"\nMissing weights are looked for in {hub_checkpoint_dir()} "
          "(set TORCH_HOME to move it) and downloaded there when online.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from skderm import __version__

    parser = argparse.ArgumentParser(
        prog="skderm", description="scikit-learn compatible skin-lesion image classifiers")
    parser.add_argument("--version", action="version", version=f"skderm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="lesion-grouped cross-validated evaluation, end to end")
    demo.add_argument("--data", metavar="DIR",
                      help="a HAM10000 folder (CSV + images); default: synthetic lesions")
    demo.add_argument("--max-images", type=int, default=1500,
                      help="subsample whole lesions to about this many images (0: all)")
    demo.add_argument("--n-synthetic", type=int, default=300,
                      help="synthetic images to make when --data is not given")
    demo.add_argument("--folds", type=int, default=3)
    demo.add_argument("--backbone", default="tf_efficientnet_lite0")
    demo.add_argument("--image-size", type=int, nargs=2, default=(96, 128),
                      metavar=("H", "W"))
    demo.add_argument("--freeze", default="backbone",
                      help="'backbone' (train the head), 'none' (fine-tune all) or N epochs")
    demo.add_argument("--epochs", type=int, default=3)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--lr", type=float, default=3e-3)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="print only the results")
    demo.set_defaults(func=cmd_demo)

    bb = sub.add_parser("backbones", help="the backbone registry and available weights")
    bb.add_argument("--include", help="only names containing this text")
    bb.add_argument("--quiet", action="store_true")
    bb.set_defaults(func=cmd_backbones)
    return parser


def _freeze_arg(value: str):
    return int(value) if value.isdigit() else value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "freeze"):
        args.freeze = _freeze_arg(args.freeze)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("skderm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line unless --debug
        if args.debug or os.environ.get("SKDERM_DEBUG"):
            raise
        print(f"skderm: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
