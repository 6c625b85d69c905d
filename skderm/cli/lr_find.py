"""``skderm lr-find``: a learning-rate range test of a recipe on a HAM10000 folder."""

from __future__ import annotations

from skderm.cli.options import add_training_options
from skderm.cli.outputs import check_outputs, image_folders

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("lr-find", help="sweep the learning rate over a few hundred batches "
                                       "and suggest one")
    add_training_options(p)
    p.add_argument("--iterations", type=int, default=100, help="batches to sweep over")
    p.add_argument("--plot", metavar="PNG", help="also write the loss-vs-rate plot here")
    p.set_defaults(func=run)


def run(args, log) -> int:
    from skderm import load_ham10000
    from skderm.classifier.lr_finder import lr_find
    from skderm.cli.models import build_model

    outputs = [(args.plot, "file", "--plot")]
    check_outputs(outputs, data_folders=[args.data])
    data = load_ham10000(args.data)
    check_outputs(outputs, data_folders=image_folders(data.data["path"]))
    args.decision = "image"  # the sweep trains the network; a decision rule plays no part
    clf = build_model(args, log)
    if not hasattr(clf, "module"):
        raise ValueError("lr-find sweeps one network, and this recipe is a soft vote of "
                         "several: pass --recipe cpu (or cpu_images, gpu)")
    result = lr_find(clf, data.data, data.target, num_it=args.iterations)
    for lr, loss in zip(result.lrs[::max(1, len(result.lrs) // 10)],
                        result.losses[::max(1, len(result.lrs) // 10)], strict=True):
        log(f"  lr {lr:9.2e}  loss {loss:.4f}")
    if args.plot:
        from skderm.plotting import save_figure

        save_figure(result.plot(), args.plot)
        log(f"wrote {args.plot}")
    print(f"suggested lr: {result.suggestion:.2g} (steepest fall of the smoothed loss)")
    return 0
