"""Model files from someone else: a published digest, and bounds on what a file can ask.

Each test edits a real model file and recomputes the digest stored inside it,
as whoever edits a file can: what it proves holds whatever that digest says.
"""

from __future__ import annotations

import pytest
import torch

from skderm import LesionClassifier
from skderm.exceptions import ModelFileError
from skderm.persistence import FORMAT_VERSION, load_model, model_digest, save_model
from skderm.persistence._format import payload_digest

META = ["age", "sex", "localization"]


def _fit(data, **params):
    clf = LesionClassifier(backbone="tiny", weights=None, image_size=(32, 32), max_epochs=1,
                           module__hidden_units=8, random_state=0, verbose=0, valid_size=None, **params)
    return clf.fit(data.data, data.target)


@pytest.fixture(scope="module")
def fitted(tiny_lesions):
    return _fit(tiny_lesions)


@pytest.fixture(scope="module")
def model_file(fitted, tmp_path_factory):
    return save_model(fitted, tmp_path_factory.mktemp("model") / "m.skderm")


@pytest.fixture(scope="module")
def meta_file(tiny_lesions, tmp_path_factory):
    return save_model(_fit(tiny_lesions, metadata_columns=META),
                      tmp_path_factory.mktemp("meta") / "meta.skderm")


def _edited(model_file, tmp_path, edit, name="edited.skderm"):
    """A copy of ``model_file`` changed by ``edit``, its in-file digest recomputed."""
    payload = torch.load(model_file, map_location="cpu", weights_only=True)
    edit(payload)
    payload["sha256"] = payload_digest(payload)
    torch.save(payload, tmp_path / name)
    return tmp_path / name


def test_the_in_file_digest_is_no_defence_but_a_published_one_is(fitted, model_file, tmp_path):
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
    ("module__hidden_units", 10**8, "module__hidden_units=100000000 is out of range"),
    ("callbacks__checkpoint__dirname", "/tmp/planted", "['callbacks__checkpoint__dirname']"),
    ("torch_load_kwargs", {"weights_only": False}, "['torch_load_kwargs']"),
    ("callbacks__print_log__sink", "x", "['callbacks__print_log__sink']"),
    ("module__dropout", "high", "module__dropout='high' is out of range"),
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
