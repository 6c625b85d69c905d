"""How close does skderm get to the network's own speed, and what does glibc's malloc cost?

The limit on a machine is the bare network: ``tf_efficientnet_lite0`` from skderm's
registry with its ImageNet weights, 192x256, batch 32, channels_last, run on
preallocated tensors (a forward in eval mode; a training step with ``blocks.3`` on
trainable and AdamW). Against it: ``LesionClassifier.predict_proba`` (the ``cpu``
recipe's model, test crop, flip TTA on and off), ``LesionClassifier.fit`` (the ``cpu``
recipe, a few epochs on a few hundred real images) and ``BackboneFeatures.transform``,
and a breakdown of one training and one prediction batch into skderm's own parts
(decode, collate, augmentation, mixing, centre crop, forward, backward, optimizer,
TTA), each timed alone.

Every item runs in a fresh subprocess once with skderm's malloc tuning (the default,
:mod:`skderm._utils.malloc`) and once without (``SKDERM_MALLOC_TUNING=0``), the two
back to back with the order alternating between repeats. Each records wall, user and
kernel (sys) time, minor page faults (``getrusage`` deltas), peak RSS (``VmHWM``) and
the RSS after every batch, so a trace that keeps growing shows.

    python benchmarks/bench_limit.py --quick     # a few minutes
    python benchmarks/bench_limit.py             # the full run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = os.environ.get("SKDERM_HAM10000", str(ROOT.parent / "shared" / "ham10000"))
ITEMS = ("forward", "step", "predict", "predict_tta", "features", "fit", "breakdown")
SIZE = (192, 256)
BATCH = 32
SETTINGS = ("tuned", "default")


# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------
def _status(field: str) -> float:
    """A ``/proc/self/status`` field in MB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Meter:
    """Wall, user and sys time and minor faults of a block; RSS after every batch."""

    def __init__(self):
        self.rss: list[float] = []

    def __enter__(self):
        self._r0 = resource.getrusage(resource.RUSAGE_SELF)
        self._t0 = time.perf_counter()
        return self

    def batch(self):
        self.rss.append(round(_status("VmRSS"), 1))

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        self.result = {"wall": wall, "user": r1.ru_utime - self._r0.ru_utime,
                       "sys": r1.ru_stime - self._r0.ru_stime,
                       "minflt": r1.ru_minflt - self._r0.ru_minflt,
                       "rss_trace": self.rss, "hwm_mb": round(_status("VmHWM"), 1)}


def _net(train: bool):
    import torch

    from skderm.backbones import build_backbone
    from skderm.classifier import LesionNet

    backbone, n_features, spec = build_backbone("tf_efficientnet_lite0", "imagenet")
    net = LesionNet(backbone, n_features, 7, spec.mean, spec.std)
    if train:  # the cpu recipe's freeze_until="blocks.3"
        fixed = set(net.parameters_before("blocks.3"))
        for name, p in net.named_parameters():
            p.requires_grad_(name not in fixed)
    return net.to(memory_format=torch.channels_last).train(train)


def _data(cfg, n: int):
    import numpy as np

    from skderm.datasets import load_ham10000

    bunch = load_ham10000(cfg.data_root)
    rows = np.sort(np.random.default_rng(0).choice(len(bunch.target), n, replace=False))
    return bunch.data.iloc[rows].reset_index(drop=True), np.asarray(bunch.target)[rows]


def _uint8_batch():
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (BATCH, 3, *SIZE), dtype=torch.uint8, generator=g)
    return x.contiguous(memory_format=torch.channels_last), torch.randint(0, 7, (BATCH,),
                                                                          generator=g)


def bare_forward(cfg) -> dict:
    import torch

    net, (x, _) = _net(False), _uint8_batch()
    with torch.inference_mode():
        net(x)
        with Meter() as m:
            for _ in range(cfg.batches):
                net(x)
                m.batch()
    return {**m.result, "images": cfg.batches * BATCH, "passes": cfg.batches * BATCH}


