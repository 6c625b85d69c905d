"""Wall time of a small GridSearchCV sequentially and on joblib's loky workers.

The search: an imblearn pipeline (``RandomOverSampler`` then a
``LesionClassifier`` with the ``tiny`` backbone and random weights) over
``--candidates`` learning rates and ``StratifiedGroupKFold(--folds)``, on
``make_lesions(--n-images)`` written to a temporary folder. It is timed in four
configurations:

* ``sequential``: ``n_jobs=1`` in this process, torch's default thread count
  (one per available core), what a user gets without ``n_jobs``;
* ``sequential, 1 thread``: the same with ``torch.set_num_threads(1)``, to
  separate "more processes" from "fewer threads per process";
* ``loky n_jobs=2``: joblib's default worker environment, which sets
  ``OMP_NUM_THREADS`` (and the other thread variables) to
  ``cpu_count // n_jobs`` in each worker; torch reads it at import there;
* ``loky n_jobs=2, oversubscribed``: ``inner_max_num_threads=cpu_count``, so
  each worker runs cpu_count torch threads: 2 x cpu_count threads on cpu_count
  cores.

Each configuration runs as a block: one untimed warm-up search (reported as
"first search": it decodes the images into the process's cache and, when the
block needs new workers, pays for starting them and importing torch there; a
block reuses the previous block's workers when both ask for the same worker
environment), then ``--repeats`` timed
searches; the blocks run ``--rounds`` times, the order reversed every round so
that drift in a shared machine's load hits every configuration alike. The torch
thread count is read inside each fit's process by a scorer, so the table shows
what the workers really used, not what was asked for.

Thread variables of the calling environment (``OMP_NUM_THREADS`` ...) are
removed before the first worker starts, so the loky rows show joblib's own
defaults whatever the caller had set.

Writes ``results/parallel.json`` and ``results/parallel.md``.

Usage::

    python benchmarks/bench_parallel.py                      # 1-3 minutes on 2 busy cores
    python benchmarks/bench_parallel.py --n-images 320 --size 64 --candidates 4 --rounds 3
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

import joblib
import numpy as np
import torch

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMEXPR_NUM_THREADS")


# ---------------------------------------------------------------------------
# what each fit reports from its own process
# ---------------------------------------------------------------------------

def torch_threads(estimator, X, y) -> float:
    """Scorer: torch's intra-op thread count in the process that fitted ``estimator``."""
    return float(torch.get_num_threads())


def process_id(estimator, X, y) -> float:
    """Scorer: the id of the process that fitted ``estimator``."""
    return float(os.getpid())


# ---------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------

def make_search(args, n_jobs: int):
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import make_pipeline
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from skderm import LesionClassifier

    clf = LesionClassifier(backbone="tiny", weights=None, image_size=(args.size, args.size),
                           max_epochs=args.epochs, batch_size=32, valid_size=None,
                           augmentation="none", verbose=0, random_state=0)
    pipe = make_pipeline(RandomOverSampler(random_state=0), clf)
    lrs = np.geomspace(3e-4, 1e-2, args.candidates).round(5).tolist()
    return GridSearchCV(pipe, {"lesionclassifier__lr": lrs}, cv=StratifiedGroupKFold(args.folds),
                        scoring={"bacc": "balanced_accuracy", "threads": torch_threads,
                                 "pid": process_id},
                        refit=False, n_jobs=n_jobs)


CONFIGS = {
    "sequential": {"n_jobs": 1, "torch_threads": "cpu_count"},
    "sequential, 1 thread": {"n_jobs": 1, "torch_threads": 1},
    "loky n_jobs=2": {"n_jobs": 2, "inner_max_num_threads": None},
    "loky n_jobs=2, oversubscribed": {"n_jobs": 2, "inner_max_num_threads": "cpu_count"},
}


_SEEN_PIDS: set[int] = set()


def run_search(args, data, config: dict) -> tuple[float, dict]:
    """One search in ``config``; its wall time and what its fits reported."""
    cpus = joblib.cpu_count()
    search = make_search(args, config["n_jobs"])
    if config["n_jobs"] == 1:
        before = torch.get_num_threads()
        want = config["torch_threads"]
        torch.set_num_threads(cpus if want == "cpu_count" else int(want))
        try:
            start = time.perf_counter()
            search.fit(data.data, data.target, groups=data.groups)
            seconds = time.perf_counter() - start
        finally:
            torch.set_num_threads(before)
    else:
        inner = config["inner_max_num_threads"]
        inner = cpus if inner == "cpu_count" else inner
        with joblib.parallel_config(backend="loky", inner_max_num_threads=inner):
            start = time.perf_counter()
            search.fit(data.data, data.target, groups=data.groups)
            seconds = time.perf_counter() - start
    res = search.cv_results_
    per_fit = {key: np.concatenate([res[f"split{i}_test_{key}"] for i in range(args.folds)])
               for key in ("threads", "pid")}
    pids = {int(p) for p in per_fit["pid"]}
    new_processes = not pids <= _SEEN_PIDS
    _SEEN_PIDS.update(pids)
    return seconds, {
        "new_processes": new_processes,
        "torch_threads_in_fits": sorted({int(t) for t in per_fit["threads"]}),
        "processes": len(pids),
        "in_this_process": bool(np.all(per_fit["pid"] == os.getpid())),
        "mean_test_bacc": res["mean_test_bacc"].round(6).tolist(),
    }


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def machine() -> dict:
    import sklearn
    import skorch

    return {
        "cpus_available (joblib.cpu_count)": joblib.cpu_count(),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "joblib": joblib.__version__,
        "caller_thread_variables": {v: os.environ[v] for v in THREAD_VARS if v in os.environ},
    }


