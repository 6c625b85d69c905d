"""Mixed precision and channels_last: what do they buy on this device?

For each backbone, four settings of the same network (``skderm.classifier.network.LesionNet``
around ``skderm.backbones.build_backbone``) are timed side by side, interleaved:
fp32 NCHW (the baseline), fp32 channels_last, bfloat16 autocast NCHW and bfloat16
autocast channels_last (and, with ``--freeze-until``, fp32 and bfloat16
channels_last with the backbone's first layers frozen,
``LesionClassifier(freeze_until=...)``). A training step is forward + cross-entropy + backward +
AdamW; inference is a forward pass under ``torch.no_grad``. Inputs are uint8
batches already on the device, so the figures are the network's ceiling, not the
data pipeline's (``bench_classifier.py`` and ``bench_pipeline.py`` measure that).

``--end-to-end`` also times ``LesionClassifier.fit`` with its default
``mixed_precision="auto"`` / ``channels_last="auto"`` on synthetic images
(``make_lesions``; second epoch, warm cache) to show what the package picks.
``--agreement`` compares fp32 and bfloat16 features of real images through the
ImageNet weights (cosine similarity), to show what bfloat16 costs in accuracy.

timm's published training figures at 224x224 with AMP on an RTX 3090 (about
3,500 img/s for ResNet-18 and 1,750 img/s for EfficientNet-B0) are printed
beside ours on CUDA.

    python benchmarks/bench_precision.py                         # CPU: lite0 150x200, batch 32
    python benchmarks/bench_precision.py --device cuda --end-to-end   # resnet18, efficientnet_b0, lite0 at 224
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from skderm import LesionClassifier, make_lesions
from skderm.backbones import build_backbone
from skderm.classifier.network import LesionNet

HERE = Path(__file__).resolve().parent
SETTINGS = [("fp32", False, False), ("fp32 channels_last", False, True),
            ("bf16", True, False), ("bf16 channels_last", True, True)]


def settings(args) -> list[tuple[str, bool, bool, str | None]]:
    """(label, bf16 autocast, channels_last, freeze_until) of each timed setting."""
    out = [(label, amp, cl, None) for label, amp, cl in SETTINGS]
    if args.freeze_until:
        out += [(f"{label} channels_last, frozen until {args.freeze_until}", amp, True,
                 args.freeze_until) for label, amp in (("fp32", False), ("bf16", True))]
    return out
# timm's benchmark results, train img/s at 224, AMP, RTX 3090 (quoted in the issue)
PUBLISHED = {"resnet18": 3500, "efficientnet_b0": 1750}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name: str, n_classes: int, channels_last: bool, device, weights=None) -> LesionNet:
    backbone, n_features, spec = build_backbone(name, weights)
    net = LesionNet(backbone, n_features, n_classes, spec.mean, spec.std).to(device)
    return net.to(memory_format=torch.channels_last) if channels_last else net


def batch(args, device, channels_last: bool):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.batch_size, 3, *args.image_size), dtype=torch.uint8,
                      generator=g).to(device)
    y = torch.randint(0, 7, (args.batch_size,), generator=g).to(device)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y


def time_steps(fn, steps: int, device) -> float:
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return time.perf_counter() - t


def bench_backbone(name: str, args, device) -> dict:
    nets, opts, data = {}, {}, {}
    for label, _, cl, until in settings(args):
        torch.manual_seed(0)
        nets[label] = build(name, 7, cl, device)
        if until is not None:  # the leading layers keep their weights, as freeze_until does
            fixed = set(nets[label].parameters_before(until))
            for pname, p in nets[label].named_parameters():
                p.requires_grad_(pname not in fixed)
        opts[label] = torch.optim.AdamW(
            [p for p in nets[label].parameters() if p.requires_grad], lr=1e-4)
        data[label] = batch(args, device, cl)

    def train_step(label, amp):
        net, opt, (x, y) = nets[label], opts[label], data[label]
        net.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def infer_step(label, amp):
        net, (x, _) = nets[label], data[label]
        net.eval()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            net(x)

    for label, amp, _, _ in settings(args):  # warm-up: kernels, allocator, oneDNN primitives
        for _ in range(args.warmup):
            train_step(label, amp)
            infer_step(label, amp)
    times = {label: {"train": [], "infer": []} for label, _, _, _ in settings(args)}
    for _ in range(args.repeats):
        for label, amp, _, _ in settings(args):
            times[label]["train"].append(
                time_steps(functools.partial(train_step, label, amp), args.steps, device))
            times[label]["infer"].append(
                time_steps(functools.partial(infer_step, label, amp), args.steps, device))
    n = args.steps * args.batch_size
    rows = {}
    for label in times:
        rows[label] = {k: n / float(np.median(v)) for k, v in times[label].items()}
        rows[label]["seconds"] = times[label]
    base = rows["fp32"]
    for label in rows:
        rows[label]["train_ratio"] = rows[label]["train"] / base["train"]
        rows[label]["infer_ratio"] = rows[label]["infer"] / base["infer"]
    for d in (nets, opts, data):
        d.clear()  # free the networks before the next backbone
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def end_to_end(name: str, args, device) -> dict:
    """LesionClassifier.fit at its defaults: images/s of the second epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        data = make_lesions(args.e2e_images, image_size=tuple(args.image_size),
                            random_state=0, directory=tmp)
        clf = LesionClassifier(backbone=name, weights=None, image_size=tuple(args.image_size),
                               batch_size=args.batch_size, max_epochs=2, valid_size=None,
                               device=device.type, verbose=0, random_state=0)
        clf.fit(data.data, data.target)
        amp, cl = clf._use_amp(), clf._use_channels_last()
        dur = float(clf.history[-1, "dur"])
    return {"images_per_s": args.e2e_images / dur, "epoch_seconds": dur,
            "mixed_precision": amp, "channels_last": cl}


