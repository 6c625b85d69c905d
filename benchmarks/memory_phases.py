"""Peak memory of the ``cpu`` recipe's fit, phase by phase, against the uint8 cache.

Each run is a fresh process that fits ``make_recipe("cpu")`` on the first N
HAM10000 images for E epochs (epoch 1 trains the head only, later epochs
``blocks.3`` on), with a thread sampling the resident set (``/proc/self/statm``)
every 10 ms and a callback naming the phase: imports and metadata, decoding
(which also builds the network), then each epoch. It runs with skderm's
malloc tuning and without it (``SKDERM_MALLOC_TUNING=0``). Figures are MB of
RSS, which includes torch's shared libraries; ``over cache`` is the peak less
the uint8 cache's bytes (``cache_info().nbytes``). Writes
``results/memory_phases.{json,md}``.

    python benchmarks/memory_phases.py [--n-images 1024] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

_WORK = r"""
import json, os, sys, threading, time
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page / 2**20
state = {"phase": "imports"}
peaks = {}
def sample():
    while True:
        peaks[state["phase"]] = max(peaks.get(state["phase"], 0.0), rss())
        time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
from skorch.callbacks import Callback
from skderm import load_ham10000
from skderm.images import cache_info
from skderm.recipes import make_recipe
n, epochs, data = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ham = load_ham10000(data)
X, y = ham.data.iloc[:n], ham.target.iloc[:n]
class Phase(Callback):
    def on_train_begin(self, net, **kwargs):
        state["phase"] = "epoch 1"
    def on_epoch_begin(self, net, **kwargs):
        state["phase"] = f"epoch {len(net.history)}"
state["phase"] = "decode and build"
make_recipe("cpu", max_epochs=epochs, verbose=0, callbacks=[("phase", Phase())]).fit(X, y)
time.sleep(0.05)
print(json.dumps({"peaks": peaks, "cache_mb": cache_info().nbytes / 2**20}))
"""


def run(n: int, epochs: int, data: str, tuned: bool) -> dict:
    env = {**os.environ, "SKDERM_MALLOC_TUNING": "1" if tuned else "0"}
    done = subprocess.run([sys.executable, "-c", _WORK, str(n), str(epochs), data], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict], n: int, epochs: int) -> str:
    phases = list(rows[0]["peaks"])
    lines = [f"Peak RSS (MB) of `make_recipe(\"cpu\")` fitting {n} images for {epochs} epochs "
             f"(192x256, batch 32), by phase; uint8 cache {rows[0]['cache_mb']:.0f} MB.", "",
             "| malloc tuning | " + " | ".join(phases) + " | over cache |",
             "|---|" + "---:|" * (len(phases) + 1)]
    for r in rows:
        peak = max(r["peaks"].values())
        lines.append(f"| {r['tuning']} | " + " | ".join(f"{r['peaks'][p]:.0f}" for p in phases)
                     + f" | {peak - r['cache_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("SKDERM_HAM10000", "../shared/ham10000"))
    p.add_argument("--n-images", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    rows = []
    for tuned in (True, False):
        rows.append({"tuning": "on" if tuned else "off",
                     **run(args.n_images, args.epochs, args.data, tuned)})
        print(rows[-1], flush=True)
    text = table(rows, args.n_images, args.epochs)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory_phases.json").write_text(json.dumps(
        {"n_images": args.n_images, "epochs": args.epochs, "rows": rows}, indent=2))
    (RESULTS / "memory_phases.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
