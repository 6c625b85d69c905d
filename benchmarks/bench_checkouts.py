"""Two checkouts of skderm side by side: the "cpu" recipe's fit and predict_proba, timed in
alternating fresh processes on the same HAM10000 images (ratios in one run).

    git worktree add ../before <commit>
    python benchmarks/bench_checkouts.py --before ../before --after . --pairs 2

Each process imports skderm from its checkout, fits ``make_recipe("cpu")`` for 2 epochs
on ``--images`` images (epoch 1 trains the head, epoch 2 ``blocks.3`` onwards, as the
recipe's later epochs do) and predicts 256 other images (flip TTA, the test crop). It
reports each epoch's duration, the whole fit (decoding and per-epoch scoring included),
the prediction and the peak RSS. Results go to ``benchmarks/results/checkouts.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
N_PREDICT = 256


def worker(label: str, data: str, n_images: int) -> dict:
    """One measurement, in this process, with whatever skderm is importable."""
    import skderm
    from skderm import load_ham10000
    from skderm.recipes import make_recipe

    bunch = load_ham10000(data)
    X, y = bunch.data.iloc[:n_images].reset_index(drop=True), bunch.target.to_numpy()[:n_images]
    test = bunch.data.iloc[-N_PREDICT:].reset_index(drop=True)
    est = make_recipe("cpu")
    clf = getattr(est, "estimator", est)  # the network inside a per-lesion decision
    clf.set_params(max_epochs=2, verbose=0, random_state=0)
    t0 = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - t0
    clf.predict_proba(test[:32])  # first-call costs out of the timing
    t0 = time.perf_counter()
    clf.predict_proba(test)
    return {"label": label, "skderm": str(Path(skderm.__file__).parent.parent),
            "epoch_s": [round(d, 2) for d in clf.history[:, "dur"]],
            "fit_s": round(fit_s, 2), "predict_s": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "load": round(os.getloadavg()[0], 2)}


def _run(label: str, checkout: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run([sys.executable, __file__, "--worker", label, "--data", args.data,
                          "--images", str(args.images)], cwd=checkout, env=env, check=True,
                         capture_output=True, text=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    print(row, flush=True)
    return row


def _table(rows: list[dict], args) -> str:
    def med(label, get):
        return statistics.median(get(r) for r in rows if r["label"] == label)

    n = args.images
    measures = [("epoch 1 (head), images/s", lambda r: n / r["epoch_s"][0]),
                ("epoch 2 (blocks.3 on), images/s", lambda r: n / r["epoch_s"][1]),
                ("fit incl. decoding and scoring, s", lambda r: r["fit_s"]),
                (f"predict_proba of {N_PREDICT}, images/s", lambda r: N_PREDICT / r["predict_s"]),
                ("peak RSS, MB", lambda r: r["peak_rss_mb"])]
    lines = [f"# bench_checkouts: {args.before} (before) against {args.after} (after)", "",
             f"`make_recipe(\"cpu\")`, 2 epochs on {n} HAM10000 images, predict_proba on "
             f"{N_PREDICT} others; {args.pairs} pair(s) of fresh processes, before first; "
             f"load average {min(r['load'] for r in rows)}-{max(r['load'] for r in rows)} "
             f"on {os.cpu_count()} CPUs. Medians.", "",
             "| measure | before | after | after / before |", "|---|---:|---:|---:|"]
    for name, get in measures:
        b, a = med("before", get), med("after", get)
        lines.append(f"| {name} | {b:.1f} | {a:.1f} | {a / b:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, help="checkout of the earlier code")
    p.add_argument("--after", type=Path, default=Path(__file__).resolve().parent.parent)
    p.add_argument("--data", default=os.environ.get("SKDERM_HAM10000", "../shared/ham10000"))
    p.add_argument("--images", type=int, default=640)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.images)))
        return
    if args.pairs < 1 or args.images < 32:
        p.error(f"--pairs {args.pairs} --images {args.images}: use --pairs >= 1 and "
                "--images >= 32 (one batch of the recipe)")
    if args.before is None or not (args.before / "skderm").is_dir():
        p.error(f"--before {args.before}: give a checkout of skderm (a folder holding skderm/), "
                "e.g. made with `git worktree add ../before <commit>`")
    args.data = str(Path(args.data).resolve())
    args.before, args.after = args.before.resolve(), args.after.resolve()
    rows = []
    for _ in range(args.pairs):
        rows += [_run("before", args.before, args), _run("after", args.after, args)]
    args.out.mkdir(parents=True, exist_ok=True)
    table = _table(rows, args)
    (args.out / "checkouts.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "checkouts.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
