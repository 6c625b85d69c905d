"""LesionClassifier against a hand-written PyTorch loop on the same model and data.

Acceptance criteria measured here:

* "fit throughput within 5% of a hand-written PyTorch loop on the same model,
  data and batch size; predict_proba likewise" -> the ratios
  ``skderm / hand-written`` of images per second (target >= 0.95);
* "fitting on all HAM10000 images must not hold float copies of the whole set:
  peak memory stays near the uint8 cache size" -> ``--memory``.

Throughput (default mode)
    Both sides get the same ``uint8`` images, decoded once before any timing
    (so both read a warm :mod:`skderm.images` cache), the same network (a
    :class:`skderm.classifier.network.LesionNet` around
    :func:`skderm.backbones.build_backbone`), batch size, AdamW, learning
    rate, epochs and augmentation (``Augmentation().build()``, which
    augments whole batches, or none). The hand-written side is a
    ``torch.utils.data.DataLoader`` and a plain forward / CrossEntropyLoss /
    backward / step loop; its inference is a ``torch.inference_mode`` loop
    with a softmax.

    The two sides take turns batch by batch in one thread (see
    :class:`Turns`): on a shared machine, runs made one after the other differ
    by up to 3x, far more than the 5% to be resolved. ``whole call`` is the
    call as a user sees it (skderm: ``fit`` / ``predict_proba``; hand-written:
    building network and optimizer, fetching the cached images, all batches);
    ``per batch`` is every batch except each call's first, paired with the
    other side's batch run next to it. The median of those paired ratios is the
    figure to read; ``--aa-check`` runs the hand-written loop against itself to
    show the harness's own spread.

Memory (``--memory``)
    Each measurement runs in a fresh subprocess: RSS after imports and reading
    the metadata (``import`` baseline) and after one train/eval step on random
    images (``warm`` baseline: torch's one-time library pages and buffers), then
    ``fit`` on N images (1 epoch, small backbone: the data path is the point)
    and ``predict_proba``. Peak RSS (``getrusage().ru_maxrss``) minus each
    baseline, and the sampled peak of anonymous RSS, are divided by
    ``cache_info().nbytes``. The same is done for the hand-written loop, and at
    a small N, so what grows with the data can be told from fixed costs.

Writes ``results/classifier_<backbone>.{json,md}`` (``..._aa`` with
``--aa-check``) or ``results/classifier_memory.{json,md}``; ``--out`` picks
another folder.

Usage::

    python benchmarks/bench_classifier.py                       # ~5 min on 2 busy cores
    python benchmarks/bench_classifier.py --backbone tiny --n-images 512
    python benchmarks/bench_classifier.py --backbone tiny --n-images 512 --aa-check
    python benchmarks/bench_classifier.py --memory              # all 8,012 images
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from skorch.callbacks import Callback

from skderm.backbones import build_backbone
from skderm.classifier import LesionClassifier
from skderm.classifier.network import LesionNet
from skderm.datasets import load_ham10000, make_lesions
from skderm.images import cache_info, clear_cache, load_images
from skderm.transforms import Augmentation

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent / "shared" / "ham10000"


# ---------------------------------------------------------------------------
# data and machine
# ---------------------------------------------------------------------------

def load_subset(root: str | None, n_images: int | None, seed: int):
    """``(X, y, source)``: ``n_images`` random rows of the real copy (``None``: all).

    Falls back to :func:`skderm.make_lesions` when the real copy is absent.
    """
    root_path = Path(root or os.environ.get("SKDERM_HAM10000") or DEFAULT_ROOT)
    if (root_path / "HAM10000_metadata.csv").is_file():
        bunch = load_ham10000(root_path)
        source = f"HAM10000 copy at {root_path} ({len(bunch.data)} images, 200x150 JPEG)"
    else:
        tmp = tempfile.mkdtemp(prefix="skderm-bench-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # files live until exit
        bunch = make_lesions(n_images or 2000, random_state=seed, directory=tmp)
        source = f"make_lesions in {tmp} (real copy not found at {root_path})"
    X, y = bunch.data, bunch.target
    if n_images is not None and n_images < len(X):
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(X), n_images, replace=False))
        X, y = X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True)
    return X, y, source


def machine() -> dict:
    import skorch
    return {
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
    }


def weights_arg(text: str) -> str | None:
    return None if text.lower() == "none" else text


# ---------------------------------------------------------------------------
# taking turns: both sides in one thread, one batch each in turn
# ---------------------------------------------------------------------------

SIDES = ("skderm", "handwritten")
HAND_COLLATE = {"numpy": "one np.stack per batch",
                "torch": "a tensor per item and default_collate"}


class Turns:
    """Runs the hand-written side one batch at a time between skderm's batches.

    On a shared machine the load changes within seconds, so two runs one after
    the other can differ by a factor of three. Here the hand-written loop is a
    generator that yields after every batch, and skderm (through a skorch
    callback after each training batch, or after each prediction batch)
    advances it by one batch. Everything runs in one thread (two threads would
    mean two OpenMP teams competing for the cores, which biased an A/A test by
    20% and more), and both sides see the same machine, batch by batch. A
    side's own time is its wall time minus the other side's steps run inside it.
    """

    def __init__(self, steps):
        self._steps = steps
        self.spent = self.spent_cpu = 0.0
        self.done = False
        self.result = None
        self.batches: dict[str, list[float]] = {s: [] for s in SIDES}
        self.batches_cpu: dict[str, list[float]] = {s: [] for s in SIDES}
        self._mark = self._mark_cpu = 0.0

    def step(self) -> None:
        """Advance the other side by one batch (or to its end)."""
        if self.done:
            return
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            next(self._steps)
        except StopIteration as stop:
            self.done, self.result = True, stop.value
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        self.spent += dt
        self.spent_cpu += dc
        if not self.done:
            self.batches[SIDES[1]].append(dt)
            self.batches_cpu[SIDES[1]].append(dc)

    def drain(self):
        while not self.done:
            self.step()
        return self.result

    def begin_main(self) -> None:
        self._mark, self._mark_cpu = time.perf_counter(), time.process_time()

    def main_batch_done(self) -> None:
        """End of one batch of the main side: record it, then one batch of the other."""
        self.batches[SIDES[0]].append(time.perf_counter() - self._mark)
        self.batches_cpu[SIDES[0]].append(time.process_time() - self._mark_cpu)
        self.step()
        self.begin_main()


class _OwnClock:
    """Wall time of a block minus the other side's steps run inside it."""

    def __init__(self, turns: Turns | None):
        self.turns = turns

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.spent0 = self.turns.spent if self.turns else 0.0
        self.spent_cpu0 = self.turns.spent_cpu if self.turns else 0.0
        if self.turns:
            self.turns.begin_main()
        return self

    def __exit__(self, *exc):
        spent = (self.turns.spent if self.turns else 0.0) - self.spent0
        spent_cpu = (self.turns.spent_cpu if self.turns else 0.0) - self.spent_cpu0
        self.seconds = time.perf_counter() - self.t0 - spent
        self.cpu_seconds = time.process_time() - self.c0 - spent_cpu


