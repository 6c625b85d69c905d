"""What the evaluation report costs beside the prediction it needs.

The `cpu` recipe's network (its head fitted for one epoch on ten images of each class: the
report's cost does not depend on how good the model is) predicts ``--images``
real HAM10000 images; then :func:`skderm.report.write_report` writes the page
with lesion-bootstrap intervals and a Grad-CAM gallery of the top losses, and
:func:`skderm.report.format_summary` the terminal table. Writes
``results/report.{json,md}``.

    python benchmarks/bench_report.py --data ../shared/ham10000 [--images 2000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/ham10000")
    p.add_argument("--images", type=int, default=2000)
    args = p.parse_args(argv)
    from skderm import load_ham10000
    from skderm.explain import grad_cam
    from skderm.recipes import make_recipe
    from skderm.report import evaluate, format_summary, write_report

    data = load_ham10000(args.data)
    clf = make_recipe("cpu", max_epochs=1, freeze="backbone", verbose=0)
    few = data.target.groupby(data.target).head(10).index  # ten images of every class
    clf.fit(data.data.loc[few], data.target.loc[few])
    test = data.data.iloc[-args.images:]
    y = data.target.iloc[-args.images:].to_numpy()
    groups = test["lesion_id"].to_numpy()
    t = time.perf_counter()
    proba = clf.predict_proba(test)
    predict_s = time.perf_counter() - t
    frame = test.set_index("path", drop=False)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write_report(out, y_true=y, proba=proba, classes=clf.classes_, groups=groups,
                     images=list(test["path"]), model_info={"model": "cpu recipe, 1 epoch"},
                     data_summary={"images": len(y)},
                     saliency=lambda paths: grad_cam(clf, frame.loc[list(paths)]))
    report_s = time.perf_counter() - t
    t = time.perf_counter()
    format_summary(y, proba, clf.classes_, groups=groups,
                   evaluation=evaluate(y, proba, clf.classes_, groups=groups))
    summary_s = time.perf_counter() - t
    result = {"images": len(y), "predict_s": predict_s, "report_s": report_s,
              "summary_s": summary_s, "report_over_predict": report_s / predict_s}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(result, indent=2))
    lines = ["| step | seconds | x predict_proba |", "|---|---|---|",
             f"| predict_proba ({len(y)} images, flip TTA, test crop) | {predict_s:.1f} | 1.00 |",
             f"| write_report (intervals, figures, Grad-CAM gallery) | {report_s:.1f} | "
             f"{report_s / predict_s:.2f} |",
             f"| format_summary (terminal table) | {summary_s:.1f} | "
             f"{summary_s / predict_s:.2f} |"]
    (RESULTS / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
