"""Every bad input gives a clear error, or a documented behaviour (issue 7).

tests/test_images.py already proves, for ``read_image``/``load_images``, the
colour modes (RGB, RGBA, L, CMYK, P, I;16), truncated, zero-byte, text,
missing and directory files, the decompression-bomb limit and non-ASCII
paths. This file does not repeat those: it proves the same cases through
``LesionClassifier.fit``/``predict``, adds what was missing (more modes,
images smaller than the input size, real bomb-sized headers, NUL bytes in
paths), covers labels and metadata, fuzzes the readers with hypothesis and
checks that skderm never writes into the user's data folder.
docs/user_guide/bad_input.rst lists every case and the test that proves it.
"""

from __future__ import annotations

import io
import itertools
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_val_predict

from skderm import images, load_ham10000
from skderm.classifier import LesionClassifier
from skderm.datasets import DX_CLASSES, FEATURE_NAMES, make_lesions
from skderm.exceptions import DatasetError, ImageError
from skderm.images import read_image
from skderm.inputs import check_labels, parse_X
from skderm.metadata import check_metadata, check_metadata_at_predict, metadata_encoder
from skderm.metrics import get_scorers

SIZE = (32, 32)
FAST = dict(
    backbone="tiny",
    weights=None,
    image_size=SIZE,
    max_epochs=1,
    valid_size=None,
    batch_size=32,
    verbose=0,
    random_state=0,
    augmentation="none",
)
META = ["age", "sex", "localization"]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def make_clf(**params) -> LesionClassifier:
    return LesionClassifier(**{**FAST, **params})


@pytest.fixture(scope="module")
def data(tiny_lesions):
    """60 images of 7 classes, 5 lesions per class (shared: never written to)."""
    return tiny_lesions.data, tiny_lesions.target


@pytest.fixture(scope="module")
def good_path(tiny_lesions) -> str:
    """One decodable image (a plain str: hypothesis prints it in a failing example)."""
    return str(tiny_lesions.data["path"][0])


@pytest.fixture(scope="module")
def fitted(data):
    return make_clf().fit(*data)


# ---------------------------------------------------------------------------
# image files: writers for every odd file a real folder may hold
# ---------------------------------------------------------------------------


