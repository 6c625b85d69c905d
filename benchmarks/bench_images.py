"""Decode + resize throughput of ``skderm.images.load_images`` against a naive loop.

For each output size, and in each repetition (order alternating, so drift on a
shared machine hits every variant alike), it times

* ``skderm cold``: ``clear_cache()`` then ``load_images(paths, size)`` (its
  default decoding threads);
* ``skderm cold, 1 thread``: the same with ``n_jobs=1``, to separate the
  threads from the per-image work;
* ``skderm warm``: a second ``load_images`` call on the filled cache (what the
  second epoch, the next grid-search candidate and ``predict`` pay);
* ``naive``: ``np.asarray(Image.open(p).convert("RGB").resize((w, h)))`` per
  path, in one thread.

It also checks that a second pass decodes no JPEG: the cache's miss counter
must not move and ``PIL.Image.open`` must not be called.

Writes ``results/images.json`` and ``results/images.md``.

Usage::

    python benchmarks/bench_images.py                 # 2000 real images, 3 sizes
    python benchmarks/bench_images.py --n-images 500 --repeats 5 --sizes 224x224
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import skderm.images as skimages
from skderm.datasets import load_ham10000, make_lesions

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent / "shared" / "ham10000"


# ---------------------------------------------------------------------------
# data and machine
# ---------------------------------------------------------------------------

def image_paths(root: str | None, n_images: int, seed: int) -> tuple[list[str], str]:
    """``n_images`` image paths of the real copy (random subset), else synthetic ones."""
    root_path = Path(root or os.environ.get("SKDERM_HAM10000") or DEFAULT_ROOT)
    if (root_path / "HAM10000_metadata.csv").is_file():
        paths = load_ham10000(root_path).data["path"].to_numpy()
        source = f"HAM10000 copy at {root_path} ({len(paths)} images, 200x150 JPEG)"
    else:
        tmp = tempfile.mkdtemp(prefix="skderm-bench-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # files live until exit
        paths = make_lesions(n_images, random_state=seed, directory=tmp).data["path"].to_numpy()
        source = f"make_lesions({n_images}) in {tmp} (real copy not found at {root_path})"
    if n_images < len(paths):
        rng = np.random.default_rng(seed)
        paths = paths[np.sort(rng.choice(len(paths), n_images, replace=False))]
    return [str(p) for p in paths], source


def machine() -> dict:
    import PIL
    return {
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "skderm_decode_threads": min(8, len(os.sched_getaffinity(0))),
    }


# ---------------------------------------------------------------------------
# the variants
# ---------------------------------------------------------------------------

def naive(paths: list[str], size: tuple[int, int]) -> list[np.ndarray]:
    h, w = size
    return [np.asarray(Image.open(p).convert("RGB").resize((w, h))) for p in paths]


def skderm_cold(paths, size, n_jobs=None):
    skimages.clear_cache()
    return skimages.load_images(paths, size, n_jobs=n_jobs)


def skderm_warm(paths, size):
    # must follow a cold call for the same paths and size
    return skimages.load_images(paths, size)


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    elapsed = time.perf_counter() - t0
    assert len(out) == len(args[0])
    return elapsed


def one_repetition(paths, size, rep: int) -> dict[str, float]:
    """Seconds of every variant; the cold/warm pair stays together, the rest rotates."""
    def cold_then_warm():
        return {"skderm cold": timed(skderm_cold, paths, size),
                "skderm warm": timed(skderm_warm, paths, size)}

    steps = [
        cold_then_warm,
        lambda: {"skderm cold, 1 thread": timed(skderm_cold, paths, size, n_jobs=1)},
        lambda: {"naive PIL loop": timed(naive, paths, size)},
    ]
    shift = rep % len(steps)
    out: dict[str, float] = {}
    for step in steps[shift:] + steps[:shift]:
        out.update(step())
    return out


def check_no_second_decode(paths, size) -> dict:
    """Second pass: cache misses unchanged and ``Image.open`` never called."""
    skimages.clear_cache()
    skimages.load_images(paths, size)
    first = skimages.cache_info()
    opened = []
    real_open = skimages.Image.open

    def counting_open(*args, **kwargs):
        opened.append(args[0] if args else kwargs.get("fp"))
        return real_open(*args, **kwargs)

    skimages.Image.open = counting_open
    try:
        skimages.load_images(paths, size)
    finally:
        skimages.Image.open = real_open
    second = skimages.cache_info()
    return {
        "size": list(size),
        "n_paths": len(paths),
        "first_call_misses": first.misses,
        "second_call_new_misses": second.misses - first.misses,
        "second_call_hits": second.hits - first.hits,
        "second_call_image_open_calls": len(opened),
        "cache_nbytes": second.nbytes,
        "ok": second.misses == first.misses and not opened,
    }


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def summarise(n: int, size, reps: list[dict[str, float]]) -> dict:
    names = list(reps[0])
    med = {k: statistics.median(r[k] for r in reps) for k in names}
    ips = {k: n / med[k] for k in names}
    base = ips["naive PIL loop"]
    return {
        "size": list(size),
        "n_images": n,
        "median_seconds": med,
        "images_per_s": ips,
        "ratio_vs_naive": {k: ips[k] / base for k in names},
        "all_seconds": {k: [r[k] for r in reps] for k in names},
    }


def markdown(results: list[dict], check: list[dict], meta: dict) -> str:
    lines = [
        f"Decode + resize, {results[0]['n_images']} images, median of {meta['repeats']} "
        f"interleaved repetitions; {meta['machine']['cpus_available']} CPUs available, "
        f"skderm decodes with {meta['machine']['skderm_decode_threads']} threads.",
        "",
        "| size (HxW) | variant | images/s | x naive |",
        "|---|---|---:|---:|",
    ]
    for r in results:
        size = "x".join(map(str, r["size"]))
        for k, v in r["images_per_s"].items():
            lines.append(f"| {size} | {k} | {v:,.0f} | {r['ratio_vs_naive'][k]:.2f} |")
    lines += ["", "Second pass over the same paths (no JPEG decoded):", "",
              "| size (HxW) | first-call misses | second-call new misses | second-call hits "
              "| Image.open calls | cache MB |", "|---|---:|---:|---:|---:|---:|"]
    for c in check:
        lines.append(f"| {'x'.join(map(str, c['size']))} | {c['first_call_misses']} | "
                     f"{c['second_call_new_misses']} | {c['second_call_hits']} | "
                     f"{c['second_call_image_open_calls']} | {c['cache_nbytes'] / 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w or h)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None,
                   help="HAM10000 folder (default: $SKDERM_HAM10000 or ../shared/ham10000)")
    p.add_argument("--n-images", type=int, default=2000)
    p.add_argument("--sizes", nargs="+", type=parse_size,
                   default=[(224, 224), (150, 200), (112, 150)], help="HxW, e.g. 112x150")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "results"), help="folder for images.json/.md")
    args = p.parse_args(argv)

    paths, source = image_paths(args.data_root, args.n_images, args.seed)
    meta = {"data": source, "repeats": args.repeats, "machine": machine()}
    print(f"data: {source}; timing {len(paths)} images; {meta['machine']}")

    # one untimed pass so every variant reads the files from the OS page cache
    naive(paths, args.sizes[0])
    results, checks = [], []
    for size in args.sizes:
        reps = [one_repetition(paths, size, rep) for rep in range(args.repeats)]
        results.append(summarise(len(paths), size, reps))
        checks.append(check_no_second_decode(paths, size))
        skimages.clear_cache()
    meta["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    table = markdown(results, checks, meta)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"meta": meta, "throughput": results, "second_pass": checks}
    (out / "images.json").write_text(json.dumps(report, indent=2))
    (out / "images.md").write_text(table)
    if not all(c["ok"] for c in checks):
        raise SystemExit("FAIL: a second pass decoded images again")
    return report


if __name__ == "__main__":
    main()
