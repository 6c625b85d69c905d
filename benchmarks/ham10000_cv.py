"""Diagnostic quality on real HAM10000: 5-fold StratifiedGroupKFold on lesion_id.

Recipes (``--recipes``, comma separated):

features      frozen ImageNet embeddings (BackboneFeatures, flip TTA) + logistic
              regression (class_weight="balanced")
fusion        the same embeddings + one-hot sex/localization + imputed, scaled age
finetune      a fine-tuned LesionClassifier (slow on CPU: see --epochs/--image-size)
ensemble      soft vote of ``fusion`` models on each backbone in --backbones

For each: balanced accuracy and MCC mean +/- sd over folds, bootstrap 95%
intervals (lesion-grouped) on the pooled out-of-fold predictions, per-class
recall, and wall time. Results go to benchmarks/results/ham10000_cv.{json,md}.

    python benchmarks/ham10000_cv.py --data ../shared/ham10000 --recipes features,fusion
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef, recall_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skderm import BackboneFeatures, LesionClassifier, load_ham10000
from skderm.metrics import bootstrap_report

RESULTS = Path(__file__).resolve().parent / "results"


def features_model(backbone, size, C, metadata: bool):
    emb = BackboneFeatures(backbone=backbone, image_size=size, tta=True)
    parts = [("image", make_pipeline(emb, StandardScaler()), ["path"])]
    if metadata:
        parts += [("site", OneHotEncoder(handle_unknown="ignore"), ["sex", "localization"]),
                  ("age", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                   ["age"])]
    return make_pipeline(ColumnTransformer(parts),
                         LogisticRegression(C=C, class_weight="balanced", max_iter=3000))


def build(recipe: str, args):
    size = tuple(args.image_size)
    if recipe == "features":
        return features_model(args.backbones[0], size, args.C, metadata=False)
    if recipe == "fusion":
        return features_model(args.backbones[0], size, args.C, metadata=True)
    if recipe == "ensemble":
        members = [(b, features_model(b, size, args.C, metadata=True)) for b in args.backbones]
        return VotingClassifier(members, voting="soft")
    if recipe == "finetune":
        return LesionClassifier(backbone=args.backbones[0], image_size=size, freeze=1,
                                max_epochs=args.epochs, lr=args.lr, backbone_lr=args.lr / 3,
                                class_weight="balanced", patience=4, monitor="bacc",
                                batch_size=32, random_state=0, verbose=1)
    raise ValueError(f"unknown recipe {recipe!r}")


def run(recipe, X, y, groups, args) -> dict:
    cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=0)
    pred = np.empty(len(y), dtype=object)
    folds, t0 = [], time.perf_counter()
    for k, (train, test) in enumerate(cv.split(X, y, groups)):
        assert not set(groups.iloc[train]) & set(groups.iloc[test])
        t = time.perf_counter()
        model = clone(build(recipe, args)).fit(X.iloc[train], y.iloc[train])
        pred[test] = model.predict(X.iloc[test])
        folds.append({"fold": k, "bacc": balanced_accuracy_score(y.iloc[test], pred[test]),
                      "mcc": matthews_corrcoef(y.iloc[test], pred[test]),
                      "seconds": time.perf_counter() - t})
        print(f"  {recipe} fold {k}: bacc {folds[-1]['bacc']:.3f} mcc {folds[-1]['mcc']:.3f} "
              f"({folds[-1]['seconds']:.0f} s)", flush=True)
    f = pd.DataFrame(folds)
    boot = bootstrap_report(y.to_numpy(), pred.astype(str), groups=groups.to_numpy(),
                            n_boot=1000, random_state=0)
    classes = sorted(y.unique())
    recall = recall_score(y, pred.astype(str), labels=classes, average=None)
    return {
        "recipe": recipe, "backbones": args.backbones, "image_size": list(args.image_size),
        "bacc_mean": f.bacc.mean(), "bacc_sd": f.bacc.std(ddof=1),
        "mcc_mean": f.mcc.mean(), "mcc_sd": f.mcc.std(ddof=1),
        "bacc_ci": [boot.loc["balanced_accuracy", "low"], boot.loc["balanced_accuracy", "high"]],
        "mcc_ci": [boot.loc["mcc", "low"], boot.loc["mcc", "high"]],
        "recall": dict(zip(classes, np.round(recall, 3).tolist(), strict=True)),
        "wall_seconds": time.perf_counter() - t0,
        "folds": folds,
    }


def markdown(results: list[dict]) -> str:
    lines = ["| recipe | backbones | size | balanced acc. (mean +/- sd) | 95% CI | MCC | 95% CI "
             "| wall time |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['recipe']} | {', '.join(r['backbones'])} | {r['image_size'][0]}x"
            f"{r['image_size'][1]} | {r['bacc_mean']:.3f} +/- {r['bacc_sd']:.3f} | "
            f"{r['bacc_ci'][0]:.3f}-{r['bacc_ci'][1]:.3f} | {r['mcc_mean']:.3f} +/- "
            f"{r['mcc_sd']:.3f} | {r['mcc_ci'][0]:.3f}-{r['mcc_ci'][1]:.3f} | "
            f"{r['wall_seconds'] / 60:.1f} min |")
    lines += ["", "Per-class recall:", "",
              "| recipe | " + " | ".join(results[0]["recall"]) + " |",
              "|---|" + "---|" * len(results[0]["recall"])]
    for r in results:
        lines.append(f"| {r['recipe']} | " + " | ".join(f"{v:.2f}" for v in r["recall"].values())
                     + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("SKDERM_HAM10000", "../shared/ham10000"))
    p.add_argument("--recipes", default="features,fusion")
    p.add_argument("--backbones", default="tf_efficientnet_lite0")
    p.add_argument("--image-size", type=int, nargs=2, default=(150, 200))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--C", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tag", default="", help="suffix of the results files")
    args = p.parse_args()
    args.backbones = args.backbones.split(",")
    data = load_ham10000(args.data)
    X, y, groups = data.data, data.target, data.groups
    print(f"{len(X)} images, {groups.nunique()} lesions; {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores", flush=True)
    results = [run(r, X, y, groups, args) for r in args.recipes.split(",")]
    RESULTS.mkdir(exist_ok=True)
    stem = "ham10000_cv" + (f"_{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2, default=float))
    table = markdown(results)
    (RESULTS / f"{stem}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