def agreement(args, device) -> dict:
    """fp32 vs bfloat16 features of real images through the ImageNet weights."""
    from skderm import load_ham10000
    from skderm.images import load_images

    root = args.data_root or os.environ.get("SKDERM_HAM10000", str(HERE.parent.parent /
                                                                    "shared" / "ham10000"))
    data = load_ham10000(root)
    paths = data.data["path"].sample(args.agreement_images, random_state=0).tolist()
    x = torch.from_numpy(np.stack(load_images(paths, tuple(args.image_size))))
    x = x.permute(0, 3, 1, 2).contiguous().to(device)
    out = {}
    for name in args.backbones:
        net = build(name, 7, True, device, weights="imagenet").eval()
        with torch.no_grad():
            f32 = torch.cat([net.features(b) for b in x.split(args.batch_size)]).float()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                b16 = torch.cat([net.features(b) for b in x.split(args.batch_size)]).float()
        cos = torch.nn.functional.cosine_similarity(f32, b16, dim=1)
        rel = (f32 - b16).norm(dim=1) / f32.norm(dim=1)
        out[name] = {"cosine_min": float(cos.min()), "cosine_median": float(cos.median()),
                     "relative_l2_median": float(rel.median()), "images": len(paths)}
    return out


def markdown(report: dict) -> str:
    a = report["args"]
    lines = [f"Device: {report['device_name']}, {a['image_size'][0]}x{a['image_size'][1]}, "
             f"batch {a['batch_size']}, torch threads {report['threads']}, median of "
             f"{a['repeats']} interleaved runs of {a['steps']} steps.", "",
             "| backbone | setting | train img/s | x fp32 | inference img/s | x fp32 |"
             " published train img/s |", "|---|---|---|---|---|---|---|"]
    for name, rows in report["backbones"].items():
        for label, r in rows.items():
            pub = PUBLISHED.get(name, "") if report["device"] == "cuda" else ""
            lines.append(f"| {name} | {label} | {r['train']:.1f} | {r['train_ratio']:.2f} | "
                         f"{r['infer']:.1f} | {r['infer_ratio']:.2f} | {pub} |")
    if report.get("end_to_end"):
        lines += ["", "| backbone | LesionClassifier.fit defaults | img/s (epoch 2) |",
                  "|---|---|---|"]
        for name, r in report["end_to_end"].items():
            lines.append(f"| {name} | mixed_precision={r['mixed_precision']}, "
                         f"channels_last={r['channels_last']} | {r['images_per_s']:.1f} |")
    if report.get("agreement"):
        lines += ["", "| backbone | images | feature cosine fp32 vs bf16 (median / min) |"
                  " relative L2 error (median) |", "|---|---|---|---|"]
        for name, r in report["agreement"].items():
            lines.append(f"| {name} | {r['images']} | {r['cosine_median']:.4f} / "
                         f"{r['cosine_min']:.4f} | {r['relative_l2_median']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--backbones", default=None,
                   help="comma-separated (default: tf_efficientnet_lite0 on CPU; "
                        "resnet18,efficientnet_b0,tf_efficientnet_lite0 on CUDA)")
    p.add_argument("--image-size", type=int, nargs=2, default=None,
                   help="H W (default 150 200 on CPU, 224 224 on CUDA)")
    p.add_argument("--batch-size", type=int, default=None, help="default 32 CPU, 256 CUDA")
    p.add_argument("--steps", type=int, default=None, help="steps per timing (3 CPU, 20 CUDA)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=None, help="default 1 CPU, 5 CUDA")
    p.add_argument("--freeze-until", default=None, metavar="LAYER",
                   help="also time fp32 and bf16 channels_last with the backbone frozen before LAYER "
                        "(LesionClassifier's freeze_until), e.g. blocks.3")
    p.add_argument("--end-to-end", action="store_true")
    p.add_argument("--e2e-images", type=int, default=None, help="default 256 CPU, 4096 CUDA")
    p.add_argument("--agreement", action="store_true")
    p.add_argument("--agreement-images", type=int, default=256)
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.backbones = (args.backbones or ("resnet18,efficientnet_b0,tf_efficientnet_lite0"
                                         if cuda else "tf_efficientnet_lite0")).split(",")
    args.image_size = args.image_size or ([224, 224] if cuda else [150, 200])
    args.batch_size = args.batch_size or (256 if cuda else 32)
    args.steps = args.steps or (20 if cuda else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    args.e2e_images = args.e2e_images or (4096 if cuda else 256)
    if cuda:
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if cuda else (platform.processor() or "cpu")
    report = {"device": device.type, "device_name": name, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "args": vars(args), "backbones": {}}
    print(f"{name}; torch {torch.__version__}; {torch.get_num_threads()} threads", flush=True)
    for b in args.backbones:
        report["backbones"][b] = bench_backbone(b, args, device)
        for label, r in report["backbones"][b].items():
            print(f"  {b:24s} {label:20s} train {r['train']:8.1f} img/s ({r['train_ratio']:.2f}x)"
                  f"  infer {r['infer']:8.1f} img/s ({r['infer_ratio']:.2f}x)", flush=True)
    if args.end_to_end:
        report["end_to_end"] = {b: end_to_end(b, args, device) for b in args.backbones}
    if args.agreement:
        report["agreement"] = agreement(args, device)
    table = markdown(report)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    stem = f"precision_{device.type}"
    Path(args.out, stem + ".json").write_text(json.dumps(report, indent=1, default=str))
    Path(args.out, stem + ".md").write_text(table)
    return report


if __name__ == "__main__":
    main()