class TurnsCallback(Callback):
    """Lets the other side run one batch after every training batch of a skorch net."""

    def __init__(self, turns: Turns):
        self.turns = turns

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            self.turns.main_batch_done()


def in_turns(first: str, main_fn, other_steps) -> dict:
    """``main_fn(turns)`` with the generator ``other_steps`` run between its batches."""
    turns = Turns(other_steps)
    if first == SIDES[1]:
        turns.step()
    main = main_fn(turns)
    other = turns.drain()
    for side, res in ((SIDES[0], main), (SIDES[1], other)):
        res["batch_s"], res["batch_cpu_s"] = turns.batches[side], turns.batches_cpu[side]
    other["own_s"], other["own_cpu_s"] = turns.spent, turns.spent_cpu
    return {SIDES[0]: main, SIDES[1]: other}


def drive(steps, turns: Turns | None = None) -> dict:
    """Run a hand-written generator to its end (as the main side when ``turns`` is given)."""
    with _OwnClock(turns) as clock:
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                result = stop.value
                break
            if turns:
                turns.main_batch_done()
    result["own_s"], result["own_cpu_s"] = clock.seconds, clock.cpu_seconds
    return result


# ---------------------------------------------------------------------------
# the two sides
# ---------------------------------------------------------------------------

class CachedImages(torch.utils.data.Dataset):
    """What one writes by hand: the cached uint8 (H, W, 3) arrays and int labels."""

    def __init__(self, images, y, per_sample_tensors: bool = False):
        self.images, self.y, self.per_sample_tensors = images, y, per_sample_tensors

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        if self.per_sample_tensors:
            # the textbook way: a (3, H, W) tensor per item, then default_collate.
            # The cached arrays are read-only; torch wants a writable buffer.
            return torch.from_numpy(self.images[i].copy()).permute(2, 0, 1), int(self.y[i])
        return self.images[i], int(self.y[i])


