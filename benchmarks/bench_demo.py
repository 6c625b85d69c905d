"""How long the README's main job takes: ``skderm demo`` end to end, as a new user runs it.

Runs the ``skderm`` command of this environment in a fresh process (imports,
the synthetic lesions, the grid search, the refit and the held-out report) and
records its wall time. Writes ``results/demo.{json,md}``.

    python benchmarks/bench_demo.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    command = shutil.which("skderm", path=os.path.dirname(sys.executable)) or "skderm"
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([command, "demo", "--quiet"], check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    result = {"seconds": seconds, "load_average_after": os.getloadavg(),
              "cpus": os.cpu_count()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "demo.json").write_text(json.dumps(result, indent=2))
    lines = ["| run | seconds |", "|---|---|"]
    lines += [f"| {k + 1} | {s:.0f} |" for k, s in enumerate(seconds)]
    lines += ["", f"`skderm demo --quiet`, default settings, {os.cpu_count()} CPUs; the "
              "ImageNet weights and packages were already installed."]
    (RESULTS / "demo.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