def _gradient(height: int = 20, width: int = 24) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return np.stack(
        [xx * 255 // (width - 1), yy * 255 // (height - 1), np.full_like(xx, 90)], -1
    ).astype(np.uint8)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels but carries almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _odd_mode_files(folder: Path) -> dict[str, Path]:
    """One file per mode test_images.py does not cover, plus tiny images."""
    folder.mkdir(parents=True, exist_ok=True)
    gray = _gradient()[..., 0]
    files = {
        "mode 1 (bilevel)": (Image.fromarray(gray > 127).convert("1"), "bilevel.png"),
        "mode LA": (
            Image.merge("LA", [Image.fromarray(gray), Image.new("L", (24, 20), 255)]),
            "gray alpha.png",
        ),
        "mode I (32-bit)": (Image.fromarray(gray.astype(np.int32) * 1000), "int32.tif"),
        "mode F (float)": (Image.fromarray(gray.astype(np.float32) / 7), "float.tif"),
        "1x1 pixel": (Image.new("RGB", (1, 1), (200, 30, 40)), "dot.png"),
        "5x4 pixels": (Image.fromarray(_gradient(4, 5)), "tiny.jpg"),
        "grayscale JPEG": (Image.fromarray(gray), "gray.jpg"),
        "CMYK JPEG": (Image.new("CMYK", (24, 20), (0, 255, 255, 0)), "cmyk.jpg"),
        "RGBA PNG": (
            Image.fromarray(np.dstack([_gradient(), np.full(gray.shape, 128, np.uint8)])),
            "rgba.png",
        ),
        "palette PNG": (Image.fromarray(_gradient()).convert("P"), "palette.png"),
        "16-bit PNG": (Image.fromarray(gray.astype(np.uint16) * 257), "deep.png"),
    }
    out = {}
    for name, (img, filename) in files.items():
        img.save(folder / filename)
        out[name] = folder / filename
    return out


def _broken_file(kind: str, folder: Path, good: str) -> str:
    """A file of ``kind`` that no reader can decode, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = Path(good).read_bytes()
    writers = {
        "truncated JPEG": ("ISIC_trunc.jpg", data[: len(data) // 3]),
        "corrupt JPEG header": ("ISIC_corrupt.jpg", data[:2] + b"\x00" * 40 + data[42:]),
        "truncated PNG": ("ISIC_trunc.png", _png_of(good)[:-40]),
        "zero-byte file": ("ISIC_empty.jpg", b""),
        "HTML page named .jpg": (
            "ISIC_html.jpg",
            b"<!DOCTYPE html><html><body>403 Forbidden</body></html>\n",
        ),
        "bomb-sized PNG (30000x30000)": ("ISIC_bomb.png", _png_header(30000, 30000)),
        "bomb-sized PNG (10000x10000)": ("ISIC_bomb_warn.png", _png_header(10000, 10000)),
    }
    if kind == "missing file":
        return str(folder / "ISIC_gone.jpg")
    if kind == "directory named .jpg":
        (folder / "ISIC_dir.jpg").mkdir(exist_ok=True)
        return str(folder / "ISIC_dir.jpg")
    name, payload = writers[kind]
    (folder / name).write_bytes(payload)
    return str(folder / name)


def _png_of(path: str) -> bytes:
    buf = io.BytesIO()
    with Image.open(path) as img:
        img.save(buf, "PNG")
    return buf.getvalue()


BROKEN_KINDS = [
    "truncated JPEG", "corrupt JPEG header", "truncated PNG", "zero-byte file",
    "HTML page named .jpg", "bomb-sized PNG (30000x30000)", "bomb-sized PNG (10000x10000)",
    "missing file", "directory named .jpg",
]  # fmt: skip

# Pillow warns (DecompressionBombWarning) before skderm refuses the file.
bomb_warning = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def _assert_names(exc: ImageError, path: str) -> None:
    assert os.path.basename(path) in str(exc)
    assert os.path.abspath(exc.path) == os.path.abspath(path)


# ---------------------------------------------------------------------------
# images through read_image / load_images: the cases test_images.py lacks
# ---------------------------------------------------------------------------


def test_more_modes_decode_to_sensible_rgb(tmp_path):
    files = _odd_mode_files(tmp_path / "modes")
    gray = _gradient()[..., 0].astype(int)
    for name in ("mode I (32-bit)", "mode F (float)"):
        out = read_image(files[name])
        assert out.shape == (20, 24, 3) and out.dtype == np.uint8, name
        # scaled to the image's own range, not clipped to white above 255
        assert out[..., 0].min() == 0 and out[..., 0].max() == 255, name
        assert np.abs(out[..., 0].astype(int) - gray).max() <= 2, name
    bilevel = read_image(files["mode 1 (bilevel)"])
    assert set(np.unique(bilevel)) == {0, 255}
    la = read_image(files["mode LA"])
    assert np.abs(la[..., 1].astype(int) - gray).max() <= 1  # opaque: the gray itself


@pytest.mark.parametrize("name, size", [("1x1 pixel", (32, 32)), ("5x4 pixels", (32, 48))])
def test_images_smaller_than_the_input_size_are_upscaled(tmp_path, name, size):
    path = _odd_mode_files(tmp_path / "small")[name]
    out = images.load_images([path], size)[0]
    assert out.shape == (*size, 3) and out.dtype == np.uint8
    if name == "1x1 pixel":
        assert np.all(out == (200, 30, 40))


@bomb_warning
@pytest.mark.parametrize("width", [10000, 30000])
def test_bomb_sized_header_is_refused_without_decoding(tmp_path, width):
    # A real header with the pixel count of a decompression bomb (no
    # monkeypatched limit): above MAX_IMAGE_PIXELS Pillow only warns, above
    # twice it errors; both must end as an ImageError naming the file.
    path = tmp_path / "ISIC_bomb.png"
    path.write_bytes(_png_header(width, width))
    for call in (lambda: read_image(path, SIZE), lambda: images.load_images([path], SIZE)):
        with pytest.raises(ImageError, match="too large to decode safely") as info:
            call()
        _assert_names(info.value, str(path))


def test_nul_byte_in_a_path_is_an_image_error_from_read_image():
    with pytest.raises(ImageError) as info:
        read_image("ISIC_\x00.jpg", SIZE)
    assert info.value.path == "ISIC_\x00.jpg"


def test_nul_byte_in_a_path_is_an_image_error_from_load_images():
    with pytest.raises(ImageError, match="ISIC_"):
        images.load_images(["ISIC_\x00.jpg"], SIZE)
    with pytest.raises(ImageError, match="NUL byte"):
        images.read_image("ISIC_\x00.jpg")


# ---------------------------------------------------------------------------
# images through LesionClassifier.fit / predict
# ---------------------------------------------------------------------------


def test_every_mode_and_size_trains_and_predicts(data, tmp_path):
    X, y = data
    # a folder name with non-ASCII characters and spaces, as users have
    files = _odd_mode_files(tmp_path / "läsionen ü" / "Bilder 图像")
    odd = X.copy()
    odd.loc[: len(files) - 1, "path"] = [str(p) for p in files.values()]
    clf = make_clf().fit(odd, y)
    pred = clf.predict(odd.head(len(files)))
    assert set(pred) <= set(clf.classes_)
    proba = clf.predict_proba(odd.head(len(files)))
    assert proba.shape == (len(files), 7) and np.isfinite(proba).all()


@bomb_warning
@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_broken_file_in_fit_is_an_image_error_naming_it(data, tmp_path, kind):
    X, y = data
    path = _broken_file(kind, tmp_path, X["path"][0])
    broken = X.copy()
    broken.loc[7, "path"] = path
    with pytest.raises(ImageError) as info:
        make_clf().fit(broken, y)
    _assert_names(info.value, path)
    assert "1 of 60 images failed" in str(info.value)


@bomb_warning
@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_broken_file_in_predict_is_an_image_error_naming_it(fitted, data, tmp_path, kind):
    X, _ = data
    path = _broken_file(kind, tmp_path, X["path"][0])
    with pytest.raises(ImageError) as info:
        fitted.predict(X.head(4).assign(path=[X["path"][0], path, *X["path"][1:3]]))
    _assert_names(info.value, path)


def test_nul_byte_in_a_path_column_names_the_row(fitted, data):
    X, y = data
    bad = X.head(4).assign(path=[*X["path"][:2], "ISIC_\x00.jpg", X["path"][3]])
    with pytest.raises(DatasetError, match=r"X\['path'\]: row 2 .*NUL"):
        fitted.predict(bad)


# ---------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------


def _one_lesion_of(X, y, label: str):
    """Keep a single lesion (all its images) of class ``label``."""
    lesion = X.loc[y == label, "lesion_id"].iloc[0]
    keep = (y != label) | (X["lesion_id"] == lesion)
    return X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)


@pytest.mark.filterwarnings("ignore:The least populated class")
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_class_missing_from_a_training_fold_is_never_predicted_there(data):
    # Documented behaviour: a fold's model knows only the classes of its
    # training side. With 'df' down to one lesion, the fold that tests that
    # lesion trains without 'df': it cannot predict 'df', and
    # cross_val_predict(method="predict_proba") pads that column with zeros
    # (scikit-learn warns).
    X, y = _one_lesion_of(*data, "df")
    cv = list(StratifiedGroupKFold(3).split(X, y, X["lesion_id"]))
    fold = next(k for k, (train, _) in enumerate(cv) if "df" not in set(y[train]))
    train, test = cv[fold]
    clf = make_clf().fit(X.iloc[train], y.iloc[train])
    assert "df" not in clf.classes_ and len(clf.classes_) == 6
    assert clf.predict_proba(X.iloc[test]).shape == (len(test), 6)

    pred = cross_val_predict(make_clf(), X, y, groups=X["lesion_id"], cv=cv)
    assert len(pred) == len(y) and set(pred) <= set(DX_CLASSES)
    assert not (pred[y == "df"] == "df").any()
    with pytest.warns(RuntimeWarning, match="Number of classes in training fold"):
        proba = cross_val_predict(
            make_clf(), X, y, groups=X["lesion_id"], cv=cv, method="predict_proba"
        )
    assert proba.shape == (len(y), 7)
    np.testing.assert_array_equal(proba[y == "df", DX_CLASSES.index("df")], 0)

    search = GridSearchCV(
        make_clf(), {"lr": [1e-3]}, cv=cv, scoring=get_scorers(probabilities=False), refit="bacc", error_score="raise"
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_bacc"]).all()
    assert list(search.best_estimator_.classes_) == sorted(DX_CLASSES)


@pytest.mark.parametrize("y_single, shown", [(["nv"] * 60, "['nv']"), ([3] * 60, "[3]")])
def test_single_class_y_names_the_class(data, y_single, shown):
    X, _ = data
    with pytest.raises(ValueError, match="only one class") as info:
        make_clf().fit(X, y_single)
    assert shown in str(info.value)


def _with_missing(y: pd.Series, how: str):
    labels = y.tolist()
    for i in (2, 7):
        labels[i] = None if how == "None" else np.nan
    if how == "Categorical":
        return pd.Categorical(labels)
    if how == "Int64":
        codes = pd.Series(pd.Categorical(y).codes, dtype="Int64")
        codes[[2, 7]] = pd.NA
        return codes
    return labels if how in ("None", "NaN in a list") else pd.Series(labels)


@pytest.mark.parametrize(
    "how", ["None", "NaN in a list", "NaN in a Series", "Categorical", "Int64"]
)
def test_missing_labels_are_counted_and_located(data, how):
    X, y = data
    images.clear_cache()
    with pytest.raises(ValueError, match=r"2 missing label\(s\).*position\(s\) \[2, 7\]"):
        make_clf().fit(X, _with_missing(y, how))
    assert images.cache_info().misses == 0  # refused before decoding anything


@pytest.mark.parametrize("bad, match", [
    (["mel", 1] * 30, r"one type.*number \(1\) and text \('mel'\)"),
    (np.array([b"mel", b"nv"] * 30), "bytes"),
    ([b"mel", b"nv"] * 30, "bytes"),
    ([["mel"], ["nv", "bcc"]] * 30, "list"),
])  # fmt: skip
def test_unusable_label_types_are_value_errors(data, bad, match):
    X, _ = data
    with pytest.raises(ValueError, match=match):
        make_clf().fit(X, bad)


def test_numeric_and_categorical_labels_keep_their_values(data):
    X, y = data
    codes = {dx: k for dx, k in zip(DX_CLASSES, (0, 3, 7, 10, 11, 40, 41), strict=True)}
    numeric = y.map(codes).to_numpy()
    clf = make_clf().fit(X, numeric)
    assert list(clf.classes_) == sorted(codes.values())
    assert set(clf.predict(X)) <= set(codes.values())
    # categories in a non-alphabetical order, one of them unused
    order = ["vasc", "nv", "mel", "df", "bkl", "bcc", "akiec", "unused"]
    clf = make_clf().fit(X, pd.Categorical(y, categories=order, ordered=True))
    assert list(clf.classes_) == sorted(DX_CLASSES)  # sorted values present, not codes
    assert set(clf.predict(X)) <= set(DX_CLASSES)


def test_check_labels_keeps_nan_out_of_text_labels():
    # np.asarray(["mel", nan]) would make the class "nan": refused instead
    with pytest.raises(ValueError, match=r"1 missing label\(s\).*\[1\]"):
        check_labels(["mel", float("nan"), "nv"])
    np.testing.assert_array_equal(check_labels(["mel", "nv", "mel"]), ["mel", "nv", "mel"])


# ---------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------


def test_missing_metadata_values_are_imputed_at_fit_and_predict(data):
    X, y = data
    gappy = X.assign(
        age=X["age"].where(np.arange(len(X)) % 3 != 0),
        sex=X["sex"].where(np.arange(len(X)) % 4 != 0),
    )
    clf = make_clf(metadata_columns=META).fit(gappy, y)
    rows = X.head(6)
    # None, NaN and pd.NA all mean "missing": the same prediction
    as_nan = clf.predict_proba(rows.assign(age=np.nan, sex=np.nan))
    as_none = clf.predict_proba(rows.assign(age=None, sex=None))
    as_na = clf.predict_proba(
        rows.assign(
            age=pd.array([pd.NA] * 6, dtype="Float64"), sex=pd.array([pd.NA] * 6, dtype="string")
        )
    )
    np.testing.assert_allclose(as_none, as_nan, atol=1e-6)
    np.testing.assert_allclose(as_na, as_nan, atol=1e-6)
    # an unseen localization is ignored (all zeros), not an error
    unseen = clf.predict_proba(rows.assign(localization="left earlobe"))
    assert unseen.shape == (6, 7) and np.isfinite(unseen).all()


def test_missing_metadata_column_names_it_and_the_columns_present(data):
    X, y = data
    with pytest.raises(DatasetError, match=r"\['smoker'\].*columns: \['path', 'lesion_id'"):
        make_clf(metadata_columns=["age", "smoker"]).fit(X, y)


def _age_as(kind: str, age: pd.Series):
    n = len(age)
    return {
        "strings like '45'": age.map(lambda a: "unknown" if np.isnan(a) else f"{a:.0f}"),
        "strings '45'/'unknown'": pd.Series(["45", "unknown"] * (n // 2)),
        "numbers as object": age.astype(object),
        "text mixed with numbers": pd.Series([45, "unknown"] * (n // 2), dtype=object),
        "lists": pd.Series([[45, 50]] * n),
        "dicts": pd.Series([{"years": 45}] * n),
        "dates": pd.Series(pd.date_range("2020-01-01", periods=n)),
        "complex": pd.Series([45 + 1j] * n),
        "infinite": age.where(np.arange(n) != 4, np.inf),
        "integer categories": pd.Series(pd.Categorical([40, 50] * (n // 2))),
    }[kind]


AGE_KINDS = [
    "strings like '45'",
    "strings '45'/'unknown'",
    "numbers as object",
    "text mixed with numbers",
    "lists",
    "dicts",
    "dates",
    "complex",
    "infinite",
    "integer categories",
]


@pytest.mark.parametrize("kind", AGE_KINDS)
def test_wrong_metadata_dtype_is_a_dataset_error_naming_the_column(data, kind):
    X, y = data
    bad = X.assign(age=_age_as(kind, X["age"]).set_axis(X.index))
    images.clear_cache()
    with pytest.raises(DatasetError, match="metadata column 'age'"):
        make_clf(metadata_columns=META).fit(bad, y)
    assert images.cache_info().misses == 0  # before any decoding
    with pytest.raises(DatasetError, match="metadata column 'age'"):
        metadata_encoder(bad[META])


def test_supported_metadata_dtypes_train_and_predict(data):
    X, y = data
    n = len(X)
    rich = X.assign(
        age=X["age"].astype("Int64"),  # nullable integers
        smoker=pd.array([True, False, None] * (n // 3), dtype="boolean"),
        fair_skin=[True, False] * (n // 2),
        sex=X["sex"].astype("string"),  # pd.NA-aware strings
        localization=X["localization"].astype("category"),
        skin_type=pd.Categorical(["1", "2", "3"] * (n // 3)),  # numbers as categories
    )
    cols = ["age", "smoker", "fair_skin", "sex", "localization", "skin_type"]
    clf = make_clf(metadata_columns=cols).fit(rich, y)
    proba = clf.predict_proba(rich.head(5))
    assert proba.shape == (5, 7) and np.isfinite(proba).all()


def test_text_in_a_column_fitted_as_numbers_is_named(data):
    X, y = data
    clf = make_clf(metadata_columns=META).fit(X, y)
    later = parse_X(X.head(3).assign(age="unknown"), require_metadata=META).frame[META]
    with pytest.raises(DatasetError, match=r"'age' held numbers.*'unknown'"):
        check_metadata_at_predict(later, clf.metadata_encoder_)
    fine = parse_X(X.head(3).assign(age=None), require_metadata=META).frame[META]
    check_metadata_at_predict(fine, clf.metadata_encoder_)  # missing is not text
    # and through the estimator itself
    with pytest.raises(DatasetError, match=r"'age' held numbers.*'unknown'"):
        clf.predict(X.head(3).assign(age="unknown"))
    assert clf.predict(X.head(3).assign(age=None)).shape == (3,)


def test_duplicate_and_non_text_metadata_names_are_refused(data):
    X, _ = data
    with pytest.raises(DatasetError, match="several columns named 'age'"):
        parse_X(pd.concat([X, X[["age"]]], axis=1), require_metadata=["age"])
    with pytest.raises(DatasetError, match="more than once"):
        check_metadata(X, ["age", "age"])
    with pytest.raises(DatasetError, match="must be text, got 5"):
        check_metadata(X.rename(columns={"age": 5}), [5])


# ---------------------------------------------------------------------------
# fuzzing: only skderm's documented exceptions may escape
# ---------------------------------------------------------------------------


def _seed_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_gradient(12, 16)).save(buf, fmt)
    return buf.getvalue()


SEEDS = {"JPEG": _seed_bytes("JPEG"), "PNG": _seed_bytes("PNG")}


@st.composite
def image_bytes(draw) -> bytes:
    """Arbitrary bytes, or a valid JPEG/PNG flipped, cut short, spliced or padded."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.binary(max_size=600))
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "delete", "insert"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 32))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