def bare_step(cfg) -> dict:
    import torch

    net, (x, y) = _net(True), _uint8_batch()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()

    step()
    with Meter() as m:
        for _ in range(cfg.batches):
            step()
            m.batch()
    return {**m.result, "images": cfg.batches * BATCH}


def _rss_callback(meter_ref):
    from skorch.callbacks import Callback

    class RssPerBatch(Callback):
        def on_batch_end(self, net, **kwargs):
            if meter_ref:
                meter_ref[0].batch()

    return RssPerBatch()


def predict(cfg, tta: bool) -> dict:
    from skderm.recipes import make_recipe

    X, y = _data(cfg, cfg.n_predict)
    clf = make_recipe("cpu", max_epochs=1, freeze="backbone", verbose=0, device="cpu", tta=tta)
    clf.fit(X[:64], y[:64])  # the cpu recipe's network, its head fitted on a few images
    clf.predict_proba(X)  # decodes into the image cache
    clf.predict_proba(X[:BATCH])  # one batch of warm-up
    with Meter() as m:
        for _ in range(cfg.calls):
            clf.predict_proba(X)
            m.batch()
    n = cfg.calls * len(X)
    return {**m.result, "images": n, "passes": n * (4 if tta else 1)}


def features(cfg) -> dict:
    from skderm.features import BackboneFeatures, clear_embedding_cache

    X, _ = _data(cfg, cfg.n_predict)
    bf = BackboneFeatures(image_size=SIZE).fit()
    bf.transform(X)  # decodes into the image cache
    with Meter() as m:
        for _ in range(cfg.calls):
            clear_embedding_cache()  # embeddings are cached by content: recompute them
            bf.transform(X)
            m.batch()
    return {**m.result, "images": cfg.calls * len(X), "passes": cfg.calls * len(X),
            "batch_size": bf.batch_size}


def fit(cfg) -> dict:
    from skderm.recipes import make_recipe

    X, y = _data(cfg, cfg.n_fit)
    ref: list[Meter] = []
    clf = make_recipe("cpu", max_epochs=cfg.epochs, verbose=0, device="cpu", random_state=0,
                      callbacks=[("rss", _rss_callback(ref))])
    with Meter() as m:
        ref.append(m)
        clf.fit(X, y)
    durations = [float(d) for d in clf.history[:, "dur"]]
    return {**m.result, "images": len(X) * cfg.epochs, "epoch_s": durations,
            # epoch 1 trains the head only (freeze=1); the last epoch is the recipe's step
            "last_epoch_images_per_s": len(X) / durations[-1]}


def breakdown(cfg) -> dict:
    """One training and one prediction batch, part by part, with skderm's own functions."""
    import torch
    import torch.nn.functional as F

    from skderm.images import cache_mode, load_images
    from skderm.inputs import LesionDataset, collate
    from skderm.transforms import Augmentation, Mixup, centre_crop

    X, y = _data(cfg, BATCH)
    paths = list(X["path"])
    images = load_images(paths, SIZE)
    dataset = LesionDataset(images, y=torch.zeros(BATCH, dtype=torch.long).numpy())
    augment = Augmentation().build()
    mixup = Mixup(0.4, 1.0)
    net = _net(True)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    cl = torch.channels_last
    state = {}

    def decode():
        with cache_mode(False):
            load_images(paths, SIZE, n_jobs=1)

    def batch():
        state["x"], state["y"] = collate([dataset[i] for i in range(BATCH)])

    def aug():
        state["a"] = augment(state["x"])

    def mix():
        state["m"] = mixup(state["a"], None, F.one_hot(state["y"], 7).float())[0]

    def to_cl():
        state["c"] = state["m"].contiguous(memory_format=cl)

    def forward_train():
        net.train()
        state["loss"] = loss_fn(net(state["c"]), state["y"])

    def backward():
        state["loss"].backward()

    def optimizer():
        opt.step()
        opt.zero_grad(set_to_none=True)

    def crop():
        state["t"] = centre_crop(state["x"], 0.875).contiguous(memory_format=cl)

    def forward_eval():
        net.eval()
        with torch.no_grad():
            net(state["t"])

    def tta_flips():
        net.eval()
        with torch.no_grad():
            for dims in ((3,), (2,), (2, 3)):
                net(torch.flip(state["t"], dims))

    parts = [("decode", decode), ("collate", batch), ("augment", aug), ("mix", mix),
             ("channels_last", to_cl), ("forward_train", forward_train),
             ("backward", backward), ("optimizer", optimizer), ("centre_crop", crop),
             ("forward_eval", forward_eval), ("tta_3_more_passes", tta_flips)]
    for _, f in parts:  # warm up, in data-flow order
        f()
    out = {name: [] for name, _ in parts}
    for _ in range(cfg.calls):
        for name, f in parts:
            with Meter() as m:
                f()
            out[name].append({k: m.result[k] for k in ("wall", "user", "sys", "minflt")})
    summary = {name: {k: statistics.median(r[k] for r in rows)
                      for k in ("wall", "user", "sys", "minflt")} for name, rows in out.items()}
    return {"parts": summary, "hwm_mb": round(_status("VmHWM"), 1)}


