"""Calibration on real HAM10000: ECE and Brier score before and after temperature scaling.

    python benchmarks/calibration.py --data ../shared/ham10000

The frozen-features recipe of ``ham10000_cv.py`` ("features"): BackboneFeatures
(tf_efficientnet_lite0 at 150x200) + StandardScaler + logistic regression
(C=0.05, class_weight="balanced"; without the flip TTA of ham10000_cv.py's
recipe, which quadruples the embedding time), over the same 5-fold
StratifiedGroupKFold on lesion_id (random_state=0). In each outer training
fold, :class:`~skderm.metrics.TemperatureScaledClassifier` fits the pipeline on
80% of the training lesions and learns the temperature on the other 20%
(lesion-grouped); the test fold is scored per image:

- ``before``: that pipeline's own probabilities (the same fit, T = 1);
- ``after``: the same probabilities tempered by the learned T;
- ``all lesions``: the pipeline fitted on every training lesion, untempered
  (what the recipe gives without a held-out part).

Nothing is tuned on the test folds. The embeddings depend on no label and no
fold (a frozen ImageNet backbone), so they are computed once for all images and
cached in ``benchmarks/.checkpoints/`` (keyed by backbone, size, TTA and the
image list); a rerun with the cache takes seconds. Results go to
``benchmarks/results/calibration.{json,md}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skderm import BackboneFeatures, load_ham10000
from skderm.metrics import TemperatureScaledClassifier, brier_score, expected_calibration_error

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CHECKPOINTS = HERE / ".checkpoints"


def embeddings(paths: list[str], backbone: str, size: tuple[int, int], tta: bool) -> np.ndarray:
    """Frozen embeddings of every image, read from or written to the cache."""
    key = hashlib.sha256("\n".join([backbone, str(size), str(tta), *paths]).encode())
    cache = CHECKPOINTS / f"embeddings_{backbone}_{size[0]}x{size[1]}_{key.hexdigest()[:16]}.npy"
    if cache.exists():
        print(f"embeddings from {cache.name}", flush=True)
        return np.load(cache)
    t = time.perf_counter()
    emb = BackboneFeatures(backbone=backbone, image_size=size, tta=tta).fit().transform(
        pd.DataFrame({"path": paths}))
    print(f"embedded {len(paths)} images in {time.perf_counter() - t:.0f} s", flush=True)
    CHECKPOINTS.mkdir(exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, cache)
    return emb


def scores(y, proba, classes) -> dict:
    ece_class = expected_calibration_error(y, proba, classes=classes, per_class=True)
    return {"ece": float(expected_calibration_error(y, proba, classes=classes)),
            "ece_per_class_mean": float(ece_class.mean()),
            "ece_per_class": {str(k): float(v) for k, v in ece_class.items()},
            "brier": float(brier_score(y, proba, classes=classes)),
            "balanced_accuracy": float(balanced_accuracy_score(
                y, np.asarray(classes)[proba.argmax(1)]))}


def run(args) -> dict:
    data = load_ham10000(args.data)
    y, groups = data.target.to_numpy(), data.groups.to_numpy()
    emb = embeddings(data.data["path"].astype(str).tolist(), args.backbone,
                     tuple(args.image_size), tta=False)
    cols = [f"e{i}" for i in range(emb.shape[1])]
    X = pd.DataFrame(emb, columns=cols)
    X["lesion_id"] = groups
    # the lesion column is there for the temperature's grouped split, not as a feature
    model = make_pipeline(ColumnTransformer([("emb", StandardScaler(), cols)]),
                          LogisticRegression(C=args.C, class_weight="balanced", max_iter=3000))
    splits = StratifiedGroupKFold(n_splits=args.folds, shuffle=True,
                                  random_state=0).split(X, y, groups)
    folds = []
    for k, (train, test) in enumerate(splits):
        assert not set(groups[train]) & set(groups[test])
        t = time.perf_counter()
        scaled = TemperatureScaledClassifier(model, holdout_size=0.2, random_state=k).fit(
            X.iloc[train], y[train])
        full = clone(model).fit(X.iloc[train], y[train])
        classes = scaled.classes_
        Xt, yt = X.iloc[test], y[test]
        row = {"fold": k, "n_test": len(test), "temperature": scaled.temperature_,
               "before": scores(yt, scaled.estimator_.predict_proba(Xt), classes),
               "after": scores(yt, scaled.predict_proba(Xt), classes),
               "all_lesions": scores(yt, full.predict_proba(Xt), classes),
               "seconds": time.perf_counter() - t}
        folds.append(row)
        print(f"fold {k}: T={row['temperature']:.3f}  ECE {row['before']['ece']:.4f} -> "
              f"{row['after']['ece']:.4f}  Brier {row['before']['brier']:.4f} -> "
              f"{row['after']['brier']:.4f}", flush=True)
    return {"recipe": f"BackboneFeatures({args.backbone}, {args.image_size[0]}x"
                      f"{args.image_size[1]}) + StandardScaler + "
                      f"LogisticRegression(C={args.C}, balanced)",
            "n_images": len(y), "n_lesions": int(pd.Series(groups).nunique()),
            "folds": folds,
            "machine": f"{platform.processor() or 'cpu'}, {os.cpu_count()} cores, torch on "
                       f"{torch.get_num_threads()} threads, load average "
                       f"{os.getloadavg()[0]:.1f} at the end"}


def _mean_sd(folds, part, key) -> str:
    v = np.array([f[part][key] for f in folds])
    return f"{v.mean():.4f} +/- {v.std(ddof=1):.4f}"


def markdown(res: dict) -> str:
    folds = res["folds"]
    t = np.array([f["temperature"] for f in folds])
    lines = [f"# Calibration: {res['recipe']}", "",
             f"{res['n_images']} images, {res['n_lesions']} lesions; 5-fold "
             "StratifiedGroupKFold on lesion_id; per image; mean +/- sd over folds.",
             f"Temperature learned per fold: {t.mean():.3f} +/- {t.std(ddof=1):.3f} "
             f"({', '.join(f'{x:.3f}' for x in t)}).", "",
             "| probabilities | top-label ECE | mean per-class ECE | Brier | balanced accuracy |",
             "|---|---|---|---|---|"]
    names = {"all_lesions": "fitted on all training lesions, untempered",
             "before": "fitted on 80% of the training lesions, untempered (T = 1)",
             "after": "the same, temperature-scaled (T learned on the other 20%)"}
    for part, name in names.items():
        lines.append(f"| {name} | " + " | ".join(_mean_sd(folds, part, key) for key in (
            "ece", "ece_per_class_mean", "brier", "balanced_accuracy")) + " |")
    classes = list(folds[0]["before"]["ece_per_class"])
    lines += ["", "Per-class ECE (one vs rest), mean over folds:", "",
              "| class | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for part in ("before", "after"):
        lines.append(f"| {part} | " + " | ".join(
            f"{np.mean([f[part]['ece_per_class'][c] for f in folds]):.4f}" for c in classes)
            + " |")
    lines += ["", f"Machine: {res['machine']}.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("SKDERM_HAM10000", "../shared/ham10000"))
    p.add_argument("--backbone", default="tf_efficientnet_lite0")
    p.add_argument("--image-size", type=int, nargs=2, default=(150, 200))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--C", type=float, default=0.05)
    args = p.parse_args()
    res = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "calibration.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "calibration.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
