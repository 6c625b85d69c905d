"""Lesion-grouped cross-validation of a LesionClassifier in a script.

    python examples/cross_val_score.py [--data HAM10000/] [--quick]
"""

from _common import load, parse_args
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

from skderm import LesionClassifier

args = parse_args(__doc__)
X, y, groups = load(args)

clf = LesionClassifier(
    backbone="tf_efficientnet_lite0",
    image_size=(48, 64) if args.quick else (112, 150),
    class_weight="balanced", freeze=1, max_epochs=3 if args.quick else 6,
    random_state=0, verbose=0)
# verbose=2: a line per fold as it ends, with its score and time
scores = cross_val_score(clf, X, y, groups=groups, scoring="balanced_accuracy", verbose=2,
                         cv=StratifiedGroupKFold(3, shuffle=True, random_state=0))
print("balanced accuracy per fold:", scores.round(3).tolist())
print(f"mean {scores.mean():.3f} +/- {scores.std(ddof=1):.3f}")
