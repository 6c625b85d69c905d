"""save_model / load_model: one self-describing, weights-only model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skderm import LesionClassifier
from skderm.exceptions import ModelFileError, SkdermError
from skderm.persistence import FORMAT_VERSION, load_model, save_model

META = ["age", "sex", "localization"]


def _fit(data, **params):
    clf = LesionClassifier(backbone="tiny", weights=None, image_size=(32, 32), max_epochs=2,
                           module__hidden_units=8, module__dropout=0.1, lr=3e-3, random_state=0, verbose=0,
                           valid_size=0.3, **params)
    return clf.fit(data.data, data.target)


@pytest.fixture(scope="module")
def fitted(tiny_lesions):
    return _fit(tiny_lesions, optimizer__weight_decay=0.01)


@pytest.fixture(scope="module")
def fitted_meta(tiny_lesions):
    return _fit(tiny_lesions, metadata_columns=META)


@pytest.fixture(scope="module")
def model_file(fitted, tmp_path_factory):
    return save_model(fitted, tmp_path_factory.mktemp("model") / "m.skderm")


def _copy(src, tmp_path, name="copy.skderm") -> bytearray:
    data = bytearray(open(src, "rb").read())
    (tmp_path / name).write_bytes(data)
    return data


def test_round_trip_gives_identical_probabilities(fitted, model_file, tiny_lesions):
    loaded = load_model(model_file)
    X = tiny_lesions.data
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    assert loaded.image_size_ == fitted.image_size_ == (32, 32)
    assert loaded.preprocessing_ == fitted.preprocessing_
    assert loaded.module__hidden_units == 8 and loaded.optimizer__weight_decay == 0.01
    assert loaded.weights is None and not loaded.module_.training
    assert len(loaded.history_) == len(fitted.history_) == 2
    assert loaded.history_[-1, "train_loss"] == pytest.approx(fitted.history_[-1, "train_loss"])


def test_colour_constancy_round_trips(tiny_lesions, tmp_path):
    fitted = _fit(tiny_lesions, colour_constancy="shades_of_gray")
    loaded = load_model(save_model(fitted, tmp_path / "cc.skderm"))
    assert loaded.colour_constancy == "shades_of_gray"
    X = tiny_lesions.data
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_the_file_gets_the_permissions_of_any_new_file(fitted, tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = save_model(fitted, tmp_path / "shared.skderm")
    finally:
        os.umask(mask)
    # readable by the group and others, as the umask allows (mkstemp alone gives 0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["shared.skderm"]


def test_file_holds_only_tensors_and_plain_values(model_file):
    payload = torch.load(model_file, map_location="cpu", weights_only=True)
    assert payload["format"] == "skderm-model" and payload["format_version"] == FORMAT_VERSION
    assert len(payload["sha256"]) == 64
    assert all(isinstance(t, torch.Tensor) for t in payload["state_dict"].values())
    plain = {k: v for k, v in payload.items() if k != "state_dict"}
    json.dumps(plain)  # raises on anything that is not a plain value
    assert "optimizer" not in payload["params"] and "weights" not in payload["params"]
    assert all("batches" not in row for row in payload["history"])


def test_metadata_model_round_trips(fitted_meta, tiny_lesions, tmp_path):
    loaded = load_model(save_model(fitted_meta, tmp_path / "meta.skderm"))
    X = tiny_lesions.data.copy()
    # missing values and a category never seen in training take the encoder's paths
    X.loc[:4, "age"] = np.nan
    X.loc[5:8, "sex"] = np.nan
    X.loc[9:12, "localization"] = "elbow of a martian"
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_meta.predict_proba(X))
    frame = X[META]
    np.testing.assert_array_equal(loaded.metadata_encoder_.transform(frame),
                                  fitted_meta.metadata_encoder_.transform(frame))
    assert loaded.n_metadata_ == fitted_meta.n_metadata_ > 0
    assert type(loaded.metadata_encoder_) is type(fitted_meta.metadata_encoder_)
    assert list(loaded.metadata_encoder_.get_feature_names_out()) == \
        list(fitted_meta.metadata_encoder_.get_feature_names_out())


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_the_rebuilt_encoder_is_a_fitted_sklearn_encoder_transforming_exactly(tmp_path):
    import pandas as pd
    from sklearn.compose import ColumnTransformer

    from skderm.metadata import metadata_encoder
    from skderm.persistence._encoder import encoder_state, rebuild_encoder

    rng = np.random.default_rng(0)
    n = 40
    train = pd.DataFrame({
        "age": np.where(rng.random(n) < 0.2, np.nan, rng.normal(50, 15, n)),
        "weight": rng.normal(70, 9, n),                 # never missing: no indicator column
        "lost": np.full(n, np.nan),                     # empty at fit time: dropped
        # text columns as skderm.inputs.parse_X hands them over: object, missing as NaN
        "site": pd.Series(rng.choice(["back", "face", "-"], n), dtype=object).replace("-", np.nan),
        "grade": pd.Categorical(rng.choice(["1", "2", "3"], n)),
    })
    assert train["site"].isna().any()
    original = metadata_encoder(train).fit(train)
    torch.save(encoder_state(original), tmp_path / "enc.pt")
    state = torch.load(tmp_path / "enc.pt", weights_only=True)
    rebuilt = rebuild_encoder(state, "enc.pt")
    assert isinstance(rebuilt, ColumnTransformer)
    test = train.sample(frac=1, random_state=1).reset_index(drop=True)
    test.loc[:5, ["age", "weight", "lost"]] = np.nan
    test["site"] = test["site"].astype(object)
    test.loc[6:9, "site"] = "elbow"                     # unseen: all zeros
    test.loc[10:12, "site"] = np.nan
    np.testing.assert_array_equal(rebuilt.transform(test), original.transform(test))
    assert (rebuilt.transform(test)[6:10, -6:-3] == 0).all()
    state["numeric"]["missing_features"] = []
    with pytest.raises(ModelFileError, match="missing_features"):
        rebuild_encoder(state, "enc.pt")


def test_a_flipped_weight_byte_fails_the_integrity_check(fitted, model_file, tmp_path):
    data = _copy(model_file, tmp_path)
    weight = fitted.module_.head[-1].weight.detach().numpy().tobytes()
    at = bytes(data).find(weight)
    assert at > 0, "the head's weights should be stored verbatim in the file"
    data[at + len(weight) // 2] ^= 0xFF
    (tmp_path / "copy.skderm").write_bytes(data)
    with pytest.raises(SkdermError, match="failed its integrity check"):
        load_model(tmp_path / "copy.skderm")


def test_an_edited_parameter_fails_the_integrity_check(model_file, tmp_path):
    payload = torch.load(model_file, map_location="cpu", weights_only=True)
    payload["params"]["module__hidden_units"] = 9
    torch.save(payload, tmp_path / "edited.skderm")
    with pytest.raises(SkdermError, match="failed its integrity check"):
        load_model(tmp_path / "edited.skderm")


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_a_truncated_file_is_refused_naming_it(model_file, tmp_path, keep):
    data = open(model_file, "rb").read()
    path = tmp_path / "cut.skderm"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SkdermError, match="not a readable skderm model file") as info:
        load_model(path)
    assert "cut.skderm" in str(info.value)


def test_an_unknown_format_version_is_refused_naming_both(model_file, tmp_path):
    payload = torch.load(model_file, map_location="cpu", weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "future.skderm")
    with pytest.raises(SkdermError) as info:
        load_model(tmp_path / "future.skderm")
    msg = str(info.value)
    assert f"version {FORMAT_VERSION + 1}" in msg and f"version {FORMAT_VERSION} only" in msg
    assert "re-train" in msg and isinstance(info.value, ModelFileError)


def test_other_files_are_refused(fitted, tmp_path):
    torch.save(fitted.module_.state_dict(), tmp_path / "weights.pth")
    with pytest.raises(SkdermError, match="not a skderm model file"):
        load_model(tmp_path / "weights.pth")
    (tmp_path / "notes.csv").write_text("image,MEL\nISIC_0000000,1.0\n")
    with pytest.raises(SkdermError, match="not a readable skderm model file"):
        load_model(tmp_path / "notes.csv")
    with pytest.raises(SkdermError, match="no model file"):
        load_model(tmp_path / "absent.skderm")


def test_a_file_with_python_objects_is_never_unpickled(tmp_path):
    torch.save({"format": "skderm-model", "obj": LesionClassifier}, tmp_path / "evil.skderm")
    with pytest.raises(ModelFileError, match="refuses to unpickle"):
        load_model(tmp_path / "evil.skderm")


def test_loading_needs_no_imagenet_weights(model_file, tiny_lesions, fitted, tmp_path,
                                           monkeypatch):
    import skderm.classifier._classifier as classifier_module

    monkeypatch.setenv("SKDERM_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    seen = []
    real = classifier_module.build_backbone

    def spy(name, weights="imagenet"):
        seen.append(weights)
        return real(name, weights)

    monkeypatch.setattr(classifier_module, "build_backbone", spy)
    loaded = load_model(model_file)
    assert seen == [None]
    X = tiny_lesions.data[:5]
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert not any(tmp_path.iterdir()), "loading must not download anything into TORCH_HOME"


def test_save_refuses_an_unfitted_model(tmp_path):
    with pytest.raises(NotFittedError):
        save_model(LesionClassifier(backbone="tiny", weights=None), tmp_path / "x.skderm")
    assert not (tmp_path / "x.skderm").exists()


# --------------------------------------------------------------------------
# soft-voting ensembles (skderm.recipes.make_ensemble, `skderm train --recipe vote`)
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted_vote(tiny_lesions):
    from sklearn.ensemble import VotingClassifier

    def member(**params):
        return LesionClassifier(backbone="tiny", weights=None, image_size=(32, 32), max_epochs=2,
                                module__hidden_units=8, lr=3e-3, random_state=0, verbose=0,
                                valid_size=None, **params)

    vote = VotingClassifier([("image", member()), ("meta", member(metadata_columns=META))],
                            voting="soft", weights=[2.0, 1.0])
    return vote.fit(tiny_lesions.data, tiny_lesions.target)


@pytest.fixture(scope="module")
def vote_file(fitted_vote, tmp_path_factory):
    return save_model(fitted_vote, tmp_path_factory.mktemp("vote") / "vote.skderm")


def test_a_soft_vote_round_trips_as_a_fitted_voting_classifier(fitted_vote, vote_file,
                                                               tiny_lesions):
    from sklearn.ensemble import VotingClassifier

    loaded = load_model(vote_file)
    assert isinstance(loaded, VotingClassifier) and loaded.voting == "soft"
    assert loaded.weights == [2.0, 1.0] and list(loaded.named_estimators_) == ["image", "meta"]
    X = tiny_lesions.data
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted_vote.predict_proba(X))
    # string labels back, although VotingClassifier fits its members on integer codes
    np.testing.assert_array_equal(loaded.classes_, fitted_vote.classes_)
    np.testing.assert_array_equal(loaded.predict(X), fitted_vote.predict(X))
    assert loaded.named_estimators_["meta"].metadata_columns == META
    assert all(not m.module_.training and m.weights is None for m in loaded.estimators_)
    # the members differ, so the weights matter: equal weights give other probabilities
    equal = np.mean([m.predict_proba(X) for m in loaded.estimators_], axis=0)
    assert not np.allclose(loaded.predict_proba(X), equal, atol=1e-6)


def test_an_ensemble_file_holds_only_tensors_and_plain_values(vote_file):
    payload = torch.load(vote_file, map_location="cpu", weights_only=True)
    assert payload["format"] == "skderm-ensemble" and payload["format_version"] == FORMAT_VERSION
    assert payload["names"] == ["image", "meta"] and len(payload["members"]) == 2
    plain = {k: v for k, v in payload.items() if k != "members"}
    plain["members"] = [{k: v for k, v in m.items() if k != "state_dict"}
                        for m in payload["members"]]
    json.dumps(plain)


def test_a_flipped_byte_in_one_member_fails_the_ensembles_integrity_check(fitted_vote, vote_file,
                                                                          tmp_path):
    data = _copy(vote_file, tmp_path)
    weight = fitted_vote.estimators_[1].module_.head[-1].weight.detach().numpy().tobytes()
    at = bytes(data).find(weight)
    assert at > 0
    data[at + len(weight) // 2] ^= 0xFF
    (tmp_path / "copy.skderm").write_bytes(data)
    with pytest.raises(SkdermError, match="failed its integrity check"):
        load_model(tmp_path / "copy.skderm")
    payload = torch.load(vote_file, map_location="cpu", weights_only=True)
    payload["weights"] = [1.0, 1.0]
    torch.save(payload, tmp_path / "edited.skderm")
    with pytest.raises(SkdermError, match="failed its integrity check"):
        load_model(tmp_path / "edited.skderm")


def test_save_refuses_hard_votes_other_members_and_unfitted_votes(fitted_vote, tiny_lesions,
                                                                  tmp_path):
    from sklearn.base import clone
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import VotingClassifier

    with pytest.raises(NotFittedError):
        save_model(clone(fitted_vote), tmp_path / "v.skderm")
    hard = clone(fitted_vote).set_params(voting="hard")
    with pytest.raises(ValueError, match="voting='hard'"):
        save_model(hard, tmp_path / "v.skderm")
    mixed = VotingClassifier([("dummy", DummyClassifier())], voting="soft").fit(
        tiny_lesions.data, tiny_lesions.target)
    with pytest.raises(TypeError, match="'dummy' \\(DummyClassifier\\)"):
        save_model(mixed, tmp_path / "v.skderm")
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------
# skderm.decision.LesionLevelClassifier around a model or an ensemble
# --------------------------------------------------------------------------

@pytest.mark.parametrize("inner", ["model", "vote"])
def test_a_lesion_level_wrapper_round_trips_with_its_decision_rule(inner, fitted, fitted_vote,
                                                                   tiny_lesions, tmp_path):
    from sklearn.ensemble import VotingClassifier

    from skderm.decision import LesionLevelClassifier

    X, y = tiny_lesions.data, tiny_lesions.target
    estimator = fitted if inner == "model" else fitted_vote
    # what fit sets, on the already-fitted model (fitting it again would cost a training)
    wrapper = LesionLevelClassifier(estimator, pooling="geometric", prior_shift=2.0)
    wrapper.estimator_, wrapper.classes_ = estimator, estimator.classes_
    wrapper.class_prior_ = np.array([np.mean(y == c) for c in estimator.classes_])
    path = save_model(wrapper, tmp_path / "lesion.skderm")
    loaded = load_model(path)
    assert isinstance(loaded, LesionLevelClassifier)
    assert isinstance(loaded.estimator_, VotingClassifier if inner == "vote" else LesionClassifier)
    assert loaded.get_params(deep=False)["pooling"] == "geometric"
    assert (loaded.prior_shift, loaded.group_column) == (2.0, "lesion_id")
    np.testing.assert_allclose(loaded.class_prior_, wrapper.class_prior_)
    np.testing.assert_array_equal(loaded.classes_, wrapper.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), wrapper.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), wrapper.predict(X))
    # the shift is in the file: the loaded model does not predict as the plain argmax
    assert (loaded.predict(X) != loaded.classes_[loaded.predict_proba(X).argmax(1)]).any()
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == "skderm-lesion-level"
    assert payload["estimator"]["format"] == ("skderm-ensemble" if inner == "vote"
                                              else "skderm-model")
    payload["decision"]["prior_shift"] = 0.0
    torch.save(payload, tmp_path / "edited.skderm")
    with pytest.raises(SkdermError, match="failed its integrity check"):
        load_model(tmp_path / "edited.skderm")


def test_save_refuses_an_unfitted_or_nested_lesion_level_wrapper(fitted, tmp_path):
    from skderm.decision import LesionLevelClassifier

    with pytest.raises(NotFittedError):
        save_model(LesionLevelClassifier(fitted), tmp_path / "w.skderm")
    outer = LesionLevelClassifier(LesionLevelClassifier(fitted))
    outer.estimator_ = LesionLevelClassifier(fitted)
    with pytest.raises(TypeError, match="not one wrapped in another"):
        save_model(outer, tmp_path / "w.skderm")
    assert not list(tmp_path.iterdir())
