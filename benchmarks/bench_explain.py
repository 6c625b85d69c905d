"""What a saliency map costs: Grad-CAM and occlusion images/s on a CPU core.

The `cpu` recipe's network (EfficientNet-Lite0 at 192x256, ImageNet weights,
its head fitted for one epoch on a few real images: the cost of a map does not
depend on how well the network is trained) explains real HAM10000 images with
one torch thread; the time per image is set beside ``predict_proba``'s on the
same images and thread.

    python benchmarks/bench_explain.py --data ../shared/ham10000 [--images 32]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/ham10000")
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from skderm import load_ham10000
    from skderm.explain import grad_cam, occlusion
    from skderm.recipes import make_recipe

    data = load_ham10000(args.data)
    X, y = data.data.iloc[:64], data.target.to_numpy()[:64]
    clf = make_recipe("cpu", max_epochs=1, freeze="backbone", verbose=0, tta=False)
    clf.fit(X, y)
    test = data.data.iloc[100:100 + args.images]
    timings = {"predict_proba": [], "grad_cam": [], "occlusion": []}
    for _ in range(args.repeats):
        for name, fn in (("predict_proba", clf.predict_proba), ("grad_cam",
                         lambda X_: grad_cam(clf, X_)), ("occlusion", lambda X_: occlusion(
                         clf, X_[:4]))):
            start = time.perf_counter()
            fn(test)
            n = 4 if name == "occlusion" else len(test)
            timings[name].append(n / (time.perf_counter() - start))
    best = {k: max(v) for k, v in timings.items()}
    result = {"machine": platform.processor() or platform.machine(), "threads": 1,
              "image_size": list(clf.image_size_), "images": args.images,
              "images_per_s": timings, "best_images_per_s": best}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explain.json").write_text(json.dumps(result, indent=2))
    lines = ["| what | images/s (best of repeats) | seconds per image |", "|---|---|---|"]
    lines += [f"| {k} | {v:.2f} | {1 / v:.2f} |" for k, v in best.items()]
    lines.append("")
    lines.append(f"1 torch thread, {args.images} real images at 192x256, EfficientNet-Lite0; "
                 "occlusion on 4 images (one forward pass per patch position).")
    (RESULTS / "explain.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
