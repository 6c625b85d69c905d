"""What one or two torch threads cost, on quiet cores and on cores another job shares.

The `cpu` recipe's network (EfficientNet-Lite0 with ImageNet weights, 192x256,
batch 32, channels_last): a prediction pass (eval forward) and a training step
(``blocks.3`` on trainable, AdamW) on preallocated tensors, each setting in a
fresh process. "Busy" runs a second job beside it: another process running the
same forward pass with two threads, as a second skderm run or a test suite
would. Writes ``results/threads.{json,md}``.

    python benchmarks/bench_threads.py [--batches 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

_WORK = r"""
import sys, time, torch
threads, what, batches = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
from skderm.backbones import build_backbone
from skderm.classifier import LesionNet
backbone, n, spec = build_backbone("tf_efficientnet_lite0", "imagenet")
net = LesionNet(backbone, n, 7, spec.mean, spec.std).to(memory_format=torch.channels_last)
x = torch.randint(0, 256, (32, 3, 192, 256), dtype=torch.uint8).contiguous(
    memory_format=torch.channels_last)
y = torch.randint(0, 7, (32,))
if what == "train":
    fixed = set(net.parameters_before("blocks.3"))
    for name, p in net.named_parameters():
        p.requires_grad_(name not in fixed)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    net.train()
    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
else:
    net.eval()
    def step():
        with torch.inference_mode():
            net(x)
if what == "hog":
    while True:
        step()
step()  # warm
t = time.perf_counter()
for _ in range(batches):
    step()
print(32 * batches / (time.perf_counter() - t))
"""


def run(threads: int, what: str, batches: int) -> float:
    out = subprocess.run([sys.executable, "-c", _WORK, str(threads), what, str(batches)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    rows = []
    for load in ("quiet", "busy"):
        hog = None
        if load == "busy":
            hog = subprocess.Popen([sys.executable, "-c", _WORK, "2", "hog", "0"])
            time.sleep(15)  # let it load its weights and start
        try:
            for what in ("predict", "train"):
                for threads in (1, 2):
                    rates = [run(threads, what, args.batches) for _ in range(args.repeats)]
                    rows.append({"load": load, "work": what, "threads": threads,
                                 "images_per_s": max(rates), "all": rates})
                    print(rows[-1], flush=True)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    RESULTS.mkdir(exist_ok=True)
    meta = {"cpus": os.cpu_count(), "load_before": os.getloadavg()}
    (RESULTS / "threads.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = ["| cores | work | 1 thread (images/s) | 2 threads (images/s) | 2 / 1 |",
             "|---|---|---|---|---|"]
    for load in ("quiet", "busy"):
        for what in ("predict", "train"):
            one, two = (next(r["images_per_s"] for r in rows if r["load"] == load and
                             r["work"] == what and r["threads"] == t) for t in (1, 2))
            lines.append(f"| {load} | {what} | {one:.1f} | {two:.1f} | {two / one:.2f} |")
    lines += ["", f"EfficientNet-Lite0, 192x256, batch 32, channels_last; best of "
              f"{args.repeats} runs of {args.batches} batches, each in a fresh process; busy: "
              "a second process runs the same forward pass with 2 threads."]
    (RESULTS / "threads.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
