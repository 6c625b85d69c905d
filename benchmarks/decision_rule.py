"""Choose the decision rule on held-out folds: per image or per lesion, and the prior shift.

    python benchmarks/decision_rule.py --data ../shared/ham10000 --fixed=-0.1,-0.15 \\
        --recipes ensemble_cpu_e24_lite2,finetune_192_meta_all_fu3_la_mix04_cut10_tc

Reads the out-of-fold probabilities that ``ham10000_cv.py`` saved
(``benchmarks/results/oof/<recipe>_fold<k>.npz``) and scores the decision
rules of :class:`skderm.LesionLevelClassifier`: every image on its own, or
each lesion's images pooled (mean probabilities), each with a prior shift
``t`` (``argmax(log p - t * log prior)``, prior = the fold's training labels'
class frequencies).

The shift is *cross-fitted*: for each fold k, the ``t`` of ``--shifts`` that
scores best over the other folds' predictions is applied to fold k, so no
fold's labels choose its own rule. ``--criterion`` says what "best" is:
``sum`` (balanced accuracy + MCC) or ``margin`` (the smaller of balanced
accuracy - ``bars[0]`` and MCC - ``bars[1]``, for a pair of targets; see
``--bars``). When every fold's complement picks the same ``t``, that fixed
rule scores exactly what the table reports. ``t = 0`` rows are the recipes'
own predictions, for reference; ``--fixed`` adds rows for shifts decided in
advance (those of :data:`skderm.recipes.LESION_DECISIONS`). Results go to
``benchmarks/results/decision_rule.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef

from skderm import load_ham10000
from skderm.decision import average_by_lesion, shifted_argmax
from skderm.metrics import bootstrap_report

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHIFTS = tuple(round(t, 2) for t in np.arange(-0.5, 0.31, 0.05))
VIEWS = ("image", "lesion")


def _operating_points():
    spec = importlib.util.spec_from_file_location("operating_points", HERE / "operating_points.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fold_scores(y, groups, folds, shifts, view: str, predictions: list | None = None):
    """``scores[k, i] = (balanced accuracy, MCC)`` of fold k at ``shifts[i]``.

    ``predictions``, a list, receives each fold's labels at every shift
    (an array of shape (n_shifts, n_test) per fold).
    """
    if view not in VIEWS:
        raise ValueError(f"view {view!r} is not one of {VIEWS}")
    scores = np.zeros((len(folds), len(shifts), 2))
    for k, (test, classes, proba) in enumerate(folds):
        train = np.setdiff1d(np.arange(len(y)), test)
        prior = np.array([(y[train] == c).mean() for c in classes])
        if (prior == 0).any():
            raise ValueError(f"fold {k}: classes {list(classes[prior == 0])} have no "
                             "training image")
        if view == "lesion":
            proba = average_by_lesion(proba, groups[test])
        labels = np.array([classes[shifted_argmax(proba, prior, t)] for t in shifts])
        for i, pred in enumerate(labels):
            scores[k, i] = (balanced_accuracy_score(y[test], pred),
                            matthews_corrcoef(y[test], pred))
        if predictions is not None:
            predictions.append(labels)
    return scores


def cross_fit(scores: np.ndarray, shifts, criterion: str, bars=(0.80, 0.70)) -> dict:
    """Each fold scored at the shift its complement scores best at (mean over those folds)."""
    if criterion not in ("sum", "margin"):
        raise ValueError(f"criterion {criterion!r} is not 'sum' or 'margin'")
    if len(scores) < 2:
        raise ValueError("cross-fitting a shift needs 2 or more folds")
    chosen, index, bacc, mcc = [], [], [], []
    for k in range(len(scores)):
        others = np.delete(scores, k, axis=0).mean(axis=0)
        if criterion == "sum":
            value = others.sum(axis=1)
        else:
            value = np.minimum(others[:, 0] - bars[0], others[:, 1] - bars[1])
        i = int(np.argmax(value))
        chosen.append(float(shifts[i]))
        index.append(i)
        bacc.append(float(scores[k, i, 0]))
        mcc.append(float(scores[k, i, 1]))
    return {"shifts": chosen, "shift_index": index, "bacc": bacc, "mcc": mcc,
            "bacc_mean": float(np.mean(bacc)), "bacc_sd": float(np.std(bacc, ddof=1)),
            "mcc_mean": float(np.mean(mcc)), "mcc_sd": float(np.std(mcc, ddof=1))}


def _intervals(y, groups, folds, predictions, index, n_boot: int) -> dict:
    """Lesion-grouped bootstrap 95% intervals on the folds' pooled predictions."""
    test = np.concatenate([f[0] for f in folds])
    pred = np.concatenate([p[i] for p, i in zip(predictions, index, strict=True)])
    boot = bootstrap_report(y[test], pred, groups=groups[test], n_boot=n_boot, random_state=0)
    return {"bacc_ci": [float(boot.loc["balanced_accuracy", "low"]),
                        float(boot.loc["balanced_accuracy", "high"])],
            "mcc_ci": [float(boot.loc["mcc", "low"]), float(boot.loc["mcc", "high"])]}


