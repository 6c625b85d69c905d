"""``skderm predict``: labels and probabilities for images, as a plain or an ISIC CSV.

Both formats agree with the label skderm gives: the plain CSV names how each
label was decided (``decided_by``) beside the model's probabilities; the ISIC
file holds the decision scores, whose argmax is that label.
"""

from __future__ import annotations

import os
import sys

from skderm.cli.options import add_model_file_options
from skderm.cli.outputs import check_outputs

__all__ = ["ISIC_COLUMNS", "add_parser", "image_files", "isic_frame", "run"]

#: Column order of the ISIC 2018 Task 3 submission format.
ISIC_COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="labels and class probabilities for images")
    add_model_file_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files, or folders of .jpg/.jpeg/.png images")
    p.add_argument("--csv", metavar="OUT", help="write here instead of to stdout")
    p.add_argument("--format", choices=("plain", "isic"), default="plain",
                   help="'plain': image, prediction, decided_by and each class's probability; "
                        "'isic': the ISIC 2018 Task 3 submission format, holding the "
                        "decision scores (see the command-line guide)")
    p.add_argument("--metadata", metavar="CSV",
                   help="for models that read metadata (age, sex, ...) or pool lesions: a CSV "
                        "with an image_id column (file names without extension) and those "
                        "columns, such as HAM10000_metadata.csv")
    p.add_argument("--refer", type=_share, metavar="SHARE", default=None,
                   help="mark the SHARE (e.g. 0.1) of images the model is least sure of as "
                        "referred to a dermatologist: a 'referred' column (plain format)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def _share(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share in [0, 1), e.g. 0.1")
    return value


def image_files(items: list[str]) -> list[str]:
    """The image files named, and those in the folders named, sorted per folder."""
    from skderm.exceptions import ImageError

    files = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, name) for name in os.listdir(item)
                           if name.lower().endswith(_IMAGE_SUFFIXES)
                           and os.path.isfile(os.path.join(item, name)))
            if not found:
                raise ImageError(f"folder {item!r} holds no .jpg, .jpeg or .png images", item)
            files += found
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise ImageError(f"no image or folder at {item!r}", item)
    return files


def isic_frame(stems: list[str], scores, classes):
    """The ISIC 2018 Task 3 submission table; a class the model never saw gets 0.0."""
    import numpy as np
    import pandas as pd

    codes = [str(c).upper() for c in classes]
    extra = sorted(set(codes) - set(ISIC_COLUMNS))
    if extra:
        raise ValueError(f"--format isic needs a model of HAM10000 dx classes "
                         f"{[c.lower() for c in ISIC_COLUMNS]}, but this one also predicts "
                         f"{extra}; use --format plain")
    table = pd.DataFrame({"image": stems})
    for code in ISIC_COLUMNS:
        table[code] = scores[:, codes.index(code)] if code in codes else np.zeros(len(stems))
    return table


def _inputs(args, clf, files):
    """X for ``clf``: the files, or a frame of them and their --metadata columns."""
    from skderm.cli.metadata import with_metadata
    from skderm.cli.models import members, metadata_columns, pooling_column

    columns, group = metadata_columns(clf), pooling_column(clf)
    if columns and not args.metadata:
        raise ValueError(f"model {args.model!r} also reads metadata columns {columns}, which "
                         "image files do not carry; pass --metadata CSV (an image_id column "
                         "naming each image's file stem, plus those columns: "
                         "HAM10000_metadata.csv has them)")
    X = files
    if args.metadata and (columns or group):
        X = with_metadata(files, args.metadata, columns, members(clf)[0].path_column,
                          optional=[group] if group else [])
    elif args.metadata:  # stderr: the table may be going to stdout
        print(f"note: model {args.model!r} reads no metadata; --metadata ignored",
              file=sys.stderr)
    if group and hasattr(X, "columns") and group in X.columns:
        # the CSV is read as text: an empty id is a missing one, an image on its own
        X[group] = X[group].where(X[group] != "", None)
    elif group:
        print(f"note: model {args.model!r} pools each lesion's images, but these images come "
              f"without a {group!r} (pass --metadata with that column to pool them); deciding "
              "image by image", file=sys.stderr)
        clf.set_params(group_column=None)
    return X


def run(args, log) -> int:
    import pandas as pd

    from skderm._utils.files import atomic_write
    from skderm.cli.models import decided_by, decision_scores, labels, read_model

    files = image_files(args.images)
    if args.refer is not None and args.format == "isic":
        raise ValueError("--refer marks referred images in a 'referred' column, which the ISIC "
                         "format has no place for; use --format plain")
    check_outputs([(args.csv, "file", "--csv")],
                  inputs=[args.model, *filter(None, [args.metadata]), *files],
                  data_folders=[item for item in args.images if os.path.isdir(item)])
    clf = read_model(args)
    X = _inputs(args, clf, files)
    proba = clf.predict_proba(X)
    if args.format == "isic":
        stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
        scores = decision_scores(clf, proba)
        if scores is not proba:
            print(f"note: the ISIC file holds decision scores ({decided_by(clf)}: the "
                  "probabilities shifted and renormalised), so its argmax is skderm's label",
                  file=sys.stderr)
        table = isic_frame(stems, scores, clf.classes_)
    else:
        table = pd.DataFrame({"image": files, "prediction": labels(clf, proba),
                              "decided_by": decided_by(clf)})
        if args.refer is not None:
            from skderm.metrics.abstention import referral_mask

            # confidence of the decision as made (shifted scores for a per-lesion model)
            table["referred"] = referral_mask(decision_scores(clf, proba), refer=args.refer)
        for j, c in enumerate(clf.classes_):
            table[str(c)] = proba[:, j]
    if args.csv:
        with atomic_write(args.csv, "w") as fh:
            table.to_csv(fh, index=False)
        log(f"predicted {len(files)} images; wrote {args.csv}")
    else:
        sys.stdout.write(table.to_csv(index=False))
    return 0
