"""save_model / load_model: one self-describing, weights-only model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skderm import LesionClassifier
from skderm.exceptions import ModelFileError, SkdermError
from skderm.persistence import FORMAT_VERSION, load_model, model_digest, save_model
from skderm.persistence._format import payload_digest

META = ["age", "sex", "localization"]


def _fit(data, **params):
    clf = LesionClassifier(backbone="tiny", weights=None, image_size=(32, 32), max_epochs=2,
                           hidden_units=8, dropout=0.1, lr=3e-3, random_state=0, verbose=0,
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
    assert loaded.hidden_units == 8 and loaded.optimizer__weight_decay == 0.01
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

    from skderm.inputs import metadata_encoder
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
    payload["params"]["hidden_units"] = 9
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
    import skderm.classifier

    monkeypatch.setenv("SKDERM_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    seen = []
    real = skderm.classifier.build_backbone

    def spy(name, weights="imagenet"):
        seen.append(weights)
        return real(name, weights)

    monkeypatch.setattr(skderm.classifier, "build_backbone", spy)
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
                                hidden_units=8, lr=3e-3, random_state=0, verbose=0,
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


# --------------------------------------------------------------------------
# model files from someone else: a published digest, bounds on what a file asks
# --------------------------------------------------------------------------

def _edited(model_file, tmp_path, edit, name="edited.skderm"):
    """A copy of ``model_file`` changed by ``edit``, its in-file digest recomputed."""
    payload = torch.load(model_file, map_location="cpu", weights_only=True)
    edit(payload)
    payload["sha256"] = payload_digest(payload)
    torch.save(payload, tmp_path / name)
    return tmp_path / name


def test_the_in_file_digest_is_no_defence_but_a_published_one_is(fitted, model_file, tmp_path,
                                                                 tiny_lesions):
    import hashlib

    published = model_digest(model_file)
    assert published == hashlib.sha256(open(model_file, "rb").read()).hexdigest()
    assert isinstance(load_model(model_file, sha256=published.upper()), LesionClassifier)
    # relabelled classes with the digest recomputed: the in-file check cannot tell
    relabelled = _edited(model_file, tmp_path, lambda p: p["classes"].reverse())
    assert list(load_model(relabelled).classes_) == list(fitted.classes_)[::-1]
    with pytest.raises(ModelFileError) as info:
        load_model(relabelled, sha256=published)
    msg = str(info.value)
    assert "edited.skderm" in msg and published in msg and model_digest(relabelled) in msg
    assert "get the file again" in msg


def test_a_wrong_digest_stops_loading_before_anything_is_unpickled(model_file, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("torch.load ran before the digest was checked")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ModelFileError, match="expected 0{64}"):
        load_model(model_file, sha256="0" * 64)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        load_model(model_file, sha256="abc")


@pytest.mark.parametrize("field, value, shown", [
    ("image_size", [30000, 30000], "image_size=[30000, 30000] is out of range"),
    ("image_size", [0, 32], "image_size=[0, 32] is out of range"),
    ("image_size", "big", "image_size='big' is out of range"),
    ("batch_size", 10**9, "batch_size=1000000000 is out of range"),
    ("batch_size", True, "batch_size=True is out of range"),
    ("hidden_units", 10**8, "hidden_units=100000000 is out of range"),
    ("checkpoint_dir", "/tmp/planted", "['checkpoint_dir'], which are not among"),
    ("torch_load_kwargs", {"weights_only": False}, "['torch_load_kwargs']"),
    ("callbacks__print_log__sink", "x", "['callbacks__print_log__sink']"),
    ("dropout", "high", "do not build a working model"),
    ("backbone", "no_such_net", "do not build a working model"),
])
def test_a_file_cannot_set_what_save_model_never_writes(model_file, tmp_path, field, value,
                                                        shown):
    path = _edited(model_file, tmp_path, lambda p: p["params"].__setitem__(field, value))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert shown in str(info.value) and "edited.skderm" in str(info.value)


@pytest.mark.parametrize("edit, shown", [
    (lambda p: p.__setitem__("image_size", [30000, 30000]), "image_size [30000, 30000]"),
    (lambda p: p.__setitem__("classes", 7), "classes are not"),
    (lambda p: p.__setitem__("classes", ["a", "a", "b"]), "classes are not"),
    (lambda p: p.__setitem__("history", "long"), "history is not"),
    (lambda p: p.__setitem__("params", ["backbone"]), "params are not a dict"),
    (lambda p: p.__setitem__("n_metadata", 5), "n_metadata"),
    (lambda p: p.__setitem__("checkpoint_dir", "/tmp/planted"), "['checkpoint_dir'] save_model"),
    (lambda p: p.pop("history"), "lacks the fields ['history']"),
    (lambda p: p["state_dict"].__setitem__("extra", torch.zeros(2)), "do not build"),
    (lambda p: p.__setitem__("preprocessing", {"mean": [0, 0, 0]}), "preprocessing"),
])
def test_malformed_fields_raise_model_file_error(model_file, tmp_path, edit, shown):
    with pytest.raises(ModelFileError) as info:
        load_model(_edited(model_file, tmp_path, edit))
    assert shown in str(info.value)


def test_a_tensor_larger_than_its_storage_is_refused(model_file, tmp_path):
    def plant(payload):
        one = torch.zeros(1)
        payload["state_dict"]["huge"] = one.as_strided((10**5,), (0,))

    with pytest.raises(ModelFileError, match=r"shape \(100000,\) claims more elements"):
        load_model(_edited(model_file, tmp_path, plant))


def _rezip(src, dst, change):
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            change(zout, info, zin.read(info))
    return dst


def test_archives_that_would_inflate_are_refused_before_torch_load(model_file, tmp_path,
                                                                   monkeypatch):
    import zipfile

    def deflate(zout, info, data):
        zout.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)

    packed = _rezip(model_file, tmp_path / "packed.skderm", deflate)
    # a member declaring far more bytes than the file holds (its central directory edited)
    lying = bytearray(open(model_file, "rb").read())
    entry = bytes(lying).find(b"PK\x01\x02")
    lying[entry + 24:entry + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    (tmp_path / "lying.skderm").write_bytes(lying)

    def never(*args, **kwargs):
        raise AssertionError("torch.load ran on an archive that may inflate without bound")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ModelFileError, match="compression 8"):
        load_model(packed)
    with pytest.raises(ModelFileError, match="declares 4294967280 bytes"):
        load_model(tmp_path / "lying.skderm")
    monkeypatch.setattr("skderm.persistence._read.MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(ModelFileError, match="more than the 1000 a model file may hold"):
        load_model(model_file)


def test_an_older_format_version_is_refused_naming_both(model_file, tmp_path):
    old = _edited(model_file, tmp_path, lambda p: p.__setitem__("format_version", 1))
    with pytest.raises(ModelFileError, match=f"format version 1 .* reads format version "
                                             f"{FORMAT_VERSION} only"):
        load_model(old)


def test_save_refuses_what_load_would_refuse(fitted, tmp_path):
    before = fitted.batch_size
    fitted.set_params(batch_size=10**6)
    try:
        with pytest.raises(ValueError, match="cannot save this model: batch_size=1000000 is "
                                             "out of range; skderm allows an int from 1 to 4096"):
            save_model(fitted, tmp_path / "big.skderm")
    finally:
        fitted.set_params(batch_size=before)
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def meta_file(fitted_meta, tmp_path_factory):
    return save_model(fitted_meta, tmp_path_factory.mktemp("meta") / "meta.skderm")


def _paths(node, prefix=()):
    """Where a value sits in a payload, tensors and history rows left out."""
    if isinstance(node, dict) and prefix[-1:] not in (("state_dict",), ("history",)):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list) and node and len(prefix) > 1:
        yield prefix + (0,)
        yield from _paths(node[0], prefix + (0,))


def test_any_field_of_the_wrong_type_raises_model_file_error_only(meta_file, tmp_path):
    payload = torch.load(meta_file, map_location="cpu", weights_only=True)
    paths = [p for p in _paths(payload) if p[0] not in ("format", "format_version", "sha256")]
    assert ("metadata_encoder", "numeric", "mean", 0) in paths and ("params", "lr") in paths
    outcomes = set()
    for i, where in enumerate(paths):
        weird = [None, -1, "x", [], {"a": 1}, 1e308, True][i % 7]

        def edit(p, where=where, weird=weird):
            node = p
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = weird

        path = _edited(meta_file, tmp_path, edit)
        try:
            load_model(path)
            outcomes.add("loaded")
        except ModelFileError:
            outcomes.add("refused")
    assert outcomes == {"loaded", "refused"}
