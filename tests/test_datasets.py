"""Tests of skderm.datasets: load_ham10000 layouts and errors, make_lesions."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skderm.datasets import DX_CLASSES, DX_NAMES, load_ham10000, make_lesions
from skderm.exceptions import DatasetError

COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]


# ------------------------------------------------------------------ helpers


def _copy_dataset(source, root: Path, folders, *, suffix=".jpg", csv_name="HAM10000_metadata.csv"):
    """Lay out the images of a make_lesions bunch in `folders` (round robin) under root."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(source.directory) / "HAM10000_metadata.csv", root / csv_name)
    expected = {}
    for i, (image_id, path) in enumerate(
        zip(source.frame.image_id, source.frame.path, strict=True)
    ):
        folder = root / folders[i % len(folders)]
        folder.mkdir(exist_ok=True)
        target = folder / (
            image_id + (suffix if isinstance(suffix, str) else suffix[i % len(suffix)])
        )
        if target.suffix.lower() == ".png":
            Image.open(path).save(target)
        else:
            shutil.copy(path, target)
        expected[image_id] = str(target.resolve())
    return expected


def _edit_csv(root: Path, edit) -> None:
    csv = root / "HAM10000_metadata.csv"
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(csv, index=False)


@pytest.fixture
def dataset(tiny_lesions, tmp_path):
    """A writable copy of the tiny set in the `images/` layout."""
    _copy_dataset(tiny_lesions, tmp_path / "ham", ["images"])
    return tmp_path / "ham"


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize(
    "folders, suffix",
    [
        (["HAM10000_images_part_1", "HAM10000_images_part_2"], ".jpg"),
        (["ham10000_images_part_1", "ham10000_images_part_2"], ".jpg"),
        (["images"], ".jpg"),
        (["."], ".jpg"),
        (["images"], [".png", ".JPG", ".jpeg", ".PNG"]),
    ],
    ids=["official", "kaggle-lowercase", "images", "beside-csv", "mixed-extensions"],
)
def test_layouts_find_every_image(tiny_lesions, tmp_path, folders, suffix):
    expected = _copy_dataset(tiny_lesions, tmp_path / "ham", folders, suffix=suffix)
    bunch = load_ham10000(tmp_path / "ham")
    assert dict(zip(bunch.frame.image_id, bunch.frame.path, strict=True)) == expected
    pd.testing.assert_frame_equal(bunch.frame[COLUMNS], tiny_lesions.frame[COLUMNS])


def test_official_spelling_wins_over_kaggle_duplicate(tiny_lesions, tmp_path):
    root = tmp_path / "ham"
    _copy_dataset(tiny_lesions, root, ["ham10000_images_part_1"])
    official = _copy_dataset(tiny_lesions, root, ["HAM10000_images_part_1"])
    assert load_ham10000(root).frame.path.tolist() == [
        official[i] for i in tiny_lesions.frame.image_id
    ]


def test_metadata_without_extension_and_explicit_csv(tiny_lesions, tmp_path):
    _copy_dataset(tiny_lesions, tmp_path / "a", ["images"], csv_name="HAM10000_metadata")
    assert len(load_ham10000(tmp_path / "a").frame) == 60
    assert len(load_ham10000(tmp_path / "a" / "HAM10000_metadata").frame) == 60  # root = the CSV
    _copy_dataset(tiny_lesions, tmp_path / "b", ["images"], csv_name="my_labels.csv")
    assert len(load_ham10000(tmp_path / "b", csv="my_labels.csv").frame) == 60
    assert len(load_ham10000(tmp_path / "b", csv=tmp_path / "b" / "my_labels.csv").frame) == 60


def test_bunch_follows_the_data_conventions(tiny_lesions):
    bunch = tiny_lesions
    n = len(bunch.frame)
    assert list(bunch.data.columns) == ["path", "lesion_id", "age", "sex", "localization"]
    assert bunch.feature_names == list(bunch.data.columns)
    assert list(bunch.frame.columns) == COLUMNS + ["path"]
    for obj in (bunch.frame, bunch.data, bunch.target, bunch.groups):
        pd.testing.assert_index_equal(obj.index, pd.RangeIndex(n))
    assert bunch.target.name == "dx" and bunch.groups.name == "lesion_id"
    assert bunch.target_names == sorted(set(bunch.target)) == list(DX_CLASSES)
    assert bunch.data.age.dtype == float
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in bunch.data.path)
    assert (bunch.groups == bunch.data.lesion_id).all()


