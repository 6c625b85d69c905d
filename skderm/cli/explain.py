"""``skderm explain``: Grad-CAM (or occlusion) overlays of images, written as PNGs."""

from __future__ import annotations

import os

from skderm.cli.options import add_model_file_options
from skderm.cli.outputs import check_outputs

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="write saliency overlays: where the network looked")
    add_model_file_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR")
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the PNG overlays")
    p.add_argument("--method", choices=("grad_cam", "occlusion"), default="grad_cam")
    p.add_argument("--metadata", metavar="CSV",
                   help="for models that read metadata: as for `skderm predict`")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args, log) -> int:
    from PIL import Image

    from skderm import explain
    from skderm.cli.metadata import with_metadata
    from skderm.cli.models import read_model
    from skderm.cli.predict import image_files
    from skderm.images import read_image

    files = image_files(args.images)
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise ValueError(f"images {twice[:3]} share a file name in different folders or "
                         "formats, so their overlays would overwrite each other; explain "
                         "them in separate runs with different --out folders")
    inputs = [args.model, *files] + ([args.metadata] if args.metadata else [])
    folders = sorted({os.path.dirname(os.path.abspath(f)) for f in files})
    check_outputs([(args.out, "dir", "--out")], inputs=inputs, data_folders=folders)
    clf = read_model(args)
    inner = getattr(clf, "estimator_", clf)
    if not hasattr(inner, "module_"):
        raise ValueError(f"model {args.model!r} is a soft vote of several networks; saliency "
                         "explains one network: train one with --recipe cpu to explain it")
    columns = list(getattr(inner, "metadata_columns", None) or [])
    if columns and not args.metadata:
        raise ValueError(f"this model reads {columns}: give --metadata CSV")
    X = with_metadata(files, args.metadata, columns, inner.path_column) if columns else files
    maps = getattr(explain, args.method)(inner, X)
    os.makedirs(args.out, exist_ok=True)
    labels = inner.predict(X)
    for path, saliency, label in zip(files, maps, labels, strict=True):
        image = read_image(path, saliency.shape)
        name = f"{os.path.splitext(os.path.basename(path))[0]}_{args.method}.png"
        Image.fromarray(explain.overlay(image, saliency)).save(os.path.join(args.out, name))
        log(f"{os.path.basename(path)}: {label}")
    print(f"wrote {len(files)} {args.method} overlays to {args.out}")
    return 0