def run_worker(cfg) -> dict:
    import torch

    import skderm  # applies (or, with SKDERM_MALLOC_TUNING=0, skips) the malloc tuning
    from skderm._utils.malloc import malloc_tuning

    torch.set_num_threads(cfg.threads)
    fn = {"forward": bare_forward, "step": bare_step, "predict": lambda c: predict(c, False),
          "predict_tta": lambda c: predict(c, True), "features": features, "fit": fit,
          "breakdown": breakdown}[cfg.worker]
    result = fn(cfg)
    result.update(item=cfg.worker, tuned=malloc_tuning().applied, skderm=skderm.__version__,
                  load=os.getloadavg()[0])
    return result


# ---------------------------------------------------------------------------
# driving and reporting
# ---------------------------------------------------------------------------
def spawn(cfg, item: str, setting: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GLIBC_TUNABLES", None)
    env["SKDERM_MALLOC_TUNING"] = "1" if setting == "tuned" else "0"
    cmd = [sys.executable, __file__, "--worker", item, "--batches", str(cfg.batches),
           "--calls", str(cfg.calls), "--n-predict", str(cfg.n_predict),
           "--n-fit", str(cfg.n_fit), "--epochs", str(cfg.epochs),
           "--threads", str(cfg.threads), "--data-root", cfg.data_root]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"worker {item} ({setting}) failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["tuned"] != (setting == "tuned"):
        raise RuntimeError(f"worker {item} ran with tuned={result['tuned']}, asked {setting}")
    result["setting"] = setting
    return result


def rate(r: dict, key: str = "images") -> float:
    return r[key] / r["wall"]


def summarise(runs: list[dict]) -> dict:
    """Per item and setting: medians; ratios to the bare network of the same setting."""
    out: dict = {}
    for item in dict.fromkeys(r["item"] for r in runs):
        if item == "breakdown":
            continue
        for setting in SETTINGS:
            rows = [r for r in runs if r["item"] == item and r["setting"] == setting]
            if not rows:
                continue
            out.setdefault(item, {})[setting] = {
                "images_per_s": statistics.median(rate(r) for r in rows),
                "passes_per_s": statistics.median(rate(r, "passes") for r in rows)
                if "passes" in rows[0] else None,
                "sys_share": statistics.median(r["sys"] / r["wall"] for r in rows),
                # CPU seconds per image: less swayed by other processes than wall time
                "cpu_ms_per_image": statistics.median(1e3 * (r["user"] + r["sys"]) / r["images"]
                                                      for r in rows),
                "minflt_per_image": statistics.median(r["minflt"] / r["images"] for r in rows),
                "hwm_mb": max(r["hwm_mb"] for r in rows),
                "rss_growth_mb": max(r["rss_trace"][-1] - r["rss_trace"][len(r["rss_trace"]) // 2]
                                     for r in rows) if rows[0]["rss_trace"] else None,
                "last_epoch_images_per_s": statistics.median(
                    r["last_epoch_images_per_s"] for r in rows)
                if "last_epoch_images_per_s" in rows[0] else None}
        # tuned / default, paired by repeat (each pair ran back to back)
        pairs = _pairs(runs, item)
        out[item]["speedup"] = statistics.median(rate(t) / rate(d) for t, d in pairs)
    for setting in SETTINGS:  # against the limit of the same setting
        fwd = out.get("forward", {}).get(setting, {}).get("passes_per_s")
        step = out.get("step", {}).get(setting, {}).get("images_per_s")
        for item in ("predict", "predict_tta", "features"):
            if fwd and setting in out.get(item, {}):
                row = out[item][setting]
                row["passes_vs_bare_forward"] = row["passes_per_s"] / fwd
        if step and setting in out.get("fit", {}):
            row = out["fit"][setting]
            row["last_epoch_vs_bare_step"] = row["last_epoch_images_per_s"] / step
    return out


def _pairs(runs, item):
    tuned = [r for r in runs if r["item"] == item and r["setting"] == "tuned"]
    default = [r for r in runs if r["item"] == item and r["setting"] == "default"]
    return list(zip(tuned, default, strict=False))


def markdown(report: dict) -> str:
    s, meta = report["summary"], report["meta"]
    lines = [f"# bench_limit: skderm against the bare network ({meta['mode']} run)", "",
             f"tf_efficientnet_lite0, ImageNet weights, {SIZE[0]}x{SIZE[1]}, batch {BATCH}, "
             f"channels_last, {meta['threads']} torch threads; {meta['repeats']} repeat(s), "
             "tuned and default back to back in fresh processes, order alternating. "
             f"Load average {meta['load'][0]:.1f}-{meta['load'][1]:.1f} during the run on "
             f"{meta['cpus']} CPUs (the benchmark itself brings it near the CPU count; above "
             "that, other work shared the cores and absolute rates are noisy: read the "
             "ratios).", "",
             "`tuned`: skderm's default (`mallopt` at import); `default`: "
             "`SKDERM_MALLOC_TUNING=0`. Network passes count TTA's four flips as four. "
             "`tuned/default` is the median ratio of pairs run back to back; `vs bare` "
             "divides medians of processes run minutes apart, so on shared cores it is "
             "only as good as the load was steady.", "",
             "| item | setting | images/s | passes/s | vs bare | CPU ms/image | sys share | "
             "minor faults/image | peak RSS MB | RSS growth 2nd half MB | tuned/default |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    def num(value, fmt):
        return "" if value is None else format(value, fmt)

    for item, rows in s.items():
        for setting in SETTINGS:
            r = rows.get(setting)
            if r is None:
                continue
            vs = r.get("passes_vs_bare_forward", r.get("last_epoch_vs_bare_step"))
            images = r["last_epoch_images_per_s"] if item == "fit" else r["images_per_s"]
            label = f"{item} (last epoch)" if item == "fit" else item
            cells = [label, setting, num(images, ".1f"), num(r["passes_per_s"], ".1f"),
                     num(vs, ".2f"), num(r["cpu_ms_per_image"], ".0f"),
                     num(r["sys_share"], ".2f"),
                     num(r["minflt_per_image"], ".0f"), num(r["hwm_mb"], ".0f"),
                     num(r["rss_growth_mb"], "+.0f"),
                     num(rows["speedup"], ".2f") if setting == "tuned" else ""]
            lines.append("| " + " | ".join(cells) + " |")
    for setting, parts in report.get("breakdown", {}).items():
        lines += ["", f"## One batch of {BATCH}, part by part ({setting}; median ms)", "",
                  "| part | wall ms | user ms | sys ms | minor faults |",
                  "|---|---:|---:|---:|---:|"]
        for name, p in parts.items():
            lines.append(f"| {name} | {1e3 * p['wall']:.0f} | {1e3 * p['user']:.0f} | "
                         f"{1e3 * p['sys']:.0f} | {p['minflt']:.0f} |")
    for run in report.get("long_runs", []):
        lines += ["", f"## RSS after each batch, {run['item']} ({run['setting']}; "
                  f"{run['command']})", "",
                  f"{', '.join(f'{v:.0f}' for v in run['rss_trace'])} MB; peak "
                  f"{run['hwm_mb']:.0f} MB, kernel time {run['sys']:.2f} s, "
                  f"{run['minflt']} minor faults"]
    return "\n".join(lines) + "\n"


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small n, one repeat")
    p.add_argument("--items", default=",".join(ITEMS), help="comma-separated subset")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--batches", type=int, default=None, help="bare forward/step batches")
    p.add_argument("--calls", type=int, default=None, help="timed calls per item")
    p.add_argument("--n-predict", type=int, default=None)
    p.add_argument("--n-fit", type=int, default=None)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-root", default=DEFAULT_DATA)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--render", metavar="JSON", help="re-tabulate a results file, run nothing")
    p.add_argument("--worker", choices=ITEMS, help=argparse.SUPPRESS)
    cfg = p.parse_args(argv)
    quick = {"repeats": 1, "batches": 3, "calls": 1, "n_predict": 64, "n_fit": 96}
    full = {"repeats": 2, "batches": 8, "calls": 2, "n_predict": 256, "n_fit": 320}
    for key, value in (quick if cfg.quick else full).items():
        if getattr(cfg, key) is None:
            setattr(cfg, key, value)
    return cfg


def render(path: str) -> str:
    """Summarise and tabulate the runs of a results JSON again (after a change of table)."""
    report = json.loads(Path(path).read_text())
    report["summary"] = summarise(report["runs"])
    Path(path).write_text(json.dumps(report, indent=1))
    Path(path).with_suffix(".md").write_text(markdown(report))
    return markdown(report)


def main(argv=None) -> dict | None:
    cfg = parse(argv)
    if cfg.render:
        print(render(cfg.render))
        return None
    if cfg.worker:
        print(json.dumps(run_worker(cfg)))
        return None
    items = [i for i in cfg.items.split(",") if i]
    runs, loads = [], []
    for k, item in enumerate(items):
        for r in range(cfg.repeats):
            order = SETTINGS if (k + r) % 2 == 0 else SETTINGS[::-1]
            for setting in order:
                loads.append(os.getloadavg()[0])
                res = spawn(cfg, item, setting)
                runs.append(res)
                print(f"{item:12s} {setting:8s} {res.get('images', 0) / res.get('wall', 1):7.1f}"
                      f" img/s  sys {res.get('sys', 0):6.2f} s  faults {res.get('minflt', 0):>9}"
                      f"  load {res['load']:.1f}", flush=True)
    report = {
        "meta": {"mode": "quick" if cfg.quick else "full", "threads": cfg.threads,
                 "repeats": cfg.repeats, "cpus": os.cpu_count(), "load": [min(loads),
                                                                          max(loads)],
                 "python": platform.python_version(), "glibc": os.confstr("CS_GNU_LIBC_VERSION"),
                 "config": {k: v for k, v in vars(cfg).items() if k != "worker"},
                 "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:]))},
        "summary": summarise(runs),
        "breakdown": {setting: statistics_merge([r["parts"] for r in runs
                                                 if r["item"] == "breakdown"
                                                 and r["setting"] == setting])
                      for setting in SETTINGS if any(r["item"] == "breakdown" for r in runs)},
        "runs": runs,
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "limit.json").write_text(json.dumps(report, indent=1))
    (out / "limit.md").write_text(markdown(report))
    print(markdown(report))
    return report


def statistics_merge(parts_list: list[dict]) -> dict:
    """Median over repeats of each part's median."""
    if not parts_list:
        return {}
    return {name: {k: statistics.median(p[name][k] for p in parts_list)
                   for k in parts_list[0][name]} for name in parts_list[0]}


if __name__ == "__main__":
    main()