def summarise(blocks: dict) -> dict:
    out = {}
    for name, runs in blocks.items():
        timed = [s for r in runs for s in r["timed_seconds"]]
        out[name] = {
            "median_seconds": statistics.median(timed),
            "min_seconds": min(timed),
            "max_seconds": max(timed),
            "first_search_seconds": [r["first_seconds"] for r in runs],
            "first_search_started_workers": [r["fits"]["new_processes"] for r in runs],
            "timed_seconds": timed,
            **runs[0]["fits"],
        }
    seq = out["sequential"]["median_seconds"]
    par = out["loky n_jobs=2"]["median_seconds"]
    over = out["loky n_jobs=2, oversubscribed"]["median_seconds"]
    one = out["sequential, 1 thread"]["median_seconds"]
    ratios = {
        "speed-up of loky n_jobs=2 over sequential": seq / par,
        "speed-up of loky n_jobs=2 over sequential, 1 thread": one / par,
        "slow-down of oversubscribed over loky n_jobs=2": over / par,
    }
    return {"configs": out, "ratios": ratios}


def markdown(summary: dict, meta: dict) -> str:
    a = meta["args"]
    lines = [
        f"GridSearchCV over an imblearn pipeline (RandomOverSampler + LesionClassifier, "
        f"backbone tiny, weights=None, {a['size']}x{a['size']}, {a['epochs']} epochs, "
        f"batch 32): {a['candidates']} candidates x {a['folds']} folds = "
        f"{a['candidates'] * a['folds']} fits on make_lesions({a['n_images']}). "
        f"{meta['machine']['cpus_available (joblib.cpu_count)']} CPUs; load average "
        f"{_load(meta['machine']['load_average_start'])} at the start, "
        f"{_load(meta['load_average_end'])} at the end. {a['rounds']} rounds x "
        f"{a['repeats']} timed search(es) per configuration, after one untimed warm-up "
        "search per round (\"first search\": decodes the images into the process's cache "
        "and, for new workers, starts them and imports torch there; a block reuses the "
        "workers of the block before it when both ask for the same worker environment). "
        "Torch threads are read inside each fit's process.",
        "",
        "| configuration | torch threads in each fit | processes | median s | min s | max s "
        "| first search s | mean balanced accuracy per candidate |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, c in summary["configs"].items():
        lines.append(
            f"| {name} | {', '.join(map(str, c['torch_threads_in_fits']))} | {c['processes']} "
            f"| {c['median_seconds']:.2f} | {c['min_seconds']:.2f} | {c['max_seconds']:.2f} "
            f"| {_firsts(c, name)} "
            f"| {', '.join(f'{b:.3f}' for b in c['mean_test_bacc'])} |")
    lines += ["", "| ratio of medians | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in summary["ratios"].items()]
    return "\n".join(lines) + "\n"


def _firsts(c: dict, name: str) -> str:
    if name.startswith("sequential"):
        return ", ".join(f"{s:.1f}" for s in c["first_search_seconds"])
    return ", ".join(f"{s:.1f} ({'new' if new else 'reused'} workers)" for s, new in
                     zip(c["first_search_seconds"], c["first_search_started_workers"], strict=True))


def _load(value) -> str:
    return "n/a" if value is None else " / ".join(f"{x:.1f}" for x in value)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-images", type=int, default=96)
    p.add_argument("--size", type=int, default=48, help="square image size fitted on")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--candidates", type=int, default=2, help="learning rates searched")
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1, help="timed searches per block")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for parallel.json/.md")
    args = p.parse_args(argv)

    meta = {"args": vars(args), "machine": machine()}
    for var in THREAD_VARS:  # joblib must compute its own worker limits
        os.environ.pop(var, None)

    from skderm.datasets import make_lesions

    tmp = tempfile.mkdtemp(prefix="skderm-bench-parallel-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    data = make_lesions(args.n_images, image_size=(args.size, args.size), random_state=0,
                        directory=tmp)

    blocks: dict[str, list] = {name: [] for name in CONFIGS}
    names = list(CONFIGS)
    started = time.perf_counter()
    for rnd in range(args.rounds):
        for name in names if rnd % 2 == 0 else names[::-1]:
            first, fits = run_search(args, data, CONFIGS[name])
            timed = [run_search(args, data, CONFIGS[name])[0] for _ in range(args.repeats)]
            blocks[name].append({"first_seconds": first, "timed_seconds": timed, "fits": fits})
            print(f"round {rnd + 1} {name:32s} first {first:6.2f} s, timed "
                  f"{', '.join(f'{t:.2f}' for t in timed)} s, torch threads "
                  f"{fits['torch_threads_in_fits']} in {fits['processes']} process(es)",
                  flush=True)
    meta["total_seconds"] = time.perf_counter() - started
    meta["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    summary = summarise(blocks)
    for key, value in summary["ratios"].items():
        print(f"{key}: {value:.2f}")
    report = {"meta": meta, **summary}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "parallel.json").write_text(json.dumps(report, indent=2))
    (out / "parallel.md").write_text(markdown(summary, meta))
    print(f"wrote {out / 'parallel.json'} and {out / 'parallel.md'} "
          f"({meta['total_seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    main()