_counter = itertools.count()
# True one draw in eight: hypothesis favours small integers, so st.integers(0, 7) == 0
# would come up far more often than that
RARELY = st.sampled_from([False] * 7 + [True])


@FUZZ
@given(payload=image_bytes(), suffix=st.sampled_from([".jpg", ".png", ".JPEG", ""]))
def test_fuzz_image_bytes_only_raise_image_error(tmp_path, payload, suffix):
    # a fresh name per example: the cache keys on (path, mtime, size)
    path = tmp_path / f"ISIC_{next(_counter)}{suffix}"
    path.write_bytes(payload)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own warnings on odd files
        for reader in (
            lambda: read_image(path, (16, 16)),
            lambda: images.load_images([path], (16, 16)),
        ):
            try:
                out = reader()
            except ImageError as exc:
                _assert_names(exc, str(path))
            else:
                out = out if isinstance(out, np.ndarray) else out[0]
                assert out.shape == (16, 16, 3) and out.dtype == np.uint8


# Ages of 1e308 overflow StandardScaler's variance: absurd, not a bad input to handle.
_FLOATS = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([np.nan, np.inf, -np.inf]))


def _column_values(draw, n: int, good_path: str) -> pd.Series:
    """n values of one randomly chosen dtype, the awkward ones included."""
    scalar = st.one_of(
        st.none(),
        st.just(np.nan),
        st.just(pd.NA),
        st.booleans(),
        st.integers(-5, 99),
        _FLOATS,
        st.sampled_from(["", "unknown", "45", "back", "male", "1e400", "nan", " 7 "]),
        st.text(max_size=4),
        st.binary(max_size=3),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
        st.just(good_path),
        st.just(good_path + "\x00"),
        st.just(pd.Timestamp("2020-01-01")),
        st.complex_numbers(max_magnitude=5),
    )
    kind = draw(
        st.sampled_from(
            [
                "float",
                "int",
                "Int64",
                "bool",
                "boolean",
                "str",
                "string",
                "category",
                "object",
                "datetime",
                "paths",
            ]
        )
    )
    if kind == "float":
        return pd.Series(draw(st.lists(_FLOATS, min_size=n, max_size=n)), dtype=float)
    if kind in ("int", "Int64"):
        values = draw(
            st.lists(
                st.integers(-5, 99) if kind == "int" else st.one_of(st.none(), st.integers(-5, 99)),
                min_size=n,
                max_size=n,
            )
        )
        return pd.Series(values, dtype="int64" if kind == "int" else "Int64")
    if kind in ("bool", "boolean"):
        values = draw(
            st.lists(
                st.booleans() if kind == "bool" else st.one_of(st.none(), st.booleans()),
                min_size=n,
                max_size=n,
            )
        )
        return pd.Series(values, dtype=bool if kind == "bool" else "boolean")
    text = st.one_of(
        st.none(),
        st.sampled_from(["", "unknown", "45", "back", "male", " 7 "]),
        st.text(max_size=4),
    )
    if kind in ("str", "string", "category"):
        values = draw(st.lists(text, min_size=n, max_size=n))
        dtype = {"str": object, "string": "string", "category": "category"}[kind]
        return pd.Series(values, dtype=dtype)
    if kind == "datetime":
        return pd.Series(pd.date_range("2020-01-01", periods=n))
    if kind == "paths":
        return pd.Series(
            draw(
                st.lists(
                    st.sampled_from([good_path, good_path, "", None, good_path + "\x00"]),
                    min_size=n,
                    max_size=n,
                )
            ),
            dtype=object,
        )
    return pd.Series(draw(st.lists(scalar, min_size=n, max_size=n)), dtype=object)


