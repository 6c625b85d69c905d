"""Grid search over a LesionClassifier pipeline with an oversampler, lesion-grouped folds,
balanced accuracy and MCC, refit on balanced accuracy.

    python examples/grid_search.py [--data HAM10000/] [--quick]
"""

from _common import load, parse_args
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

from skderm import LesionClassifier

args = parse_args(__doc__)
X, y, groups = load(args)

clf = LesionClassifier(
    backbone="tf_efficientnet_lite0",
    image_size=(48, 64) if args.quick else (112, 150),
    freeze="backbone", max_epochs=3 if args.quick else 5, valid_size=None,
    random_state=0, verbose=0)
pipe = make_pipeline(RandomOverSampler(random_state=0), clf)
search = GridSearchCV(
    pipe,
    {"lesionclassifier__lr": [1e-2, 3e-3], "lesionclassifier__hidden_units": [None, 256]},
    cv=StratifiedGroupKFold(3, shuffle=True, random_state=0),
    scoring={"bacc": "balanced_accuracy", "mcc": "matthews_corrcoef"},
    refit="bacc")
search.fit(X, y, groups=groups)   # groups = lesion_id: no lesion on both sides of a fold

best = search.best_index_
print("best params:", search.best_params_)
print(f"balanced accuracy {search.cv_results_['mean_test_bacc'][best]:.3f}, "
      f"MCC {search.cv_results_['mean_test_mcc'][best]:.3f}")
print("refitted model predicts:", search.best_estimator_.predict(X.iloc[:3]).tolist())