def test_descr_names_dataset_counts_citation_and_licence(tiny_lesions):
    descr = tiny_lesions.DESCR
    counts = tiny_lesions.target.value_counts()
    assert "HAM10000" in descr and "Tschandl" in descr and "180161" in descr
    assert "CC BY-NC-SA 4.0" in descr
    assert f"{len(tiny_lesions.frame)} images of {tiny_lesions.groups.nunique()} lesions" in descr
    for dx in DX_CLASSES:
        assert f"{dx:<6} {counts[dx]:>6,}  {DX_NAMES[dx]}" in descr


def test_blank_and_unknown_values_stay_strings_and_age_is_float(dataset):
    def edit(frame):
        frame.loc[0, ["sex", "localization", "age"]] = ["", "unknown", ""]
        frame.loc[1, ["sex", "age"]] = ["unknown", "45"]

    _edit_csv(dataset, edit)
    frame = load_ham10000(dataset).frame
    assert frame.loc[0, "sex"] == "" and frame.loc[0, "localization"] == "unknown"
    assert frame.loc[1, "sex"] == "unknown"
    assert np.isnan(frame.loc[0, "age"]) and frame.loc[1, "age"] == 45.0
    assert frame.age.dtype == float


# ------------------------------------------------------------------ dedupe


def test_dedupe_keeps_smallest_image_id_of_each_lesion(dataset, tiny_lesions):
    bunch = load_ham10000(dataset, dedupe=True)
    assert bunch.groups.is_unique
    assert set(bunch.groups) == set(tiny_lesions.groups)
    smallest = tiny_lesions.frame.groupby("lesion_id").image_id.min()
    assert (bunch.frame.image_id.to_numpy() == smallest[bunch.groups].to_numpy()).all()
    pd.testing.assert_index_equal(bunch.data.index, pd.RangeIndex(len(bunch.data)))


def test_dedupe_does_not_depend_on_csv_row_order(dataset):
    before = set(load_ham10000(dataset, dedupe=True).frame.image_id)
    shuffled = pd.read_csv(dataset / "HAM10000_metadata.csv")
    shuffled.iloc[::-1].to_csv(dataset / "HAM10000_metadata.csv", index=False)
    assert set(load_ham10000(dataset, dedupe=True).frame.image_id) == before


# ------------------------------------------------------------------ errors


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        load_ham10000(tmp_path / "nowhere")


def test_missing_csv_names_what_was_looked_for(dataset):
    (dataset / "HAM10000_metadata.csv").unlink()
    with pytest.raises(DatasetError, match="HAM10000_metadata.csv, HAM10000_metadata"):
        load_ham10000(dataset)
    with pytest.raises(DatasetError, match="other.csv"):
        load_ham10000(dataset, csv="other.csv")


def test_missing_columns_are_named_with_columns_found(dataset):
    csv = dataset / "HAM10000_metadata.csv"
    pd.read_csv(csv).drop(columns=["dx_type", "sex"]).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"\['dx_type', 'sex'\].*found \['lesion_id'"):
        load_ham10000(dataset)


def test_missing_images_report_count_first_ids_and_folders(dataset, tiny_lesions):
    gone = tiny_lesions.frame.image_id[:7].tolist()
    for image_id in gone:
        (dataset / "images" / f"{image_id}.jpg").unlink()
    with pytest.raises(DatasetError) as info:
        load_ham10000(dataset)
    message = str(info.value)
    assert "7 of 60" in message
    assert str(gone[:5]) in message and gone[5] not in message
    assert str((dataset / "images").resolve()) in message
    # without the check, the rest still loads and the missing ones get a predictable path
    bunch = load_ham10000(dataset, check_files=False)
    assert bunch.frame.path[0] == str((dataset / "images" / f"{gone[0]}.jpg").resolve())