@st.composite
def loader_frames(draw, good_path: str):
    """A DataFrame X as users build them: mostly sound, with one or two odd columns."""
    n = 0 if draw(RARELY) else draw(st.integers(1, 5))
    names = [] if draw(RARELY) else ["path", "lesion_id"]
    names += draw(st.lists(st.sampled_from([*META, "extra"]), max_size=4, unique=True))
    if names and draw(RARELY):
        names.append(draw(st.sampled_from(names)))  # a duplicated name
    columns = []
    for name in names:
        if name == "path" and not draw(RARELY):
            values = pd.Series([good_path] * n, dtype=object)
        elif name == "lesion_id" and draw(st.booleans()):
            values = pd.Series([f"HAM_{i % 2}" for i in range(n)], dtype=object)
        else:
            values = _column_values(draw, n, good_path)
        columns.append(values.reset_index(drop=True))
    frame = (
        pd.concat(columns, axis=1, ignore_index=True)
        if columns
        else pd.DataFrame(index=pd.RangeIndex(n))
    )
    frame.columns = names  # duplicated names allowed, as users make them
    present = sorted({c for c in names if c in META or c == "extra"})
    metadata = (
        []
        if not present or draw(RARELY)
        else draw(st.lists(st.sampled_from(present), min_size=1, max_size=3, unique=True))
    )
    if draw(RARELY):
        metadata.append(draw(st.sampled_from(["absent", *metadata])))
    group = draw(st.sampled_from(["lesion_id", None]))
    return frame, metadata, group


