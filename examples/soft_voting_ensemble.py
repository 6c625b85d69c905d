"""A weighted soft-voting ensemble of two LesionClassifiers (the DenseNet161 0.6 +
ResNet152 0.4 recipe of the second ISIC write-up, here with backbones that have
offline weights), scored by lesion-grouped cross-validation.

    python examples/soft_voting_ensemble.py [--data HAM10000/] [--quick]
"""

from _common import load, parse_args
from sklearn.ensemble import VotingClassifier
from sklearn.model_selection import StratifiedGroupKFold, cross_validate

from skderm import LesionClassifier

args = parse_args(__doc__)
X, y, groups = load(args)


def member(backbone: str) -> LesionClassifier:
    return LesionClassifier(
        backbone=backbone,
            image_size=(48, 64) if args.quick else (112, 150),
        class_weight="balanced", freeze="backbone", max_epochs=3 if args.quick else 6,
        random_state=0, verbose=0)


ensemble = VotingClassifier(
    [("lite0", member("tf_efficientnet_lite0")), ("mobilenet", member("mobilenet_v2"))],
    voting="soft", weights=[0.6, 0.4])
scores = cross_validate(ensemble, X, y, groups=groups,
                        cv=StratifiedGroupKFold(3, shuffle=True, random_state=0),
                        scoring={"bacc": "balanced_accuracy", "mcc": "matthews_corrcoef"})
print(f"ensemble balanced accuracy {scores['test_bacc'].mean():.3f}, "
      f"MCC {scores['test_mcc'].mean():.3f}")