def stack_batch(items):
    """One numpy stack, one NHWC -> NCHW copy: (N, 3, H, W) uint8 and int64 labels."""
    images, labels = zip(*items, strict=True)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.as_tensor(labels, dtype=torch.long)


def hand_loader(cfg, images, y, *, shuffle: bool):
    per_sample = cfg.hand_collate == "torch"
    return torch.utils.data.DataLoader(
        CachedImages(images, y, per_sample), batch_size=cfg.batch_size, shuffle=shuffle,
        collate_fn=None if per_sample else stack_batch,
        generator=torch.Generator().manual_seed(cfg.seed) if shuffle else None)


def build_net(cfg, n_classes: int) -> LesionNet:
    backbone, n_features, spec = build_backbone(cfg.backbone, cfg.weights)
    net = LesionNet(backbone, n_features, n_classes, spec.mean, spec.std)
    return net.to(memory_format=torch.channels_last) if cfg.channels_last else net


def memory_format(cfg, xb: torch.Tensor) -> torch.Tensor:
    # the same layout skderm uses, so only the code around the network differs
    return xb.contiguous(memory_format=torch.channels_last) if cfg.channels_last else xb


def make_classifier(cfg, augment: bool, **overrides) -> LesionClassifier:
    params = dict(backbone=cfg.backbone, weights=cfg.weights, image_size=cfg.size,
                  batch_size=cfg.batch_size, max_epochs=cfg.epochs, lr=cfg.lr,
                  augmentation="default" if augment else "none", valid_size=None,
                  verbose=0, random_state=cfg.seed, device="cpu",
                  channels_last=cfg.channels_last,
                  # the same work as the hand-written loop: whole images, no TTA, and
                  # no clean-training-image score after each epoch
                  test_crop=None, tta=False, callbacks__train_bacc=None)
    params.update(overrides)
    return LesionClassifier(**params)


def fit_skderm(cfg, X, y, augment: bool, turns: Turns | None = None) -> dict:
    extra = {"callbacks": [("turns", TurnsCallback(turns))]} if turns else {}
    clf = make_classifier(cfg, augment, **extra)
    misses = cache_info().misses
    with _OwnClock(turns) as clock:
        clf.fit(X, y)
    return {"own_s": clock.seconds, "own_cpu_s": clock.cpu_seconds,
            "last_train_loss": float(clf.history[-1, "train_loss"]),
            "jpegs_decoded": cache_info().misses - misses, "model": clf}