def test_unknown_dx_is_named_with_valid_codes(dataset):
    _edit_csv(dataset, lambda f: f.__setitem__("dx", f.dx.where(f.index != 3, "melanoma")))
    with pytest.raises(DatasetError, match=r"\['melanoma'\].*'akiec', 'bcc'"):
        load_ham10000(dataset)


def test_lesion_with_two_diagnoses_is_named(dataset, tiny_lesions):
    sizes = tiny_lesions.frame.groupby("lesion_id").size()
    lesion = sizes[sizes > 1].index[0]
    rows = tiny_lesions.frame.index[tiny_lesions.frame.lesion_id == lesion]
    old = tiny_lesions.frame.dx[rows[0]]
    new = "vasc" if old != "vasc" else "nv"
    _edit_csv(dataset, lambda f: f.__setitem__("dx", f.dx.where(f.index != rows[-1], new)))
    with pytest.raises(DatasetError, match=rf"{lesion}: \['{min(old, new)}', '{max(old, new)}'\]"):
        load_ham10000(dataset)


def test_duplicated_image_id_and_bad_age_are_rejected(dataset):
    csv = dataset / "HAM10000_metadata.csv"
    original = csv.read_text()
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    pd.concat([frame, frame.iloc[[2]]]).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=frame.image_id[2]):
        load_ham10000(dataset)
    csv.write_text(original)
    _edit_csv(dataset, lambda f: f.__setitem__("age", f.age.where(f.index != 0, "forty")))
    with pytest.raises(DatasetError, match="forty"):
        load_ham10000(dataset)


@pytest.mark.parametrize("check_files", [True, False])
@pytest.mark.parametrize("image_id", [
    "../../../outside/secret", "../secret", "images/../../secret", "sub/ISIC_0000001",
    "..\\secret", "/etc/passwd", "..", ".",
])
def test_an_image_id_never_leaves_its_folder(dataset, tmp_path, image_id, check_files):
    # a file the traversal would reach, named as the id asks
    (tmp_path / "outside").mkdir(exist_ok=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "outside" / "secret.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.jpg")
    _edit_csv(dataset, lambda f: f.__setitem__("image_id", f.image_id.where(f.index != 4,
                                                                              image_id)))
    with pytest.raises(DatasetError) as info:
        load_ham10000(dataset, check_files=check_files)
    message = str(info.value)
    assert "data row 4" in message and repr(image_id) in message
    assert "plain file name" in message


def test_parse_age_is_the_rule_for_every_metadata_file():
    from skderm.datasets import parse_age

    ages = parse_age(pd.Series(["45", "", "unknown", "NaN", " 7.5"]).str.strip(), "x.csv")
    np.testing.assert_array_equal(ages, [45.0, np.nan, np.nan, np.nan, 7.5])
    with pytest.raises(DatasetError, match=r"x\.csv.*not finite non-negative.*'-3'"):
        parse_age(pd.Series(["-3"]), "x.csv")


# ------------------------------------------------------------------ make_lesions


def _file_bytes(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def test_make_lesions_is_deterministic(tmp_path):
    a = make_lesions(40, image_size=(32, 40), random_state=7, directory=tmp_path / "a")
    b = make_lesions(40, image_size=(32, 40), random_state=7, directory=tmp_path / "b")
    c = make_lesions(40, image_size=(32, 40), random_state=8, directory=tmp_path / "c")
    assert _file_bytes(a.directory) == _file_bytes(b.directory)
    assert _file_bytes(a.directory) != _file_bytes(c.directory)


def test_make_lesions_writes_the_real_layout(tiny_lesions):
    directory = Path(tiny_lesions.directory)
    header = (directory / "HAM10000_metadata.csv").read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)
    frame = tiny_lesions.frame
    assert frame.lesion_id.str.fullmatch(r"HAM_\d{7}").all()
    assert frame.image_id.str.fullmatch(r"ISIC_\d{7}").all()
    assert frame.image_id.is_unique
    assert all(Path(p).parent == directory / "images" and p.endswith(".jpg") for p in frame.path)
    with Image.open(frame.path[0]) as image:
        assert image.size == (64, 48) and image.mode == "RGB"


