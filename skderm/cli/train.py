"""``skderm train``: fit a recipe on a HAM10000 folder and save the model."""

from __future__ import annotations

import time

from skderm.cli.options import add_training_options
from skderm.cli.outputs import check_outputs, image_folders

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a LesionClassifier and save it")
    add_training_options(p)
    p.add_argument("--out", metavar="MODEL", required=True, help="model file to write")
    p.set_defaults(func=run)


def run(args, log) -> int:
    from skderm import load_ham10000
    from skderm.cli.models import build_model, describe, epochs
    from skderm.persistence import save_model

    if args.checkpoint_dir is None:
        args.checkpoint_dir = f"{args.out}.checkpoints"  # beside the model, never in the data
    outputs = [(args.out, "file", "--out"), (args.checkpoint_dir, "dir", "--checkpoint-dir")]
    check_outputs(outputs, data_folders=[args.data])
    t0 = time.perf_counter()
    data = load_ham10000(args.data)
    check_outputs(outputs, data_folders=image_folders(data.data["path"]))
    clf = build_model(args, log)
    log(f"training {describe(clf)} on {len(data.target)} images of "
        f"{data.groups.nunique()} lesions from {args.data}")
    clf.fit(data.data, data.target)
    save_model(clf, args.out)
    print(f"trained on {len(data.target)} images, {len(clf.classes_)} classes "
          f"({', '.join(map(str, clf.classes_))}), {epochs(clf)} epochs in "
          f"{time.perf_counter() - t0:.0f} s; saved to {args.out}")
    return 0
