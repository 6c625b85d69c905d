"""Frozen ImageNet features + metadata fusion + SMOTE + logistic regression.

Image embeddings (BackboneFeatures), one-hot sex and localization, imputed and
scaled age, side by side in a ColumnTransformer; SMOTE interpolates in that
feature space, where interpolation makes sense (never on pixels or paths).

    python examples/features_fusion_smote.py [--data HAM10000/] [--quick]
"""

from _common import load, parse_args
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_validate
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skderm import BackboneFeatures
from skderm.metrics import get_scorers

args = parse_args(__doc__)
X, y, groups = load(args)

fusion = ColumnTransformer([
    ("image", BackboneFeatures(image_size=(64, 80) if args.quick else (150, 200)), ["path"]),
    ("site", OneHotEncoder(handle_unknown="ignore"), ["sex", "localization"]),
    ("age", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age"]),
])
model = make_pipeline(fusion, StandardScaler(), SMOTE(k_neighbors=3, random_state=0),
                      LogisticRegression(C=0.1, max_iter=1000))
cv = StratifiedGroupKFold(3, shuffle=True, random_state=0)
scores = cross_validate(model, X, y, groups=groups, cv=cv,
                        scoring=get_scorers(probabilities=False))
print(f"balanced accuracy {scores['test_bacc'].mean():.3f} +/- {scores['test_bacc'].std():.3f}")
print(f"MCC               {scores['test_mcc'].mean():.3f} +/- {scores['test_mcc'].std():.3f}")