def fit_handwritten(cfg, X, y, augment: bool):
    """Generator: yields after every batch, returns the fitted network."""
    torch.manual_seed(cfg.seed)
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    images = load_images(X["path"].tolist(), cfg.size)
    model = build_net(cfg, len(classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    criterion = nn.CrossEntropyLoss()
    augment_batch = Augmentation().build() if augment else None
    loader = hand_loader(cfg, images, codes, shuffle=True)
    model.train()
    for _ in range(cfg.epochs):
        losses = []
        for xb, yb in loader:
            if augment_batch is not None:
                xb = augment_batch(xb)  # uint8 batch -> augmented float in [0, 1]
            xb = memory_format(cfg, xb)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            yield
    return {"last_train_loss": float(np.average(losses)), "model": model}


def predict_skderm(clf: LesionClassifier, X, turns: Turns | None = None):
    if turns:
        # let the other side run one batch after each of ours; removed below
        original = clf.evaluation_step

        def evaluation_step(batch, training=False):
            out = original(batch, training=training)
            turns.main_batch_done()
            return out

        clf.__dict__["evaluation_step"] = evaluation_step
    try:
        with _OwnClock(turns) as clock:
            proba = clf.predict_proba(X)
    finally:
        clf.__dict__.pop("evaluation_step", None)
    return {"own_s": clock.seconds, "own_cpu_s": clock.cpu_seconds, "proba": proba}


def predict_handwritten(model: nn.Module, X, cfg):
    """Generator: yields after every batch, returns the probabilities."""
    images = load_images(X["path"].tolist(), cfg.size)
    loader = hand_loader(cfg, images, np.zeros(len(images), dtype=np.int64), shuffle=False)
    model.eval()
    out = []
    for xb, _ in loader:
        # entered per batch: a grad mode held across a yield would leak into the
        # other side's batches
        with torch.inference_mode():
            out.append(torch.softmax(model(memory_format(cfg, xb)), dim=1))
        yield
    return {"proba": torch.cat(out).numpy()}


# ---------------------------------------------------------------------------
# throughput mode
# ---------------------------------------------------------------------------

def same_model_check(cfg, clf, hand_model, X) -> float:
    """Max |p_skderm - p_hand| with skderm's weights copied into the hand-written net."""
    hand_model.load_state_dict(clf.module_.state_dict())
    p_sk = predict_skderm(clf, X)["proba"]
    p_hand = drive(predict_handwritten(hand_model, X, cfg))["proba"]
    return float(np.abs(p_sk - p_hand).max())


def warm_up(cfg, X, y) -> None:
    """One short untimed round of everything (oneDNN kernels, weight hashes, imports)."""
    # a random batch: the metadata is sorted by class, its head holds one class
    idx = np.random.default_rng(cfg.seed).permutation(len(X))[:cfg.batch_size]
    Xs, ys = X.iloc[idx], y.iloc[idx]
    for augment in cfg.augment_modes:
        sk = fit_skderm(cfg, Xs, ys, augment)
        hand = drive(fit_handwritten(cfg, Xs, ys, augment))
    predict_skderm(sk["model"], Xs)
    drive(predict_handwritten(hand["model"], Xs, cfg))


def one_repetition(cfg, X, y, rep: int) -> dict:
    """Fit (each augmentation mode), then predict, in turns; who starts alternates.

    With ``cfg.aa_check`` the skderm side is replaced by a second copy of the
    hand-written loop: an A/A test of the harness, whose ratios should be 1.
    """
    def main_fit(augment):
        if cfg.aa_check:
            return lambda turns: drive(fit_handwritten(cfg, X, y, augment), turns)
        return lambda turns: fit_skderm(cfg, X, y, augment, turns)

    out: dict = {}
    for k, augment in enumerate(cfg.augment_modes):
        out[f"fit_aug={augment}"] = in_turns(SIDES[(rep + k) % 2], main_fit(augment),
                                             fit_handwritten(cfg, X, y, augment))
    fitted = out[f"fit_aug={cfg.augment_modes[-1]}"]
    sk_model, hand_model = fitted["skderm"]["model"], fitted["handwritten"]["model"]
    if cfg.aa_check:
        def main_predict(turns):
            return drive(predict_handwritten(sk_model, X, cfg), turns)
    else:
        # identical weights for inference, so nothing but the code differs
        # (weights from separate augmented runs can differ in speed, e.g. denormals)
        hand_model.load_state_dict(sk_model.module_.state_dict())

        def main_predict(turns):
            return predict_skderm(sk_model, X, turns)
    out["predict"] = in_turns(SIDES[rep % 2], main_predict,
                              predict_handwritten(hand_model, X, cfg))
    return out


def _row(per_rep: dict[str, list[float]], images: int) -> dict:
    """Images/s from per-repetition seconds (or per-batch seconds with ``images`` = batch)."""
    med = {side: statistics.median(v) for side, v in per_rep.items()}
    paired = [h / s for s, h in zip(per_rep["skderm"], per_rep["handwritten"], strict=True)]
    return {"images_per_s": {side: images / t for side, t in med.items()},
            "median_s": med, "ratio": med["handwritten"] / med["skderm"],
            "median_paired_ratio": statistics.median(paired), "paired_ratios": paired,
            "n_pairs": len(paired), "all_s": per_rep}


def summarise_throughput(cfg, n: int, reps: list[dict]) -> dict:
    rows = {}
    for task in reps[0]:
        is_fit = task != "predict"
        what = "fit" if is_fit else "predict_proba"
        label = "" if not is_fit else (
            " (augmented)" if task.endswith("True") else " (no augmentation)")
        for clock, suffix in (("", ""), ("_cpu", ", CPU time")):
            whole = {s: [r[task][s][f"own{clock}_s"] for r in reps] for s in SIDES}
            rows[f"{what}, whole call{label}{suffix}"] = _row(
                whole, n * (cfg.epochs if is_fit else 1))
            # steady state: full batches except each call's first (set-up, lazy init)
            per_epoch = -(-n // cfg.batch_size)
            partial = n % cfg.batch_size != 0
            per_batch = {s: [] for s in SIDES}
            for r in reps:
                k = min(len(r[task][s]["batch_s"]) for s in SIDES)
                keep = [i for i in range(1, k) if not (partial and (i + 1) % per_epoch == 0)]
                for s in SIDES:
                    per_batch[s] += [r[task][s][f"batch{clock}_s"][i] for i in keep]
            if per_batch["skderm"]:
                rows[f"{what}, per batch{label}{suffix}"] = _row(per_batch, cfg.batch_size)
    return rows


def throughput_markdown(cfg, rows: dict, meta: dict) -> str:
    sk_name = "hand-written (A/A check)" if cfg.aa_check else "skderm"
    target = "should be 1.0: the harness's own spread" if cfg.aa_check else "target >= 0.95"
    lines = [
        f"{cfg.backbone} (weights={cfg.weights}), {meta['n_images']} images at "
        f"{cfg.size[0]}x{cfg.size[1]}, batch {cfg.batch_size}, {cfg.epochs} epoch(s), "
        f"{cfg.repeats} repetitions, the two sides taking turns batch by batch; "
        f"hand-written batches built with {HAND_COLLATE[cfg.hand_collate]}; torch "
        f"threads {meta['machine']['torch_num_threads']}, "
        f"{meta['machine']['cpus_available']} CPUs. ratio = {sk_name} / hand-written "
        f"images/s ({target}). `whole call` = the user-visible call (model build, "
        "cached images, all batches); `per batch` = steady-state batches (each call's "
        "first left out), each paired with the other side's batch run next to it. "
        "CPU-time rows count images per CPU-second of the process (all torch threads). "
        f"Last column: {sk_name}'s median time minus the hand-written one, per call or "
        "per batch.",
        "",
        f"| measurement | {sk_name} img/s | hand-written img/s | ratio of medians "
        "| median of paired ratios | pairs | difference of medians, ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        ips, med = r["images_per_s"], r["median_s"]
        lines.append(f"| {name} | {ips['skderm']:.1f} | {ips['handwritten']:.1f} | "
                     f"{r['ratio']:.3f} | {r['median_paired_ratio']:.3f} | {r['n_pairs']} | "
                     f"{1e3 * (med['skderm'] - med['handwritten']):+.1f} |")
    checks = meta.get("checks")
    if checks:
        lines += ["", f"Same model: max |p_skderm - p_hand| with identical weights = "
                      f"{checks['max_abs_proba_diff']:.2e}. JPEGs decoded during the timed "
                      f"skderm fits (cache pre-warmed): {checks['jpegs_decoded_in_timed_fits']}."]
    return "\n".join(lines) + "\n"


def run_throughput(cfg) -> dict:
    X, y, source = load_subset(cfg.data_root, cfg.n_images, cfg.seed)
    meta = {"data": source, "n_images": len(X), "machine": machine(), "config": vars_of(cfg)}
    print(f"data: {source}; {len(X)} images\nmachine: {meta['machine']}", flush=True)
    t0 = time.perf_counter()
    load_images(X["path"].tolist(), cfg.size)  # decode once: both sides start warm
    print(f"decoded {len(X)} images in {time.perf_counter() - t0:.1f}s "
          f"({cache_info().nbytes / 1e6:.0f} MB uint8)", flush=True)
    warm_up(cfg, X, y)
    reps = []
    for rep in range(cfg.repeats):
        t0 = time.perf_counter()
        reps.append(one_repetition(cfg, X, y, rep))
        print(f"repetition {rep + 1}/{cfg.repeats}: {time.perf_counter() - t0:.0f}s",
              flush=True)
    if not cfg.aa_check:
        last = reps[-1]
        fit_key = next(k for k in last if k.startswith("fit"))
        meta["checks"] = {
            "max_abs_proba_diff": same_model_check(cfg, last[fit_key]["skderm"]["model"],
                                                   last[fit_key]["handwritten"]["model"], X),
            "jpegs_decoded_in_timed_fits": sum(r[k]["skderm"]["jpegs_decoded"]
                                               for r in reps for k in r if k.startswith("fit")),
            "last_train_loss": {k: {s: last[k][s]["last_train_loss"] for s in SIDES}
                                for k in last if k.startswith("fit")},
        }
    meta["machine"]["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = summarise_throughput(cfg, len(X), reps)
    table = throughput_markdown(cfg, rows, meta)
    print(table)
    stem = (f"classifier_{cfg.backbone}" + ("_aa" if cfg.aa_check else "")
            + ("_torchcollate" if cfg.hand_collate == "torch" else ""))
    write(cfg.out, stem,
          {"meta": meta, "results": rows}, table)
    return rows


# ---------------------------------------------------------------------------
# memory mode
# ---------------------------------------------------------------------------

def _proc_status(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status in bytes (``None`` off Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def rss_bytes() -> int:
    """Current resident set size (the peak so far where /proc is missing)."""
    return _proc_status("VmRSS") or peak_rss_bytes()


class AnonPeak:
    """Samples anonymous RSS (heap, tensors, arrays; no library code pages) in a thread.

    ``ru_maxrss`` also counts the pages of torch's shared libraries that the
    first forward/backward pulls in, a fixed cost unrelated to the data; the
    anonymous part is where a float copy of the images would show up.
    """

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak = interval, _proc_status("RssAnon") or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _proc_status("RssAnon") or 0)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _proc_status("RssAnon") or 0)


def warm_torch(cfg) -> None:
    """A train and an eval step on random images: torch's lazy one-time allocations."""
    model = build_net(cfg, 2)
    xb = torch.randint(0, 256, (cfg.batch_size, 3, *cfg.size), dtype=torch.uint8)
    if cfg.memory_augment:
        xb = Augmentation().build()(xb)
    nn.functional.cross_entropy(model(xb), torch.zeros(len(xb), dtype=torch.long)).backward()
    torch.optim.AdamW(model.parameters()).step()
    with torch.inference_mode():
        model.eval()(xb)


def memory_worker(cfg) -> dict:
    """Runs in a fresh process: baselines, fit, predict_proba, peak RSS."""
    X, y, _ = load_subset(cfg.data_root, cfg.n_images, cfg.seed)
    gc.collect()
    import_rss = rss_bytes()
    warm_torch(cfg)
    gc.collect()
    warm_rss, warm_anon = rss_bytes(), _proc_status("RssAnon")
    t0 = time.perf_counter()
    with AnonPeak() as anon:
        if cfg.memory_worker == "skderm":
            clf = make_classifier(cfg, cfg.memory_augment).fit(X, y)
            fit_s, peak_fit, anon_fit = time.perf_counter() - t0, peak_rss_bytes(), anon.peak
            clf.predict_proba(X)
        else:
            model = drive(fit_handwritten(cfg, X, y, cfg.memory_augment))["model"]
            fit_s, peak_fit, anon_fit = time.perf_counter() - t0, peak_rss_bytes(), anon.peak
            drive(predict_handwritten(model, X, cfg))
    info = cache_info()
    return {"side": cfg.memory_worker, "n_images": len(X), "import_rss": import_rss,
            "warm_rss": warm_rss, "warm_anon": warm_anon,
            "peak_after_fit": peak_fit, "peak_after_predict": peak_rss_bytes(),
            "anon_peak_after_fit": anon_fit, "anon_peak_after_predict": anon.peak,
            "cache_nbytes": info.nbytes, "cache_entries": info.currsize, "fit_s": fit_s}


def spawn_worker(cfg, side: str, n_images: int) -> dict:
    cmd = [sys.executable, __file__, "--memory-worker", side, "--n-images", str(n_images),
           "--backbone", cfg.backbone, "--weights", str(cfg.weights),
           "--image-size", *map(str, cfg.size), "--batch-size", str(cfg.batch_size),
           "--epochs", str(cfg.epochs), "--seed", str(cfg.seed)]
    if cfg.data_root:
        cmd += ["--data-root", cfg.data_root]
    if cfg.memory_augment:
        cmd.append("--memory-augment")
    cmd += ["--hand-collate", cfg.hand_collate,
            "--channels-last", "on" if cfg.channels_last else "off"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"memory worker {side} n={n_images} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_row(big: dict, small: dict | None, phase: str) -> dict:
    cache = big["cache_nbytes"]
    peak = big[f"peak_after_{phase}"]
    anon = (big[f"anon_peak_after_{phase}"] or 0) - (big["warm_anon"] or 0)
    row = {"side": big["side"], "phase": phase, "n_images": big["n_images"],
           "cache_mb": cache / 1e6, "float32_copy_mb": cache * 4 / 1e6,
           "peak_minus_import_mb": (peak - big["import_rss"]) / 1e6,
           "peak_minus_warm_mb": (peak - big["warm_rss"]) / 1e6,
           "anon_growth_mb": anon / 1e6,
           "ratio_import": (peak - big["import_rss"]) / cache,
           "ratio_warm": (peak - big["warm_rss"]) / cache,
           "ratio_anon": anon / cache, "fit_s": big["fit_s"]}
    if small is not None:
        grown = (peak - big["warm_rss"]) - (small[f"peak_after_{phase}"] - small["warm_rss"])
        row["incremental_ratio"] = grown / (cache - small["cache_nbytes"])
    return row


def summarise_memory(runs: list[dict], small_n: int) -> list[dict]:
    rows = []
    for side in ("skderm", "handwritten"):
        big = next(r for r in runs if r["side"] == side and r["n_images"] != small_n)
        small = next((r for r in runs if r["side"] == side and r["n_images"] == small_n), None)
        rows += [memory_row(big, small, phase) for phase in ("fit", "predict")]
    return rows


def memory_markdown(cfg, rows: list[dict], small_n: int) -> str:
    r0 = rows[0]
    nan = float("nan")
    lines = [
        f"Peak memory of fitting {r0['n_images']} images at {cfg.size[0]}x{cfg.size[1]} "
        f"({cfg.backbone}, {cfg.epochs} epoch, batch {cfg.batch_size}, augmentation "
        f"{'default' if cfg.memory_augment else 'none'}) then predict_proba on them, each "
        "side in a fresh process. Growth is measured from the RSS after imports "
        "(`import`), and after a warm-up train/eval step on random images (`warm`: "
        "excludes torch's one-time library pages and buffers); `anon` is the sampled peak "
        "of anonymous RSS over the warm value. Ratios divide by "
        "`cache_info().nbytes`: 1.0 = nothing beyond the uint8 cache, +4.0 = one float32 "
        f"copy. `incremental` = peak growth from {small_n} to {r0['n_images']} images over "
        "the cache's growth.",
        "",
        "| side | peak after | uint8 cache MB | float32 copy MB | peak-import MB | "
        "peak-warm MB | anon MB | ratio import | ratio warm | ratio anon | incremental |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['side']} | {r['phase']} | {r['cache_mb']:.0f} | {r['float32_copy_mb']:.0f} | "
            f"{r['peak_minus_import_mb']:.0f} | {r['peak_minus_warm_mb']:.0f} | "
            f"{r['anon_growth_mb']:.0f} | {r['ratio_import']:.2f} | {r['ratio_warm']:.2f} | "
            f"{r['ratio_anon']:.2f} | {r.get('incremental_ratio', nan):.2f} |")
    return "\n".join(lines) + "\n"


def run_memory(cfg) -> list[dict]:
    X, _, source = load_subset(cfg.data_root, cfg.n_images, cfg.seed)
    n = len(X)
    small_n = min(cfg.memory_small_n, n)
    print(f"data: {source}; memory runs on {n} and {small_n} images", flush=True)
    plan = [("skderm", n), ("handwritten", n)]
    if small_n < n:
        # small runs too, so the fixed cost of torch can be subtracted
        plan += [("handwritten", small_n), ("skderm", small_n)]
    runs = []
    for side, size in plan:
        t0 = time.perf_counter()
        runs.append(spawn_worker(cfg, side, size))
        print(f"{side} n={size}: {time.perf_counter() - t0:.0f}s", flush=True)
    rows = summarise_memory(runs, small_n if small_n < n else -1)
    table = memory_markdown(cfg, rows, small_n)
    print(table)
    meta = {"data": source, "machine": machine(), "config": vars_of(cfg)}
    stem = "classifier_memory" + ("_augmented" if cfg.memory_augment else "")
    write(cfg.out, stem, {"meta": meta, "runs": runs, "results": rows}, table)
    return rows


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------

def vars_of(cfg) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()}


def write(folder: str, stem: str, report: dict, table: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    (out / f"{stem}.md").write_text(table)
    print(f"wrote {out / stem}.json and .md")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None,
                   help="HAM10000 folder (default: $SKDERM_HAM10000 or ../shared/ham10000)")
    p.add_argument("--n-images", type=int, default=None,
                   help="images to use (default: 128; with --memory: all)")
    p.add_argument("--backbone", default=None,
                   help="default: tf_efficientnet_lite0; with --memory: tiny")
    p.add_argument("--weights", type=weights_arg, default="imagenet",
                   help="'imagenet', a file, or 'none' (ignored for backbones without weights)")
    p.add_argument("--image-size", type=int, nargs=2, default=(112, 150),
                   metavar=("H", "W"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--augmentation", choices=("both", "none", "default"), default="both")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels-last", choices=("on", "off"), default="on",
                   help="memory format of both sides (on: skderm's CPU default)")
    p.add_argument("--hand-collate", choices=("numpy", "torch"), default="numpy",
                   help="hand-written batch assembly: one np.stack per batch (default), or "
                        "a tensor per item and torch's default_collate")
    p.add_argument("--aa-check", action="store_true",
                   help="A/A test of the harness: hand-written against itself (ratios ~1)")
    p.add_argument("--memory", action="store_true", help="measure peak memory instead")
    p.add_argument("--memory-small-n", type=int, default=512,
                   help="second, small fit to subtract torch's fixed cost")
    p.add_argument("--memory-augment", action="store_true",
                   help="augment in --memory runs (default: no augmentation)")
    p.add_argument("--memory-worker", choices=("skderm", "handwritten"),
                   help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(HERE / "results"))
    cfg = p.parse_args(argv)
    memory = cfg.memory or cfg.memory_worker
    cfg.backbone = cfg.backbone or ("tiny" if memory else "tf_efficientnet_lite0")
    if cfg.backbone == "tiny":
        cfg.weights = None  # the test backbone has no pretrained weights
    if cfg.n_images is None and not memory:
        cfg.n_images = 128
    cfg.size = tuple(cfg.image_size)
    cfg.channels_last = cfg.channels_last == "on"
    cfg.augment_modes = {"both": (False, True), "none": (False,), "default": (True,)}[
        cfg.augmentation]
    return cfg


def main(argv: list[str] | None = None):
    cfg = parse_args(argv)
    if cfg.memory_worker:
        print(json.dumps(memory_worker(cfg)))
        return None
    clear_cache()
    if cfg.memory:
        return run_memory(cfg)
    return run_throughput(cfg)


if __name__ == "__main__":
    main()
