"""What mixup + CutMix cost a training epoch: the "cpu" recipe's network with and without
them, fitted alternately on the same HAM10000 images (ratios in one run).

    python benchmarks/bench_mixing.py --data ../shared/ham10000 --images 640 --repeats 3

``--variants A,B --name NAME`` compares two other ``ham10000_cv.py`` variants the
same way (B's epochs over A's) and writes ``results/NAME.{json,md}``: what
colour constancy costs, for one.

    python benchmarks/bench_mixing.py --name colour_constancy --variants \
        finetune_192_meta_all_fu3_la_mix04_cut10_tc,finetune_192_meta_all_fu3_la_mix04_cut10_tc_cc6

Each fit runs 2 epochs with every layer from ``blocks.3`` trainable from the first
(``freeze=0``), so both epochs time the training step of the recipe's later epochs.
Results go to ``benchmarks/results/mixing.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ham10000_cv as hb  # noqa: E402  (the measured variants' parameters)

from skderm import load_ham10000  # noqa: E402
from skderm.recipes import make_recipe  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("finetune_192_meta_all_fu3_la", "finetune_192_meta_all_fu3_la_mix04_cut10")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("SKDERM_HAM10000", "../shared/ham10000"))
    p.add_argument("--images", type=int, default=640)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="two ham10000_cv.py variants, the baseline first")
    p.add_argument("--name", default="mixing", help="results/NAME.{json,md}")
    args = p.parse_args(argv)
    variants = tuple(args.variants.split(","))
    unknown = [v for v in variants if v not in hb.FINETUNE_VARIANTS]
    if len(variants) != 2 or unknown:
        p.error(f"--variants {args.variants!r}: give two of ham10000_cv.py's fine-tuned "
                f"variants, comma separated (unknown: {unknown})")
    data = load_ham10000(args.data)
    idx = np.random.default_rng(0).choice(len(data.data), args.images, replace=False)
    X, y = data.data.iloc[idx], data.target.iloc[idx]
    epochs = {v: [] for v in variants}
    for _ in range(args.repeats):
        for v in variants:  # alternated, so a slow spell of the host hits both
            clf = make_recipe("cpu_images", **{**hb.FINETUNE_VARIANTS[v], "freeze": 0,
                                               "max_epochs": 2, "verbose": 0})
            clf.fit(X, y)
            epochs[v].append([float(h["dur"]) for h in clf.history_])
    plain, mixed = (np.asarray(epochs[v]) for v in variants)
    ratios = (mixed / plain).ravel()
    report = {"images": args.images, "repeats": args.repeats, "variants": list(variants),
              "epoch_seconds": epochs, "ratio_median": float(np.median(ratios)),
              "ratio_min": float(ratios.min()), "ratio_max": float(ratios.max())}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    md = ["| variant | epoch seconds (each fit: 2 epochs) |", "|---|---|"]
    md += [f"| {v} | " + "; ".join(", ".join(f"{d:.1f}" for d in r) for r in epochs[v]) + " |"
           for v in variants]
    what = ("with mixup 0.4 + CutMix / without" if variants == VARIANTS
            else f"of {variants[1]} / {variants[0]}")
    md += ["", f"Epoch time {what}, epoch by epoch: median "
               f"{report['ratio_median']:.3f} (range {report['ratio_min']:.3f}-"
               f"{report['ratio_max']:.3f}), {args.images} images."]
    (out / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return report


if __name__ == "__main__":
    main()