@FUZZ
@given(data=st.data())
def test_fuzz_parse_x_raises_only_dataset_error(good_path, data):
    frame, metadata, group = data.draw(loader_frames(good_path))
    try:
        inp = parse_X(frame, group_column=group, require_metadata=metadata)
    except DatasetError as exc:
        assert str(exc)
        return
    assert inp.n == len(frame) and len(inp.paths) == inp.n
    assert all(isinstance(p, str) and p and "\x00" not in p for p in inp.paths)
    if inp.groups is not None:
        assert not pd.isna(inp.groups).any()
        np.unique(inp.groups)  # splitters sort lesion ids: they must be of one type
    if metadata and inp.n:
        # whatever parse_X accepts, the metadata encoder can fit and apply
        cols = list(dict.fromkeys(metadata))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Skipping features without any observed values"
            encoder = metadata_encoder(inp.frame[cols])
            encoded = encoder.fit_transform(inp.frame[cols])
            encoder.transform(inp.frame[cols].iloc[::-1])
        assert np.isfinite(encoded).all()


_HEADERS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
_ODD_CELL = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "unknown",
            "inf",
            "-3",
            "1e400",
            "forty",
            "1_000",
            "MEL",
            " nv ",
            "melanoma",
            "ISIC_1.JPG",
            "é",
            "a,b",
            'q"uote',
            "x\ny",
        ]
    ),
    st.text(max_size=3),
)


