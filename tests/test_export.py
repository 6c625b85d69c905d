"""skderm.export: the exported prediction path gives predict_proba's probabilities."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import VotingClassifier

from skderm import LesionClassifier, LesionLevelClassifier, load_ham10000, save_model
from skderm.exceptions import OutputPathError, SkdermError
from skderm.export import EXTRA_FILE, ExportError, export_file, export_model
from skderm.images import read_image

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install "
                                                "'skderm[export]'")

# torch.jit.load announces torch.jit's deprecation; the file it loads is what we test
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

METADATA = ["age", "sex", "localization"]
TOL = 1e-4


def _fit(X, y, **params):
    clf = LesionClassifier(max_epochs=1, valid_size=None, verbose=0, random_state=0,
                           batch_size=16, **params)
    return clf.fit(X, y)


def _inputs(clf, X):
    """What a server feeds the export: decoded uint8 pixels at image_size_, encoded metadata."""
    images = np.stack([read_image(p, clf.image_size_) for p in X["path"]])
    if not clf.metadata_columns:
        return (images,)
    encoded = clf.metadata_encoder_.transform(X[clf.metadata_columns]).astype(np.float32)
    return images, encoded


def _onnx_proba(path, inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(["probabilities"], dict(zip(names, inputs, strict=True)))[0]


def _torchscript_proba(path, inputs):
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(*(torch.from_numpy(a) for a in inputs)).numpy()


@pytest.fixture(scope="module")
def tiny(tiny_lesions):
    """tiny backbone on synthetic images: colour constancy, test crop, TTA and metadata."""
    X, y = tiny_lesions.data, tiny_lesions.target
    clf = _fit(X.iloc[:40], y[:40], backbone="tiny", weights=None, image_size=(48, 64),
               colour_constancy="shades_of_gray", tta=True, metadata_columns=METADATA)
    return clf, X.iloc[40:]


@pytest.fixture(scope="module")
def lite0(ham10000_root):
    """EfficientNet-Lite0 with ImageNet weights, fine-tuned for one epoch on 60 real images."""
    data = load_ham10000(ham10000_root)
    X, y = data.data, np.asarray(data.target)
    rows = np.concatenate([np.flatnonzero(y == c)[:12] for c in np.unique(y)])
    train, test = rows[::2][:60], rows[1::2][:24]
    clf = _fit(X.iloc[train], y[train], backbone="tf_efficientnet_lite0", image_size=(96, 128),
               freeze_until="blocks.3", test_crop="auto", tta=True, metadata_columns=METADATA)
    return clf, X.iloc[test]


@pytest.fixture(scope="module")
def tiny_proba(tiny):
    clf, X = tiny
    return clf.predict_proba(X)


@pytest.fixture(scope="module")
def lite0_proba(lite0):
    clf, X = lite0
    return clf.predict_proba(X)


@pytest.mark.parametrize("fitted", ["tiny", pytest.param("lite0", marks=pytest.mark.realdata)])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_gives_predict_probas_probabilities(fitted, fmt, request, tmp_path):
    clf, X = request.getfixturevalue(fitted)
    path = export_model(clf, tmp_path / f"model.{fmt}", format=fmt)
    inputs = _inputs(clf, X)
    proba = _onnx_proba(path, inputs) if fmt == "onnx" else _torchscript_proba(path, inputs)
    expected = request.getfixturevalue(f"{fitted}_proba")
    assert proba.shape == expected.shape == (len(X), len(clf.classes_))
    assert np.abs(proba - expected).max() <= TOL
    assert (proba.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("settings", [{"colour_constancy": "max_rgb"},
                                      {"colour_constancy": None, "tta": False, "test_crop": 0.5}])
def test_prediction_settings_changed_after_fit_are_exported(tiny, settings, tmp_path):
    clf, X = tiny
    clf = copy.deepcopy(clf).set_params(**settings)
    path = export_model(clf, tmp_path / "m.onnx")
    assert np.abs(_onnx_proba(path, _inputs(clf, X)) - clf.predict_proba(X)).max() <= TOL


def test_the_plain_path_without_metadata_crop_or_tta(tiny_lesions, tmp_path):
    X, y = tiny_lesions.data, tiny_lesions.target
    clf = _fit(X.iloc[:40], y[:40], backbone="tiny", weights=None, image_size=(48, 64),
               test_crop=None)
    path = export_model(clf, tmp_path / "plain.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    inputs = _inputs(clf, X.iloc[40:])
    assert np.abs(_onnx_proba(path, inputs) - clf.predict_proba(X.iloc[40:])).max() <= TOL
    # one image at a time: the batch dimension is dynamic
    assert _onnx_proba(path, (inputs[0][:1],)).shape == (1, len(clf.classes_))


def test_the_export_records_classes_size_and_metadata_columns(tiny, tmp_path):
    clf, _ = tiny
    onnx_path = export_model(clf, tmp_path / "m.onnx")
    props = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]) \
        .get_modelmeta().custom_metadata_map
    extra = {EXTRA_FILE: ""}
    torch.jit.load(str(export_model(clf, tmp_path / "m.pt", format="torchscript")),
                   _extra_files=extra)
    for info in ({k: json.loads(v) for k, v in props.items()}, json.loads(extra[EXTRA_FILE])):
        assert info["classes"] == clf.classes_.tolist()
        assert info["image_size"] == [48, 64]
        assert info["metadata_columns"] == METADATA
        assert info["n_metadata"] == clf.metadata_encoder_.transform(
            pd.DataFrame({"age": [50.0], "sex": ["male"], "localization": ["back"]})).shape[1]
        assert info["tta"] is True and info["crop_area"] == pytest.approx(0.875)


def test_torchscript_refuses_images_of_another_size(tiny, tmp_path):
    clf, X = tiny
    module = torch.jit.load(str(export_model(clf, tmp_path / "m.pt", format="torchscript")))
    images, metadata = (torch.from_numpy(a) for a in _inputs(clf, X.iloc[:2]))
    with pytest.raises(Exception, match=r"uint8 images \(N, 48, 64, 3\)"):
        module(images[:, :40], metadata)


def test_export_file_exports_a_saved_model(tiny, tmp_path):
    clf, X = tiny
    model = save_model(clf, tmp_path / "m.skderm")
    path = export_file(model, tmp_path / "m.onnx", "onnx")
    assert np.abs(_onnx_proba(path, _inputs(clf, X)) - clf.predict_proba(X)).max() <= TOL
    with pytest.raises(OutputPathError, match="overwrite an input"):
        export_file(model, model, "onnx")


def test_what_cannot_be_exported_is_refused_by_name(tiny, tiny_lesions, tmp_path):
    clf, _ = tiny
    wrapped = LesionLevelClassifier(clf)
    wrapped.estimator_ = clf
    with pytest.raises(ExportError, match=r"LesionClassifier only.*LesionLevelClassifier\."
                                          r"estimator_") as info:
        export_model(wrapped, tmp_path / "m.onnx")
    assert isinstance(info.value, SkdermError) and isinstance(info.value, TypeError)
    vote = VotingClassifier([("a", clf)], voting="soft")
    vote.estimators_ = [clf]
    with pytest.raises(ExportError, match=r"got VotingClassifier; export each member"):
        export_model(vote, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="got str"):
        export_model("model.skderm", tmp_path / "m.onnx")
    with pytest.raises(Exception, match="not initialized"):
        export_model(LesionClassifier(backbone="tiny"), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="format='tflite'.*'onnx', 'torchscript'"):
        export_model(clf, tmp_path / "m.onnx", format="tflite")
    with pytest.raises(ValueError, match="opset=15.*>= 16"):
        export_model(clf, tmp_path / "m.onnx", opset=15)
    with pytest.raises(OutputPathError, match="is a folder"):
        export_model(clf, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left


def test_onnx_export_without_onnx_names_the_extra(tiny, tmp_path, monkeypatch):
    clf, _ = tiny
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'skderm\[export\]'"):
        export_model(clf, tmp_path / "m.onnx")