def test_make_lesions_is_imbalanced_like_ham10000(lesions):
    per_class = lesions.frame.drop_duplicates("lesion_id").dx.value_counts()
    assert len(lesions.frame) == 210
    assert per_class.idxmax() == "nv"
    assert per_class["nv"] >= 4 * per_class.min()
    assert per_class.min() >= 5
    # every test fold of a stratified 5-fold split over lesions sees every class
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=0)
    for _, test in cv.split(lesions.data, lesions.target, lesions.groups):
        assert set(lesions.target[test]) == set(DX_CLASSES)


def test_make_lesions_has_several_varied_images_per_lesion(lesions):
    sizes = lesions.frame.groupby("lesion_id").size()
    assert sizes.between(1, 3).all() and set(sizes) == {1, 2, 3}
    lesion = sizes[sizes > 1].index[0]
    paths = lesions.frame.path[lesions.frame.lesion_id == lesion]
    first, second = (np.asarray(Image.open(p), dtype=float) for p in paths[:2])
    assert np.abs(first - second).mean() > 1  # not copies of one image
    assert (
        lesions.frame.groupby("lesion_id")[["dx", "age", "sex", "localization"]]
        .nunique(dropna=False)
        .max()
        .max()
        == 1
    )


def test_make_lesions_options(tmp_path):
    bunch = make_lesions(
        60, n_classes=3, weights=[1, 1, 8], images_per_lesion=(2, 2), image_size=(32, 32),
        random_state=0, directory=tmp_path,
    )  # fmt: skip
    assert bunch.target_names == ["akiec", "bcc", "bkl"]
    assert (bunch.frame.groupby("lesion_id").size() == 2).all()
    assert bunch.target.value_counts().idxmax() == "bkl"


def test_make_lesions_default_directory_is_a_new_temp_folder():
    bunch = make_lesions(14, image_size=(16, 16), random_state=0)
    try:
        assert Path(bunch.directory).name.startswith("skderm_lesions_")
        assert (Path(bunch.directory) / "HAM10000_metadata.csv").is_file()
    finally:
        shutil.rmtree(bunch.directory)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_classes": 8}, "n_classes"),
        ({"n_samples": 5}, "n_samples"),
        ({"images_per_lesion": (3, 1)}, "images_per_lesion"),
        ({"weights": [1, 2]}, "weights"),
        ({"image_size": (8, 8)}, "image_size"),
    ],
)
def test_make_lesions_rejects_bad_parameters(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=name):
        make_lesions(**{"n_samples": 30, "directory": tmp_path, **kwargs})


def _colour_histogram(path) -> np.ndarray:
    hsv = np.asarray(Image.open(path).convert("HSV").reduce(2)).reshape(-1, 3).astype(int)
    hue_sat = np.bincount(hsv[:, 0] // 16 * 8 + hsv[:, 1] // 32, minlength=128)
    value = np.bincount(hsv[:, 2] // 16, minlength=16)
    return np.sqrt(np.concatenate([hue_sat, value]) / len(hsv))


def test_make_lesions_is_learnable_by_a_colour_histogram(lesions):
    X = np.array([_colour_histogram(p) for p in lesions.data.path])
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced")
    )
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=0)
    scores = cross_val_score(
        model, X, lesions.target, groups=lesions.groups, cv=cv, scoring="balanced_accuracy"
    )
    assert scores.mean() >= 0.6, scores  # chance is 1/7 = 0.14


def test_make_lesions_metadata_carries_weak_signal(lesions):
    first = lesions.frame.drop_duplicates("lesion_id")
    assert (
        first.age[first.dx == "nv"].median()
        < first.age[first.dx.isin(["akiec", "bcc", "bkl"])].median()
    )


# ------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_real_ham10000_loads(ham10000_root):
    bunch = load_ham10000(ham10000_root)
    assert len(bunch.frame) == 8012
    assert bunch.groups.nunique() == 5976
    assert bunch.target_names == list(DX_CLASSES)
    assert all(os.path.isfile(p) for p in bunch.data.path)
    assert bunch.data.age.dtype == float and bunch.data.age.isna().any()
    assert bunch.target.value_counts()["nv"] == 5364


@pytest.mark.realdata
def test_real_ham10000_dedupe(ham10000_root):
    bunch = load_ham10000(ham10000_root, dedupe=True)
    assert len(bunch.frame) == 5976
    assert bunch.groups.is_unique
