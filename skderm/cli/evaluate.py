"""``skderm evaluate``: score a saved model on a HAM10000 folder and write a report."""

from __future__ import annotations

from skderm.cli.options import add_model_file_options
from skderm.cli.outputs import check_outputs, image_folders

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a saved model on a HAM10000 folder")
    add_model_file_options(p)
    p.add_argument("--data", metavar="DIR", required=True, help="a HAM10000 folder")
    p.add_argument("--out", metavar="REPORT_DIR", required=True,
                   help="folder for metrics.json, report.csv and plots")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args, log) -> int:
    from skderm import load_ham10000
    from skderm.cli.models import decided_by, labels, read_model
    from skderm.cli.report import metrics_dict, write_report
    from skderm.metrics import classification_report_frame

    outputs = [(args.out, "dir", "--out")]
    check_outputs(outputs, inputs=[args.model], data_folders=[args.data])
    data = load_ham10000(args.data)
    check_outputs(outputs, data_folders=image_folders(data.data["path"]))
    clf = read_model(args)
    proba = clf.predict_proba(data.data)
    y_pred, y_true = labels(clf, proba), data.target.to_numpy()
    report = classification_report_frame(y_true, y_pred, proba, classes=clf.classes_)
    written = write_report(args.out, y_true, y_pred, proba, clf.classes_, report, log)
    metrics = metrics_dict(report, len(y_true))
    how = decided_by(clf)
    print(f"{len(y_true)} images: balanced accuracy {metrics['balanced_accuracy']:.3f}, "
          f"MCC {metrics['mcc']:.3f}, accuracy {metrics['accuracy']:.3f}"
          + (f" ({how})" if how != "argmax" else ""))
    log(f"wrote {', '.join(written)} to {args.out}")
    return 0
