"""Does predicting 10,000 images in one call stream, in bounded memory? And the disk cache.

**Streaming.** The script writes 10,000 distinct image files into a temporary
folder under ``/tmp`` (HAM10000 JPEGs copied with distinct names; each copy
gets a unique trailer after the JPEG end marker, so all 10,000 files differ
byte-wise, as 10,000 real images would, while decoding to the HAM10000 pixels;
hard links would share content and skderm's content-keyed caches would embed
only the 8,012 originals). Then, for each ``--sizes`` value, a fresh process

1. builds the estimator: ``BackboneFeatures(backbone, image_size).fit()``, or,
   with ``--estimator classifier``, a ``LesionClassifier`` fitted once by the
   parent (64 images, 1 epoch, head only) and unpickled;
2. warms torch up on two batches of random in-memory images (one-time
   allocations and a full batch's activations; no cache touched) and records
   its RSS;
3. calls ``transform`` / ``predict_proba`` once on the first ``n`` paths, while a
   thread samples anonymous RSS every 10 ms;
4. reports the peak RSS (``getrusage().ru_maxrss``), the growth over step 2,
   the decoded-image cache, the embedding cache and the output array.

With ``--baseline`` (the default for ``BackboneFeatures``), the largest size runs
once more with one chunk of ``n`` images: the decode-everything-first behaviour
skderm had before streaming, measured side by side.

**Disk cache** (``--disk-images``, default 2,000; 0 skips it): on that many
HAM10000 files (read in place, never written), at ``--disk-size``, median of 3
interleaved repetitions of: a cold decode with the disk cache off; a cold decode
that also hashes and writes the disk cache; a new-process read from the disk
cache (``clear_cache()`` empties memory and the digest memo); a warm read from
memory. Source files and cache entries are both in the page cache.

Results go to ``results/stream.json`` and ``results/stream.md``: each run adds
(or replaces) the section of its estimator, backbone and image size, so a run
with ``--estimator classifier`` lands next to the ``BackboneFeatures`` ones.
The folder of copies is deleted at the end.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_stream.py        # BackboneFeatures, 1,000 vs 10,000
    OMP_NUM_THREADS=2 python benchmarks/bench_stream.py --image-size 64 80   # the run in results/
    OMP_NUM_THREADS=2 python benchmarks/bench_stream.py --estimator classifier --disk-images 0
    python benchmarks/bench_stream.py --sizes 500 2000 --image-size 64 80 --disk-images 0
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent / "shared" / "ham10000"
RESULTS = HERE / "results"
MB = 1e6


# ---------------------------------------------------------------------------
# memory probes (Linux /proc; ru_maxrss everywhere)
# ---------------------------------------------------------------------------

# the same memory probes as bench_classifier.py (this folder is on sys.path when
# the script runs)
from bench_classifier import AnonPeak, _proc_status, peak_rss_bytes  # noqa: E402

# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

def ham_paths(root: Path) -> list[str]:
    paths = sorted(str(p) for p in (root / "images").glob("*.jpg"))
    if not paths:
        raise SystemExit(f"no HAM10000 JPEGs in {root / 'images'}: pass --data-root or set "
                         "SKDERM_HAM10000")
    return paths


def make_copies(sources: list[str], n: int, folder: Path) -> list[str]:
    """``n`` distinct files: source ``i % len(sources)`` plus a unique trailer."""
    out = []
    for i in range(n):
        data = Path(sources[i % len(sources)]).read_bytes()
        path = folder / f"IMG_{i:05d}.jpg"
        # bytes after the JPEG end-of-image marker are ignored by decoders
        path.write_bytes(data + b"skderm-copy-" + i.to_bytes(4, "little"))
        out.append(str(path))
    return out


# ---------------------------------------------------------------------------
# the child: one estimator call in a fresh process
# ---------------------------------------------------------------------------

def weights_arg(text: str) -> str | None:
    return None if text.lower() == "none" else text


def build_estimator(args):
    if args.estimator == "classifier":
        with open(args.model, "rb") as f:
            return pickle.load(f)
    from skderm.features import BackboneFeatures

    return BackboneFeatures(backbone=args.backbone, weights=args.weights,
                            image_size=tuple(args.image_size), batch_size=args.batch_size,
                            device="cpu").fit()


def call(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.transform(X)


def child(args) -> dict:
    import torch

    from skderm import features, images

    if args.chunk_size:
        # the decode-everything-first baseline: one chunk of all the rows
        images.STREAM_CHUNK_SIZE = args.chunk_size
    paths = [line for line in Path(args.paths).read_text().splitlines() if line][: args.n]
    estimator = build_estimator(args)
    # two full batches of in-memory images: torch's one-time allocations and the
    # activations of a full batch, so growth below is what the n images add
    rng = np.random.default_rng(0)
    warm = rng.integers(0, 256, (2 * args.batch_size, *args.image_size, 3), dtype=np.uint8)
    call(estimator, warm)
    gc.collect()
    base_rss, base_anon = _proc_status("VmRSS") or peak_rss_bytes(), _proc_status("RssAnon")
    t0 = time.perf_counter()
    with AnonPeak(interval=0.01) as anon:
        out = call(estimator, paths)
    seconds = time.perf_counter() - t0
    info = images.cache_info()
    emb = features.embedding_cache_info()
    return {
        "estimator": args.estimator, "n_images": len(paths), "seconds": seconds,
        "images_per_s": len(paths) / seconds,
        "chunk_size": args.chunk_size or images.STREAM_CHUNK_SIZE,
        "one_chunk": bool(args.chunk_size) and args.chunk_size >= len(paths),
        "base_rss": base_rss, "peak_rss": peak_rss_bytes(),
        "base_anon": base_anon, "anon_peak": anon.peak,
        "image_cache_nbytes": info.nbytes, "image_cache_entries": info.currsize,
        "images_decoded": info.misses, "embedding_cache_nbytes": emb["nbytes"],
        "output_nbytes": int(out.nbytes), "output_shape": list(out.shape),
        "torch_threads": torch.get_num_threads(),
    }


def spawn(args, n: int, paths_file: Path, model: Path | None, chunk_size: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", "--estimator", args.estimator,
           "--n", str(n), "--paths", str(paths_file), "--backbone", args.backbone,
           "--weights", str(args.weights),
           "--image-size", *map(str, args.image_size), "--batch-size", str(args.batch_size),
           "--chunk-size", str(chunk_size)]
    if model is not None:
        cmd += ["--model", str(model)]
    print(f"  {args.estimator}, {n} images, chunk {chunk_size or 'default'} ...", flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"child n={n} failed:\n{done.stderr[-4000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"    {row['seconds']:.0f} s, peak RSS {row['peak_rss'] / MB:.0f} MB, growth "
          f"{(row['peak_rss'] - row['base_rss']) / MB:.0f} MB", flush=True)
    return row


def fit_classifier(args, sources: list[str], folder: Path) -> Path:
    from skderm import LesionClassifier

    y = np.array(["mel", "nv"] * 32)
    clf = LesionClassifier(backbone=args.backbone, weights=args.weights,
                           image_size=tuple(args.image_size),
                           freeze="backbone", augmentation="none", valid_size=None,
                           max_epochs=1, batch_size=args.batch_size, device="cpu", verbose=0,
                           random_state=0)
    clf.fit(sources[:64], y)
    path = folder / "classifier.pkl"
    with open(path, "wb") as f:
        pickle.dump(clf, f)
    return path


# ---------------------------------------------------------------------------
# disk cache throughput
# ---------------------------------------------------------------------------

def disk_cache_throughput(paths: list[str], size: tuple[int, int], folder: Path,
                          repeats: int = 3) -> dict:
    from skderm import images

    before = images.get_cache_dir()
    cache = folder / "disk-cache"
    timings: dict[str, list[float]] = {k: [] for k in
                                       ("cold decode, disk cache off",
                                        "cold decode + disk write",
                                        "disk cache hit (new process)",
                                        "memory cache hit")}
    counts = {}
    try:
        for _ in range(repeats):
            images.set_cache_dir(None)
            images.clear_cache()
            t = time.perf_counter()
            images.load_images(paths, size)
            timings["cold decode, disk cache off"].append(time.perf_counter() - t)
            images.set_cache_dir(cache)
            images.clear_cache(disk=True)
            t = time.perf_counter()
            images.load_images(paths, size)
            timings["cold decode + disk write"].append(time.perf_counter() - t)
            images.clear_cache()  # memory and digest memo: what a new process has
            t = time.perf_counter()
            images.load_images(paths, size)
            timings["disk cache hit (new process)"].append(time.perf_counter() - t)
            counts = {"disk_hits": images.cache_info().disk_hits}
            t = time.perf_counter()
            images.load_images(paths, size)
            timings["memory cache hit"].append(time.perf_counter() - t)
        entries = list(cache.rglob("*.rgb"))
        disk_bytes = sum(p.stat().st_size for p in entries)
    finally:
        images.clear_cache(disk=True)
        images.set_cache_dir(before)
    cold = statistics.median(timings["cold decode, disk cache off"])
    rows = []
    for name, ts in timings.items():
        med = statistics.median(ts)
        rows.append({"variant": name, "median_s": med, "images_per_s": len(paths) / med,
                     "x_cold": cold / med, "all_s": ts})
    return {"n_images": len(paths), "size": list(size), "repeats": repeats, "rows": rows,
            "entries": len(entries), "disk_bytes": disk_bytes,
            "disk_hits_last_pass": counts.get("disk_hits")}


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def summarise(runs: list[dict]) -> dict:
    """Ratios of the largest to the smallest size, and of decode-first to streamed."""
    main = [r for r in runs if not r["one_chunk"]]
    small, big = main[0], main[-1]

    def growth(r):
        return r["peak_rss"] - r["base_rss"]

    out = {"images_ratio": big["n_images"] / small["n_images"],
           "peak_ratio": big["peak_rss"] / small["peak_rss"],
           "growth_ratio": growth(big) / max(growth(small), 1)}
    one_chunk = [r for r in runs if r["one_chunk"]]
    if one_chunk:
        out["one_chunk_peak_over_streamed"] = one_chunk[0]["peak_rss"] / big["peak_rss"]
        out["one_chunk_growth_over_streamed"] = growth(one_chunk[0]) / max(growth(big), 1)
    return out


def _mode(r: dict) -> str:
    if r["one_chunk"]:
        return "one chunk of all rows (before streaming)"
    return f"streamed, chunks of {r['chunk_size']:,}"


def section_markdown(name: str, meta: dict, runs: list[dict], summary: dict) -> str:
    lines = [f"### {name}", "",
             f"`{meta['call']}` on distinct HAM10000 copies, {meta['backbone']} "
             f"({meta.get('weights') or 'random'} weights) at "
             f"{meta['image_size'][0]}x{meta['image_size'][1]}, batch {meta['batch_size']}, "
             f"{meta['torch_threads']} torch threads, each row a fresh process. Growth = peak "
             "RSS (`ru_maxrss`) minus the RSS after a warm-up call on two batches of in-memory "
             "images; "
             "anon = sampled peak of anonymous RSS (10 ms) over the same point.", "",
             "| images | mode | seconds | images/s | peak RSS MB | growth MB | anon growth MB "
             "| image cache MB | embedding cache MB | output MB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        anon = ((r["anon_peak"] or 0) - (r["base_anon"] or 0)) / MB
        lines.append(
            f"| {r['n_images']:,} | {_mode(r)} | {r['seconds']:.0f} | {r['images_per_s']:.0f} "
            f"| {r['peak_rss'] / MB:.0f} | {(r['peak_rss'] - r['base_rss']) / MB:.0f} "
            f"| {anon:.0f} | {r['image_cache_nbytes'] / MB:.1f} "
            f"| {r['embedding_cache_nbytes'] / MB:.1f} | {r['output_nbytes'] / MB:.1f} |")
    lines += ["", f"{summary['images_ratio']:.0f}x the images: peak RSS "
              f"x{summary['peak_ratio']:.2f}, growth over the warm process "
              f"x{summary['growth_ratio']:.2f}."]
    if "one_chunk_peak_over_streamed" in summary:
        lines.append(f"Decoding all rows first (one chunk) peaks "
                     f"x{summary['one_chunk_peak_over_streamed']:.2f} higher than streaming "
                     f"at the same size (growth x{summary['one_chunk_growth_over_streamed']:.2f}).")
    return "\n".join(lines) + "\n"


def disk_markdown(disk: dict) -> str:
    h, w = disk["size"]
    lines = ["### Disk cache", "",
             f"`load_images` on {disk['n_images']:,} HAM10000 JPEGs (200x150) at {h}x{w}, "
             f"median of {disk['repeats']} interleaved repetitions; files and entries in the "
             f"page cache. {disk['entries']:,} entries, {disk['disk_bytes'] / MB:.0f} MB on disk.",
             "", "| variant | seconds | images/s | x cold decode |", "|---|---:|---:|---:|"]
    for r in disk["rows"]:
        lines.append(f"| {r['variant']} | {r['median_s']:.2f} | {r['images_per_s']:,.0f} "
                     f"| {r['x_cold']:.2f} |")
    return "\n".join(lines) + "\n"


def write_results(result: dict, out: Path) -> None:
    """Merge this run into ``out`` (.json and .md), keeping sections of other runs.

    A section is one estimator, backbone and image size; running the same
    again replaces it.
    """
    merged = json.loads(out.read_text()) if out.is_file() else {}
    merged.setdefault("sections", {}).update(result.pop("sections"))
    merged.update(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=2) + "\n")
    machine = merged.get("machine", {})
    parts = ["## Streaming predict and the disk cache", "",
             f"Machine: {machine.get('cpus')} CPUs shared with other work (throughput figures "
             f"move with the load; memory figures do not), Python {machine.get('python')}, "
             f"OMP_NUM_THREADS={machine.get('omp_num_threads')}; written by "
             "`benchmarks/bench_stream.py`.", ""]
    titles = {"features": "BackboneFeatures.transform",
              "classifier": "LesionClassifier.predict_proba"}
    for sec in merged["sections"].values():
        meta = sec["meta"]
        h, w = meta["image_size"]
        title = f"{titles[meta['estimator']]}, {meta['backbone']} at {h}x{w}"
        parts.append(section_markdown(title, meta, sec["runs"], sec["summary"]))
    if merged.get("disk"):
        parts.append(disk_markdown(merged["disk"]))
    out.with_suffix(".md").write_text("\n".join(parts))


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--estimator", choices=("features", "classifier"), default="features")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--image-size", type=int, nargs=2, default=[112, 150], metavar=("H", "W"))
    p.add_argument("--backbone", default="tf_efficientnet_lite0")
    p.add_argument("--weights", type=weights_arg, default="imagenet",
                   help="imagenet, a file, or none (random; e.g. --backbone tiny)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=None,
                   help="also run the largest size in one chunk (default: on for features)")
    p.add_argument("--disk-images", type=int, default=2000)
    p.add_argument("--disk-size", type=int, nargs=2, default=[112, 150], metavar=("H", "W"))
    p.add_argument("--data-root", default=os.environ.get("SKDERM_HAM10000") or str(DEFAULT_ROOT))
    p.add_argument("--out", default=str(RESULTS / "stream.json"))
    # child-only
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--paths", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--chunk-size", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return {}
    # SIGTERM ends the run through the finally below, which deletes the copies
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sources = ham_paths(Path(args.data_root))
    sizes = sorted(args.sizes)
    baseline = args.baseline if args.baseline is not None else args.estimator == "features"
    folder = Path(tempfile.mkdtemp(prefix="skderm-stream-", dir="/tmp"))
    try:
        t0 = time.perf_counter()
        paths = make_copies(sources, sizes[-1], folder)
        paths_file = folder / "paths.txt"
        paths_file.write_text("\n".join(paths))
        print(f"{len(paths):,} distinct files in {folder} ({time.perf_counter() - t0:.0f} s)")
        model = fit_classifier(args, sources, folder) if args.estimator == "classifier" else None
        runs = [spawn(args, n, paths_file, model) for n in sizes]
        if baseline:
            runs.append(spawn(args, sizes[-1], paths_file, model, chunk_size=sizes[-1]))
        disk = None
        if args.disk_images:
            print(f"  disk cache on {args.disk_images} HAM10000 files ...", flush=True)
            disk = disk_cache_throughput(sources[: args.disk_images], tuple(args.disk_size),
                                         folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary = summarise(runs)
    call_name = ("LesionClassifier.predict_proba(paths)" if args.estimator == "classifier"
                 else "BackboneFeatures.transform(paths)")
    meta = {"estimator": args.estimator, "call": call_name, "backbone": args.backbone,
            "weights": args.weights, "image_size": args.image_size,
            "batch_size": args.batch_size, "torch_threads": runs[0]["torch_threads"]}
    key = f"{args.estimator} {args.backbone} {args.image_size[0]}x{args.image_size[1]}"
    result = {"sections": {key: {"meta": meta, "runs": runs, "summary": summary}},
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(),
                          "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}}
    if disk is not None:
        result["disk"] = disk
    write_results(result, Path(args.out))
    print(Path(args.out).with_suffix(".md").read_text())
    return result


if __name__ == "__main__":
    main()
