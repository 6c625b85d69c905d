"""Grid search over a LesionClassifier pipeline with an oversampler, lesion-grouped folds,
balanced accuracy and MCC, refit on balanced accuracy: the code `skderm demo` runs.

    python examples/grid_search.py [--data HAM10000/] [--quick]
"""

from _common import load, parse_args

from skderm.cli.demo import make_grid_search

args = parse_args(__doc__)
X, y, groups = load(args)

# RandomOverSampler -> LesionClassifier in an imblearn Pipeline, lr and lr/3 on
# StratifiedGroupKFold (read make_grid_search: a dozen lines)
search = make_grid_search(image_size=(48, 64) if args.quick else (112, 150),
                          epochs=3 if args.quick else 5)
search.fit(X, y, groups=groups)   # groups = lesion_id: no lesion on both sides of a fold

best = search.best_index_
print("best params:", search.best_params_)
print(f"balanced accuracy {search.cv_results_['mean_test_bacc'][best]:.3f}, "
      f"MCC {search.cv_results_['mean_test_mcc'][best]:.3f}")
print("refitted model predicts:", search.best_estimator_.predict(X.iloc[:3]).tolist())
