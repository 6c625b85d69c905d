"""``skderm backbones``: the backbone registry and which weights are on this machine."""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("backbones", help="the backbone registry and available weights")
    p.add_argument("--include", help="only names containing this text")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args, log) -> int:
    from skderm.backbones import hub_checkpoint_dir, list_backbones

    frame = list_backbones(args.include)
    frame = frame.assign(weights=frame.weights_available.map({True: "available",
                                                              False: "missing"}))
    print(frame[["name", "source", "input_size", "weights", "weights_file"]].to_string(
        index=False))
    print(f"\nMissing weights are looked for in {hub_checkpoint_dir()} "
          "(set TORCH_HOME to move it) and downloaded there when online.")
    return 0