_AGE_CELL = st.sampled_from(
    ["inf", "-inf", "-3", "1e400", "NaN", "N/A", "forty", "45 ", "4.5e1", "1_000"]
)


def _sound_cell(column: str, row: int, lesion: int) -> str:
    """What a well-formed HAM10000 row holds (lesion k has the k-th class)."""
    return {
        "lesion_id": f"HAM_{lesion}",
        "image_id": f"ISIC_{row}",
        "dx": DX_CLASSES[lesion],
        "dx_type": "histo",
        "age": ("45", "", "unknown", "60.0", "0")[row % 5],
        "sex": ("male", "female", "unknown")[row % 3],
        "localization": ("back", "lower extremity", "unknown")[row % 3],
    }.get(column, "note")


@st.composite
def metadata_csvs(draw) -> str:
    """A HAM10000-style CSV: mostly sound rows, with odd cells, columns and headers."""
    columns = list(_HEADERS)
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["drop", "pad", "extra", "path"]))
        if op == "drop":
            columns.remove(draw(st.sampled_from(columns)))
        elif op == "pad":  # " age" beside "age": one name once trimmed
            columns.append(" " + draw(st.sampled_from(columns)))
        else:
            columns.append("notes" if op == "extra" else "path")
    rows = []
    for row in range(draw(st.integers(0, 5))):
        lesion = draw(st.integers(0, 2))
        cells = [
            draw(_ODD_CELL) if draw(RARELY) else _sound_cell(column.strip(), row, lesion)
            for column in columns
        ]
        if "age" in columns and draw(st.booleans()):
            cells[columns.index("age")] = draw(_AGE_CELL)
        rows.append(cells)
    frame = pd.DataFrame(rows, columns=range(len(columns)))
    return frame.set_axis(columns, axis=1).to_csv(index=False)


