"""Balanced accuracy against MCC as the decision rule moves between the classes' priors.

    python benchmarks/operating_points.py --data ../shared/ham10000 \\
        --recipes finetune_192_meta_all_fu3_la_mix04_cut10_tc,gpu

Reads the out-of-fold probabilities that ``ham10000_cv.py`` saved
(``benchmarks/results/oof/<recipe>_fold<k>.npz``; ``a+b`` is the equal soft
vote of two recipes, ``name=a+b+c`` the same under a row name of its own) and
predicts, fold by fold,
``argmax(log p - t * log prior)`` with ``prior`` the class frequencies of the
fold's training images, for each shift ``t`` of ``--shifts``: ``t = 0`` is the
recipe's own prediction, ``t < 0`` moves decisions towards the frequent classes
(nv), ``t > 0`` towards the rare ones (``t = 1`` is the post-hoc logit
adjustment of Menon et al., 2021, on top of whatever the training did).
Balanced accuracy (mean recall) rewards the rare classes' recall; MCC punishes
the false positives that buy it, so the two trace a frontier.

The shifts are applied on the test folds themselves: the table shows what the
networks' probabilities allow at each operating point, not a tuned recipe.
Results go to ``benchmarks/results/operating_points.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef

from skderm import load_ham10000
from skderm.decision import shifted_argmax

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHIFTS = (-0.75, -0.5, -0.3, -0.15, 0.0, 0.15, 0.3, 0.5)


def _fold_proba(oof: Path, recipe: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test indices, classes and (soft-voted) probabilities of fold k."""
    parts = []
    for member in recipe.split("+"):
        f = oof / f"{member}_fold{k}.npz"
        if not f.exists():
            raise FileNotFoundError(f"{f} is missing: run benchmarks/ham10000_cv.py "
                                    f"--recipes {member} first")
        with np.load(f) as z:
            parts.append((z["test"], z["classes"], z["proba"]))
    test, classes, _ = parts[0]
    if not all((t == test).all() and (c == classes).all() for t, c, _ in parts):
        raise ValueError(f"{recipe}: the members' fold {k} differ in test images or classes")
    return test, classes, np.mean([p for _, _, p in parts], axis=0)


def shifted_predictions(proba, classes, y_train, shift: float) -> np.ndarray:
    """``argmax(log proba - shift * log prior)``, prior = the training labels' frequencies."""
    classes = np.asarray(classes)
    counts = np.array([(np.asarray(y_train) == c).sum() for c in classes], dtype=float)
    if (counts == 0).any():
        raise ValueError(f"classes {classes[counts == 0].tolist()} have no training image")
    return classes[shifted_argmax(proba, counts / counts.sum(), shift)]


def _sd(values) -> float | None:
    """The spread between folds; None (null in the JSON, not NaN) for one fold."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def frontier(recipe: str, y: np.ndarray, shifts, n_folds: int, oof: Path) -> dict:
    """The operating points of ``recipe`` (``a``, ``a+b``, or ``name=a+b``)."""
    label, _, members = recipe.rpartition("=")
    if "=" in recipe and not (label and members):
        raise ValueError(f"recipe {recipe!r}: write name=a+b, a name then its members")
    rows = []
    folds = [_fold_proba(oof, members, k) for k in range(n_folds)]
    for t in shifts:
        bacc, mcc = [], []
        for test, classes, proba in folds:
            train = np.setdiff1d(np.arange(len(y)), test)
            pred = shifted_predictions(proba, classes, y[train], t)
            bacc.append(balanced_accuracy_score(y[test], pred))
            mcc.append(matthews_corrcoef(y[test], pred))
        rows.append({"shift": float(t), "bacc_mean": float(np.mean(bacc)),
                     "bacc_sd": _sd(bacc), "mcc_mean": float(np.mean(mcc)), "mcc_sd": _sd(mcc)})
    return {"recipe": label or members, "members": members.split("+"), "n_folds": n_folds,
            "points": rows}


def markdown(results: list[dict]) -> str:
    shifts = [p["shift"] for p in results[0]["points"]]
    lines = ["| recipe | " + " | ".join(f"t = {t:+g}" for t in shifts) + " |",
             "|---|" + "---|" * len(shifts)]
    for r in results:
        cells = [f"{p['bacc_mean']:.3f} / {p['mcc_mean']:.3f}" for p in r["points"]]
        lines.append(f"| {r['recipe']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def add_fold_arguments(p: argparse.ArgumentParser, shifts, what: str) -> None:
    """--data, --shifts, --folds, --oof and --out, shared with decision_rule.py."""
    p.add_argument("--data", default=os.environ.get("SKDERM_HAM10000", "../shared/ham10000"))
    p.add_argument("--shifts", default=",".join(map(str, shifts)),
                   help=f"comma-separated shifts t {what}; write --shifts=-0.5,0 when the "
                        "first is negative")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--oof", default=str(RESULTS / "oof"))
    p.add_argument("--out", default=str(RESULTS))


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", required=True,
                   help="comma-separated recipes with saved folds; a+b = their soft vote, "
                        "name=a+b the same in a row called name")
    add_fold_arguments(p, SHIFTS, "to score")
    args = p.parse_args(argv)
    try:
        shifts = [float(t) for t in args.shifts.split(",")]
    except ValueError:
        p.error(f"--shifts {args.shifts!r}: give comma-separated numbers, e.g. -0.5,0,0.5")
    y = np.asarray(load_ham10000(args.data).target)
    results = [frontier(r, y, shifts, args.folds, Path(args.oof))
               for r in args.recipes.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "operating_points.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (out / "operating_points.md").write_text(table)
    print("balanced accuracy / MCC, mean over folds, at each prior shift t\n")
    print(table)
    return results


if __name__ == "__main__":
    main()
