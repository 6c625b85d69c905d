"""``skderm evaluate``: score a saved model on a HAM10000 folder and write a report."""

from __future__ import annotations

import os

from skderm.cli.options import add_model_file_options
from skderm.cli.outputs import check_outputs, image_folders

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a saved model on a HAM10000 folder")
    add_model_file_options(p)
    p.add_argument("--data", metavar="DIR", required=True, help="a HAM10000 folder")
    p.add_argument("--out", metavar="REPORT_DIR", required=True,
                   help="folder for report.html (open it in a browser), metrics.json, "
                        "report.csv and plots")
    p.add_argument("--no-saliency", action="store_true",
                   help="leave the Grad-CAM maps out of the report's gallery of top losses")
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
    page = _html_report(args, clf, data, proba, y_pred, how, log)
    if page:
        written.append(page)
    log(f"wrote {', '.join(written)} to {args.out}")
    return 0


def _html_report(args, clf, data, proba, y_pred, how, log) -> str | None:
    """The per-class table with its intervals on the terminal, and report.html where
    matplotlib draws its figures; returns the page's name, or None."""
    import numpy as np

    from skderm.cli.models import describe
    from skderm.cli.report import plotting_or_none
    from skderm.report import evaluate, format_summary

    groups = data.groups.to_numpy()
    decided = None if how == "argmax" else np.asarray(y_pred)
    y_true = data.target.to_numpy()
    ev = evaluate(y_true, proba, clf.classes_, groups=groups, decision_labels=decided)
    print(format_summary(y_true, proba, clf.classes_, groups=groups, decision_labels=decided,
                         evaluation=ev))
    if plotting_or_none(lambda *msg: None) is None:
        return None  # the notice about plots has been given
    from skderm.report import write_report
    network = getattr(clf, "estimator_", clf)
    saliency = None
    if not args.no_saliency and hasattr(network, "module_"):
        from skderm.explain import grad_cam

        frame = data.data.set_index(network.path_column, drop=False)
        saliency = lambda paths: grad_cam(network, frame.loc[list(paths)])  # noqa: E731
    model_info = {"model file": args.model, "model": describe(clf), "decision": how}
    summary = {"images": len(y_true), "lesions": int(data.groups.nunique()),
               "folder": args.data,
               "protocol": f"every image of {args.data}, scored image by image; the intervals "
                           "resample whole lesions"}
    path = write_report(args.out, y_true=y_true, proba=proba, classes=clf.classes_,
                        groups=groups, images=list(data.data["path"]), model_info=model_info,
                        data_summary=summary, saliency=saliency, decision_labels=decided)
    return os.path.basename(path)