@FUZZ
@given(csv=metadata_csvs(), check_files=st.booleans(), dedupe=st.booleans())
def test_fuzz_load_ham10000_raises_only_dataset_error(tmp_path_factory, csv, check_files, dedupe):
    root = tmp_path_factory.getbasetemp() / "fuzz_ham"
    if not root.exists():
        (root / "images").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8)).save(root / "images" / f"ISIC_{i}.jpg")
    (root / "HAM10000_metadata.csv").write_text(csv, encoding="utf-8")
    try:
        bunch = load_ham10000(root, check_files=check_files, dedupe=dedupe)
    except DatasetError as exc:
        assert str(exc)
        return
    # what the loader accepts follows the data conventions ...
    assert list(bunch.data.columns) == FEATURE_NAMES and len(bunch.data) >= 1
    assert bunch.data["age"].dtype == float
    ages = bunch.data["age"].dropna()
    assert np.isfinite(ages).all() and (ages >= 0).all()
    assert set(bunch.target) <= set(DX_CLASSES)
    assert all(os.path.isabs(p) for p in bunch.data["path"])
    # ... and is valid classifier input
    inp = parse_X(bunch.data, require_metadata=["age"])
    assert inp.n == len(bunch.data)


# ---------------------------------------------------------------------------
# the user's data folder is read, never written
# ---------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple]:
    entries = {".": (os.stat(root).st_mtime_ns,)}
    for path in sorted(root.rglob("*")):
        st_ = path.stat()
        entries[str(path.relative_to(root))] = (path.is_dir(), st_.st_size, st_.st_mtime_ns)
    return entries


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.filterwarnings("ignore:the internal validation split")
def test_loading_fitting_and_predicting_never_write_into_the_data_folder(tmp_path, monkeypatch):
    root = tmp_path / "HAM10000 copy"
    make_lesions(42, image_size=(32, 40), random_state=1, directory=root)
    before = _snapshot(root)
    # relative writes (checkpoints, caches) would land in the data folder too
    monkeypatch.chdir(root)
    bunch = load_ham10000(root)
    # the internal validation split and early stopping run as well
    clf = make_clf(valid_size=0.25, metadata_columns=META).fit(bunch.data, bunch.target)
    clf.predict(bunch.data)
    clf.predict_proba(bunch.data.head(5))
    assert _snapshot(root) == before


def test_an_all_missing_categorical_column_encodes_as_missing(tmp_path):
    # found by the fuzzer: its empty category index is float, which sklearn's
    # imputer took for numbers and refused to fill with "missing"
    X = pd.DataFrame({"path": ["a.jpg", "b.jpg"], "lesion_id": ["HAM_0", "HAM_1"],
                      "site": pd.Series([np.nan, None], dtype="category")})
    frame = parse_X(X, require_metadata=["site"]).frame[["site"]]
    encoded = metadata_encoder(frame).fit_transform(frame)
    np.testing.assert_array_equal(encoded, [[1.0], [1.0]])  # one column: "missing"
