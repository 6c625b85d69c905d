"""Ensembles of LesionClassifiers with sklearn's VotingClassifier and StackingClassifier,
and persistence of a refitted search."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

from skderm import LesionClassifier, LesionVotingClassifier, make_lesions
from skderm.model_selection import check_lesion_cv

FAST = dict(backbone="tiny", weights=None, image_size=(48, 64), max_epochs=2, batch_size=16,
            lr=3e-3, verbose=0, augmentation="none", valid_size=None)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_lesions(105, image_size=(48, 64), weights=[1] * 7, random_state=1,
                        directory=tmp_path_factory.mktemp("ens"))


def _members():
    return [("a", LesionClassifier(**FAST, random_state=0)),
            ("b", LesionClassifier(**FAST, random_state=1, module__hidden_units=32))]


def test_weighted_soft_voting_is_the_weighted_mean_of_members(data):
    X, y = data.data, data.target
    vote = VotingClassifier(_members(), voting="soft", weights=[0.6, 0.4]).fit(X, y)
    pa = vote.named_estimators_["a"].predict_proba(X)
    pb = vote.named_estimators_["b"].predict_proba(X)
    np.testing.assert_allclose(vote.predict_proba(X), 0.6 * pa + 0.4 * pb, rtol=1e-5)
    assert set(vote.predict(X)) <= set(y)
    assert list(vote.classes_) == sorted(set(y))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_lesion_vote_members_see_labels_so_warnings_name_classes(data):
    X, y = data.data, data.target
    # three lesions of each class: too few to stratify the members' validation split
    first = X.groupby(y.to_numpy())["lesion_id"].unique().explode().groupby(level=0).head(3)
    keep = X["lesion_id"].isin(first).to_numpy()
    X, y = X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)
    members = [(name, clf.set_params(valid_size=0.25, max_epochs=1)) for name, clf in _members()]
    with pytest.warns(UserWarning, match="not stratified") as record:
        vote = LesionVotingClassifier(members, weights=[0.6, 0.4]).fit(X, y)
    msg = " ".join(str(w.message) for w in record if "stratified" in str(w.message))
    assert "'akiec'" in msg and "class 0" not in msg
    # sklearn's VotingClassifier hands its members codes instead
    assert list(VotingClassifier(_members(), voting="soft").fit(X, y).estimators_[0].classes_) \
        == list(range(7))
    member_classes = [list(m.classes_) for m in vote.estimators_]
    assert member_classes == [sorted(set(y))] * 2 == [list(vote.classes_)] * 2
    pa, pb = (vote.named_estimators_[k].predict_proba(X) for k in ("a", "b"))
    np.testing.assert_allclose(vote.predict_proba(X), 0.6 * pa + 0.4 * pb, rtol=1e-5)
    assert vote.voting == "soft" and "voting" not in vote.get_params()


def test_lesion_vote_without_labels_names_itself(data):
    with pytest.raises(ValueError, match=r"^LesionVotingClassifier requires y"):
        LesionVotingClassifier(_members()).fit(data.data, None)


def test_voting_weights_tunable_by_grid_search_and_persisted(data, tmp_path):
    X, y, groups = data.data, data.target, data.groups
    search = GridSearchCV(
        VotingClassifier(_members(), voting="soft"),
        {"weights": [[0.6, 0.4], [0.4, 0.6]]},
        cv=StratifiedGroupKFold(3), scoring={"bacc": "balanced_accuracy",
                                             "mcc": "matthews_corrcoef"},
        refit="bacc")
    search.fit(X, y, groups=groups)
    assert search.best_params_["weights"] in ([0.6, 0.4], [0.4, 0.6])
    assert {"mean_test_bacc", "mean_test_mcc"} <= set(search.cv_results_)
    # the refitted best estimator survives joblib with identical probabilities
    path = tmp_path / "best.joblib"
    joblib.dump(search.best_estimator_, path)
    again = joblib.load(path)
    np.testing.assert_array_equal(again.predict_proba(X[:10]),
                                  search.best_estimator_.predict_proba(X[:10]))


def test_stacking_with_lesion_grouped_inner_folds(data):
    X, y, groups = data.data, data.target, data.groups
    # the stacker's inner cross_val_predict gets leak-free folds of the same rows
    inner = check_lesion_cv(StratifiedGroupKFold(3), X, y, groups=groups)
    stack = StackingClassifier(_members(), final_estimator=LogisticRegression(max_iter=500),
                               cv=inner, stack_method="predict_proba").fit(X, y)
    proba = stack.predict_proba(X)
    assert proba.shape == (len(X), 7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_documented_two_network_cpu_vote_fits_with_metadata(data):
    """docs/user_guide/ensembles.rst: the "cpu" recipe and its CutMix-free twin, soft-voted."""
    from skderm.recipes import make_recipe

    small = dict(backbone="tiny", weights=None, image_size=(48, 64), max_epochs=2,
                 batch_size=16, freeze=0, freeze_until=None, verbose=0)
    vote = VotingClassifier([("cpu", make_recipe("cpu", **small)),
                             ("mixup", make_recipe("cpu", mixup__cutmix_alpha=0.0, **small))],
                            voting="soft")
    X, y = data.data, data.target
    vote.fit(X, y)
    cpu, mixup = vote.named_estimators_["cpu"], vote.named_estimators_["mixup"]
    assert (cpu.mixup.cutmix_alpha, mixup.mixup.cutmix_alpha) == (1.0, 0.0)
    assert cpu.metadata_columns == ["age", "sex", "localization"]
    np.testing.assert_allclose(vote.predict_proba(X),
                               (cpu.predict_proba(X) + mixup.predict_proba(X)) / 2, rtol=1e-5)
    assert list(vote.classes_) == sorted(set(y))
