"""Three pipeline costs of issue 6, on real HAM10000 images, in one run.

features    BackboneFeatures.transform vs a hand-written embedding loop (same
            backbone, weights, images, batch size, memory format): images/s of
            each, repetitions alternating who goes first, embedding cache
            cleared before every skderm call; ratio of medians and median of
            paired ratios (target >= 0.95), and the largest feature difference.
loader      Time a LesionClassifier fit spends waiting for its next batch: from
            the end of one training batch (or the start of the epoch) to the
            start of the next, summed, as a share of the epoch (target < 5%).
            This counts skorch's per-batch bookkeeping as waiting too.
search      GridSearchCV over k logistic-regression candidates on
            BackboneFeatures, lesion-grouped 3-fold, for k = 1 and k = 4: wall
            time and images embedded (the per-image embedding cache makes it
            one pass over the images in all, whatever k and the folds).

    python benchmarks/bench_pipeline.py --data ../shared/ham10000

Writes benchmarks/results/pipeline.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback

from skderm import BackboneFeatures, LesionClassifier, load_ham10000
from skderm.backbones import build_backbone
from skderm.classifier.network import LesionNet
from skderm.features import clear_embedding_cache, embedding_cache_info
from skderm.images import load_images

RESULTS = Path(__file__).resolve().parent / "results"


def subset(root: str, n: int, seed: int = 0):
    data = load_ham10000(root)
    idx = np.sort(np.random.default_rng(seed).permutation(len(data.target))[:n])
    return (data.data.iloc[idx].reset_index(drop=True),
            data.target.iloc[idx].reset_index(drop=True))


# --------------------------------------------------------------------------
# features: BackboneFeatures.transform vs a hand-written loop
# --------------------------------------------------------------------------

def hand_embed(net: LesionNet, images, batch_size: int, channels_last: bool) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.stack(images[start:start + batch_size])).permute(0, 3, 1, 2)
            x = x.contiguous(memory_format=torch.channels_last if channels_last
                             else torch.contiguous_format)
            out.append(net.features(x).float().numpy())
    return np.concatenate(out)


def bench_features(X, args) -> dict:
    size = tuple(args.image_size)
    emb = BackboneFeatures(backbone=args.backbone, image_size=size,
                           batch_size=args.batch_size, device="cpu").fit()
    backbone, n_features, spec = build_backbone(args.backbone)
    net = LesionNet(backbone, n_features, 1, spec.mean, spec.std).eval()
    net.requires_grad_(False)
    channels_last = next(emb.module_.parameters()).is_contiguous(
        memory_format=torch.channels_last) and next(emb.module_.parameters()).dim() == 4
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    paths = X["path"].tolist()
    images = load_images(paths, size)  # both sides start from the decoded uint8 cache

    def skderm_side():
        clear_embedding_cache()
        t = time.perf_counter()
        f = emb.transform(X)
        return time.perf_counter() - t, f

    def hand_side():
        t = time.perf_counter()
        f = hand_embed(net, images, args.batch_size, channels_last)
        return time.perf_counter() - t, f

    skderm_side(), hand_side()  # warm-up
    times = {"skderm": [], "handwritten": []}
    for rep in range(args.repeats):
        order = (("skderm", skderm_side), ("handwritten", hand_side))
        for name, fn in (order if rep % 2 == 0 else order[::-1]):
            seconds, feats = fn()
            times[name].append(seconds)
            if name == "skderm":
                f_sk = feats
            else:
                f_hand = feats
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = [h / s for s, h in zip(times["skderm"], times["handwritten"], strict=True)]
    return {"n_images": len(paths), "channels_last": channels_last,
            "images_per_s": {k: len(paths) / v for k, v in med.items()},
            "ratio": med["handwritten"] / med["skderm"],
            "median_paired_ratio": statistics.median(paired), "times_s": times,
            "max_abs_feature_diff": float(np.abs(f_sk - f_hand).max())}


# --------------------------------------------------------------------------
# loader: time waiting for batches during fit
# --------------------------------------------------------------------------

class BatchClock(Callback):
    def initialize(self):
        self.epochs = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append({"begin": time.perf_counter(), "wait": 0.0, "batches": 0})
        self._last = self.epochs[-1]["begin"]
        self._training = True

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.epochs[-1]["wait"] += time.perf_counter() - self._last

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self._last = time.perf_counter()
            self.epochs[-1]["batches"] += 1
            self.epochs[-1]["train_end"] = self._last


def bench_loader(X, y, args) -> dict:
    clock = BatchClock()
    clf = LesionClassifier(backbone=args.backbone, image_size=tuple(args.image_size),
                           batch_size=args.batch_size, max_epochs=args.loader_epochs,
                           valid_size=None, verbose=0, random_state=0, device="cpu",
                           callbacks=[("clock", clock)])
    load_images(X["path"].tolist(), tuple(args.image_size))  # decoding is measured elsewhere
    clf.fit(X, y)
    rows = []
    for e in clock.epochs:
        span = e["train_end"] - e["begin"]
        rows.append({"train_seconds": span, "wait_seconds": e["wait"],
                     "wait_share": e["wait"] / span, "batches": e["batches"]})
    return {"n_images": len(X), "epochs": rows,
            "max_wait_share": max(r["wait_share"] for r in rows)}


# --------------------------------------------------------------------------
# search: k candidates, one embedding pass
# --------------------------------------------------------------------------

def bench_search(X, y, groups, args) -> dict:
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = []
    for k in (1, 4):
        pipe = make_pipeline(BackboneFeatures(backbone=args.backbone,
                                              image_size=tuple(args.image_size), device="cpu"),
                             StandardScaler(),
                             LogisticRegression(class_weight="balanced", max_iter=2000))
        grid = {"logisticregression__C": list(np.logspace(-3, 0, k))}
        search = GridSearchCV(pipe, grid, cv=StratifiedGroupKFold(3), scoring="balanced_accuracy")
        clear_embedding_cache()
        t = time.perf_counter()
        search.fit(X, y, groups=groups)
        cold = time.perf_counter() - t
        embedded = embedding_cache_info()["misses"]
        # the same search again with every embedding cached: the difference is
        # what the embedding passes cost
        t = time.perf_counter()
        clone(search).fit(X, y, groups=groups)
        warm = time.perf_counter() - t
        rows.append({"candidates": k, "fits": 3 * k + 1, "seconds": cold,
                     "seconds_embeddings_cached": warm, "embedding_seconds": cold - warm,
                     "images_embedded": embedded, "best_score": float(search.best_score_)})
    return {"n_images": len(X), "rows": rows,
            "time_ratio_k4_over_k1": rows[1]["seconds"] / rows[0]["seconds"],
            "embedding_time_ratio_k4_over_k1": (rows[1]["embedding_seconds"]
                                                / rows[0]["embedding_seconds"])}


def markdown(res: dict, args) -> str:
    f, lo, s = res["features"], res["loader"], res["search"]
    lines = [
        f"{args.backbone}, ImageNet weights, {args.image_size[0]}x{args.image_size[1]}, batch "
        f"{args.batch_size}, torch threads {res['torch_threads']}, load average at the end "
        f"{res['load_average_end']}.", "",
        "| measurement | skderm | hand-written | ratio (target) |", "|---|---:|---:|---:|",
        f"| BackboneFeatures.transform, {f['n_images']} images, img/s (median of "
        f"{args.repeats}) | {f['images_per_s']['skderm']:.1f} | "
        f"{f['images_per_s']['handwritten']:.1f} | {f['ratio']:.3f} (paired "
        f"{f['median_paired_ratio']:.3f}; >= 0.95) |", "",
        f"Largest feature difference skderm vs hand-written: {f['max_abs_feature_diff']:.1e}.",
        "", "| fit epoch | training time, s | waiting for batches, s | share (target < 5%) |",
        "|---|---:|---:|---:|"]
    for i, r in enumerate(lo["epochs"], 1):
        lines.append(f"| {i} ({r['batches']} batches of {lo['n_images']} images) | "
                     f"{r['train_seconds']:.1f} | {r['wait_seconds']:.2f} | "
                     f"{100 * r['wait_share']:.2f}% |")
    lines += ["", "| GridSearchCV, 3 lesion-grouped folds | fits | wall time, s | same, "
              "embeddings cached, s | embedding time, s | images embedded | best bacc |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in s["rows"]:
        lines.append(f"| {r['candidates']} candidate(s), {s['n_images']} images | {r['fits']} | "
                     f"{r['seconds']:.1f} | {r['seconds_embeddings_cached']:.1f} | "
                     f"{r['embedding_seconds']:.1f} | {r['images_embedded']} | "
                     f"{r['best_score']:.3f} |")
    lines.append(f"\nk = 4 costs {s['time_ratio_k4_over_k1']:.2f}x the wall time of k = 1 "
                 f"(the logistic regressions) and {s['embedding_time_ratio_k4_over_k1']:.2f}x "
                 "its embedding time.")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("SKDERM_HAM10000", "../shared/ham10000"))
    p.add_argument("--backbone", default="tf_efficientnet_lite0")
    p.add_argument("--image-size", type=int, nargs=2, default=(112, 150))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-features-images", type=int, default=512)
    p.add_argument("--n-loader-images", type=int, default=512)
    p.add_argument("--loader-epochs", type=int, default=2)
    p.add_argument("--n-search-images", type=int, default=600)
    p.add_argument("--repeats", type=int, default=9)
    args = p.parse_args()
    X, y = subset(args.data, max(args.n_features_images, args.n_loader_images,
                                 args.n_search_images))
    res = {"torch_threads": torch.get_num_threads()}
    res["features"] = bench_features(X.iloc[:args.n_features_images], args)
    print("features:", {k: v for k, v in res["features"].items() if k != "times_s"}, flush=True)
    res["loader"] = bench_loader(X.iloc[:args.n_loader_images], y.iloc[:args.n_loader_images],
                                 args)
    print("loader:", res["loader"], flush=True)
    n = args.n_search_images
    res["search"] = bench_search(X.iloc[:n], y.iloc[:n], X["lesion_id"].iloc[:n], args)
    print("search:", res["search"], flush=True)
    res["load_average_end"] = [round(v, 1) for v in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(res, indent=2, default=float))
    table = markdown(res, args)
    (RESULTS / "pipeline.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
