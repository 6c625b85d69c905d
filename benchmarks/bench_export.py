"""onnxruntime on the CPU vs LesionClassifier.predict_proba: images per second.

The ``cpu`` recipe's network (EfficientNet-Lite0 at 192x256, colour as
decoded, the centred test crop, flip TTA, age/sex/localization metadata) is
fitted for one epoch on a few real HAM10000 images (the weights do not change
the speed), exported with :func:`skderm.export.export_model`, and then three
ways of predicting the same images are timed side by side, alternating, each
round in a rotated order:

``predict_proba``
    the classifier on a DataFrame of paths (decoding served from the warm
    in-memory cache, the metadata encoded, batches of ``batch_size``);
``InferenceModule``
    the exported torch module in eager mode (NCHW) on decoded uint8 arrays
    and the encoded metadata (what the export holds, before any graph runtime);
``onnxruntime``
    the ``.onnx`` file on the same arrays, batches of the same size.

torch and onnxruntime use the same number of threads (``--threads``). The
ratio is taken per round (onnxruntime's images/s over predict_proba's in the
same round) and its median reported, so a change in the machine's load
between rounds moves both sides of a ratio alike. The load average is
recorded: on shared cores the absolute figures move with other work.

    python benchmarks/bench_export.py              # 64 images, 5 rounds
    python benchmarks/bench_export.py --quick      # 16 images, 2 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
METHODS = ("predict_proba", "InferenceModule", "onnxruntime")


def load_rows(root, n: int, seed: int = 0):
    """``n`` real images, every class represented, as the loader's DataFrame and labels."""
    from skderm import load_ham10000

    data = load_ham10000(root)
    y = np.asarray(data.target)
    rng = np.random.default_rng(seed)
    per_class = max(1, n // len(np.unique(y)))
    rows = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class]
                           for c in np.unique(y)])
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), rows))[:max(0, n - len(rows))]
    rows = np.concatenate([rows, rest])[:n]
    return data.data.iloc[rows].reset_index(drop=True), y[rows]


