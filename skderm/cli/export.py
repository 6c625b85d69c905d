"""``skderm export``: a saved model's whole prediction path as ONNX or TorchScript."""

from __future__ import annotations

from skderm.cli.options import add_model_file_options
from skderm.cli.outputs import check_outputs

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a model as ONNX or TorchScript (uint8 pixels in, "
                                      "probabilities out)")
    add_model_file_options(p)
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--out", metavar="FILE", required=True, help="the file to write")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args, log) -> int:
    from skderm.cli.models import read_model
    from skderm.export import export_model

    check_outputs([(args.out, "file", "--out")], inputs=[args.model])
    clf = read_model(args)
    inner = getattr(clf, "estimator_", clf)  # a per-lesion wrapper exports its network
    if inner is not clf:
        log("note: the exported file gives each image's probabilities; the per-lesion "
            "pooling and prior shift of the saved model are not part of it")
    export_model(inner, args.out, format=args.format)
    print(f"wrote {args.format} to {args.out} (input: uint8 images "
          f"{inner.image_size_[0]}x{inner.image_size_[1]}x3; see the serving guide)")
    return 0