def _fixed(recipe, view, scores, at: int, shift: float, label: str) -> dict:
    """The row of one shift applied to every fold."""
    s = scores[:, at]
    n = len(scores)
    return {"recipe": recipe, "view": view, "criterion": label, "shifts": [shift] * n,
            "shift_index": [at] * n, "bacc": s[:, 0].tolist(), "mcc": s[:, 1].tolist(),
            "bacc_mean": float(s[:, 0].mean()), "bacc_sd": float(s[:, 0].std(ddof=1)),
            "mcc_mean": float(s[:, 1].mean()), "mcc_sd": float(s[:, 1].std(ddof=1))}


def evaluate(recipe: str, y, groups, shifts, n_folds: int, oof: Path, criteria, bars,
             n_boot: int = 1000, fixed=()) -> list:
    """Rows of ``recipe``: per view, t = 0, each criterion's cross-fitted shift, and each
    ``fixed`` shift applied to every fold (a rule decided in advance, e.g. a recipe's)."""
    ops = _operating_points()
    folds = [ops._fold_proba(oof, recipe, k) for k in range(n_folds)]
    rows = []
    grid = [*shifts, 0.0, *fixed]
    for view in VIEWS:
        predictions = []
        scores = fold_scores(y, groups, folds, grid, view, predictions)
        start = len(rows)
        rows.append(_fixed(recipe, view, scores, len(shifts), 0.0, "none (t = 0)"))
        for criterion in criteria:
            rows.append({"recipe": recipe, "view": view, "criterion": criterion,
                         **cross_fit(scores[:, :len(shifts)], shifts, criterion, bars)})
        for j, t in enumerate(fixed):
            rows.append(_fixed(recipe, view, scores, len(shifts) + 1 + j, float(t),
                               f"fixed t = {t:+g}"))
        for row in rows[start:]:
            row.update(_intervals(y, groups, folds, predictions, row["shift_index"], n_boot))
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| recipe | predictions | shift chosen by | t per fold | balanced acc. | MCC "
             "| 95% intervals (lesion bootstrap) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ts = ", ".join(f"{t:+g}" for t in r["shifts"])
        lines.append(f"| {r['recipe']} | {'per lesion' if r['view'] == 'lesion' else 'per image'}"
                     f" | {r['criterion']} | {ts} | {r['bacc_mean']:.3f} +/- {r['bacc_sd']:.3f} "
                     f"| {r['mcc_mean']:.3f} +/- {r['mcc_sd']:.3f} "
                     f"| {r['bacc_ci'][0]:.3f}-{r['bacc_ci'][1]:.3f} / "
                     f"{r['mcc_ci'][0]:.3f}-{r['mcc_ci'][1]:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", required=True,
                   help="comma-separated recipes with saved folds (a+b: their soft vote)")
    p.add_argument("--criteria", default="sum,margin",
                   help="comma-separated: sum (bacc + MCC), margin (see --bars)")
    p.add_argument("--bars", default="0.80,0.70",
                   help="balanced accuracy and MCC targets of the margin criterion")
    _operating_points().add_fold_arguments(p, SHIFTS, "to choose from")
    p.add_argument("--fixed", default="",
                   help="comma-separated shifts also scored as fixed rules on every fold "
                        "(skderm.recipes.LESION_DECISIONS' -0.1 and -0.15); write "
                        "--fixed=-0.1 when the first is negative")
    args = p.parse_args(argv)
    try:
        shifts = [float(t) for t in args.shifts.split(",")]
        bars = tuple(float(b) for b in args.bars.split(","))
        fixed = [float(t) for t in args.fixed.split(",") if t.strip()]
    except ValueError:
        p.error(f"--shifts {args.shifts!r} / --bars {args.bars!r} / --fixed {args.fixed!r}: "
                "give comma-separated numbers")
    if len(bars) != 2:
        p.error(f"--bars {args.bars!r}: give two numbers, balanced accuracy then MCC")
    criteria = args.criteria.split(",")
    for c in criteria:
        if c not in ("sum", "margin"):
            p.error(f"--criteria: {c!r} is not sum or margin")
    data = load_ham10000(args.data)
    y, groups = np.asarray(data.target), np.asarray(data.groups, dtype=object)
    rows = []
    for recipe in args.recipes.split(","):
        rows += evaluate(recipe, y, groups, shifts, args.folds, Path(args.oof), criteria, bars,
                         fixed=fixed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decision_rule.json").write_text(json.dumps(
        {"shifts": shifts, "bars": list(bars), "rows": rows}, indent=2))
    table = markdown(rows)
    (out / "decision_rule.md").write_text(table)
    print("balanced accuracy / MCC, mean +/- sd over folds; each fold's shift chosen on the "
          "other folds\n")
    print(table)
    return rows


if __name__ == "__main__":
    main()