def fitted_model(args, X, y):
    from skderm.recipes import make_recipe

    overrides = {"max_epochs": 1, "verbose": 0, "device": "cpu"}
    if args.backbone:
        overrides.update(backbone=args.backbone, weights=None)
    if args.image_size:
        overrides["image_size"] = tuple(args.image_size)
    clf = make_recipe("cpu", **overrides)
    return clf.fit(X, y)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("SKDERM_HAM10000",
                                                    str(HERE.parent.parent / "shared" / "ham10000")))
    p.add_argument("--images", type=int, default=64, help="images predicted per timing")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    p.add_argument("--quick", action="store_true", help="16 images, 2 rounds")
    p.add_argument("--backbone", default=None, help="instead of the recipe's (weights=None)")
    p.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="instead of the recipe's 192 256")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.rounds = 16, 2

    import onnxruntime as ort

    from skderm.export import export_model
    from skderm.images import read_image

    torch.set_num_threads(args.threads)
    X, y = load_rows(args.data, args.images)
    clf = fitted_model(args, X, y)
    batch = clf.batch_size
    images = np.stack([read_image(path, clf.image_size_) for path in X["path"]])
    metadata = clf.metadata_encoder_.transform(X[clf.metadata_columns]).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        path = export_model(clf, Path(tmp) / "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    from skderm.export import InferenceModule

    module = InferenceModule.from_classifier(clf)

    def run_predict_proba():
        return clf.predict_proba(X)

    @torch.no_grad()
    def run_module():
        return np.concatenate([module(torch.from_numpy(images[i:i + batch]),
                                      torch.from_numpy(metadata[i:i + batch])).numpy()
                               for i in range(0, len(images), batch)])

    def run_onnx():
        return np.concatenate([session.run(None, {"images": images[i:i + batch],
                                                  "metadata": metadata[i:i + batch]})[0]
                               for i in range(0, len(images), batch)])

    runs = dict(zip(METHODS, (run_predict_proba, run_module, run_onnx), strict=True))
    reference = run_predict_proba()  # also warms the decoded-image cache
    max_abs = {m: float(np.abs(runs[m]() - reference).max()) for m in METHODS[1:]}
    seconds = {m: [] for m in METHODS}
    load = [os.getloadavg()]
    for r in range(args.rounds):
        order = METHODS[r % 3:] + METHODS[:r % 3]
        for m in order:
            t = time.perf_counter()
            runs[m]()
            seconds[m].append(time.perf_counter() - t)
        print(f"round {r + 1}: " + ", ".join(f"{m} {len(X) / seconds[m][-1]:.2f} img/s"
                                              for m in METHODS), flush=True)
    load.append(os.getloadavg())
    rates = {m: [len(X) / s for s in seconds[m]] for m in METHODS}
    report = {
        "model": {"recipe": "cpu", "backbone": clf.backbone, "image_size": list(clf.image_size_),
                  "tta": clf.tta, "test_crop": clf.test_crop,
                  "metadata_columns": list(clf.metadata_columns), "batch_size": batch},
        "images": len(X), "rounds": args.rounds, "threads": args.threads,
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_average_start": list(load[0]), "load_average_end": list(load[-1]),
        "torch": torch.__version__, "onnxruntime": ort.__version__,
        "images_per_s": {m: float(np.median(rates[m])) for m in METHODS},
        "images_per_s_rounds": rates,
        # per round, then the median: both sides of a ratio saw the same load
        "ratio_to_predict_proba": {m: float(np.median(np.divide(rates[m],
                                                                rates["predict_proba"])))
                                   for m in METHODS},
        "max_abs_difference_to_predict_proba": max_abs,
        "command": " ".join(["python benchmarks/bench_export.py",
                             *(sys.argv[1:] if argv is None else argv)]),
    }
    table = markdown(report)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    Path(args.out, "export.json").write_text(json.dumps(report, indent=2) + "\n")
    Path(args.out, "export.md").write_text(table)
    return report


def markdown(report: dict) -> str:
    m = report["model"]
    la0, la1 = report["load_average_start"], report["load_average_end"]
    lines = [
        f"`{report['command']}`: the cpu recipe's network ({m['backbone']}, "
        f"{m['image_size'][0]}x{m['image_size'][1]}, test_crop={m['test_crop']!r}, "
        f"tta={m['tta']}, metadata {', '.join(m['metadata_columns'])}), {report['images']} real "
        f"HAM10000 images in batches of {m['batch_size']}, {report['threads']} thread(s) for "
        f"torch and onnxruntime, median of {report['rounds']} alternating rounds; torch "
        f"{report['torch']}, onnxruntime {report['onnxruntime']}.",
        "",
        f"The {report['cpus']} CPU cores were shared with other work while this ran (load "
        f"average {la0[0]:.1f} / {la0[1]:.1f} / {la0[2]:.1f} at the start, {la1[0]:.1f} / "
        f"{la1[1]:.1f} / {la1[2]:.1f} at the end): the images/s move with that load; the "
        "ratios, taken within each round, move less.",
        "",
        "| predicts with | images/s | x predict_proba | max abs difference to predict_proba |",
        "|---|---|---|---|",
    ]
    for name in METHODS:
        diff = report["max_abs_difference_to_predict_proba"].get(name)
        lines.append(f"| {name} | {report['images_per_s'][name]:.2f} | "
                     f"{report['ratio_to_predict_proba'][name]:.2f} | "
                     f"{'' if diff is None else f'{diff:.1e}'} |")
    lines += ["", "images/s: the median over rounds; x predict_proba: the median of the "
              "per-round ratios. InferenceModule is the exported graph run by eager torch in "
              "the default (NCHW) memory format, where predict_proba runs channels_last on "
              "the CPU."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
