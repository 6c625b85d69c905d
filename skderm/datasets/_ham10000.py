"""load_ham10000: a local copy of HAM10000 (metadata CSV plus images) into a Bunch.

The CSV is read as text and checked row by row (labels, ages, one diagnosis per
lesion, image ids that are plain file names); images are found in any of the
layouts the dataset is distributed in.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from skderm.exceptions import DatasetError

__all__ = [
    "DX_CLASSES",
    "DX_NAMES",
    "FEATURE_NAMES",
    "REQUIRED_COLUMNS",
    "load_ham10000",
    "parse_age",
]

DX_CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")

DX_NAMES: dict[str, str] = {
    "akiec": "actinic keratoses and intraepithelial carcinoma / Bowen's disease",
    "bcc": "basal cell carcinoma",
    "bkl": "benign keratosis-like lesions",
    "df": "dermatofibroma",
    "mel": "melanoma",
    "nv": "melanocytic nevi",
    "vasc": "vascular lesions",
}

METADATA_NAMES = ("HAM10000_metadata.csv", "HAM10000_metadata")
REQUIRED_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
FEATURE_NAMES = ["path", "lesion_id", "age", "sex", "localization"]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# sub-folders holding images, in the order they are searched (lower-cased names)
IMAGE_FOLDERS = ("ham10000_images_part_1", "ham10000_images_part_2", "images")

# Images per class in the full 10,015-image HAM10000 release (Tschandl et al. 2018).
HAM10000_COUNTS = {
    "akiec": 327,
    "bcc": 514,
    "bkl": 1099,
    "df": 115,
    "mel": 1113,
    "nv": 6705,
    "vasc": 142,
}


def load_ham10000(
    root: str | os.PathLike,
    *,
    dedupe: bool = False,
    csv: str | os.PathLike | None = None,
    check_files: bool = True,
) -> Bunch:
    """Load a local copy of HAM10000 (ISIC 2018 Task 3 training set).

    Parameters
    ----------
    root : str or path-like
        Folder holding ``HAM10000_metadata.csv`` (or ``HAM10000_metadata``)
        and the images. Images are found in ``HAM10000_images_part_1/`` and
        ``HAM10000_images_part_2/`` (the official release; lower-case spelling
        as in the Kaggle copy also works), in ``images/``, or beside the CSV,
        as ``.jpg``, ``.jpeg`` or ``.png`` in any letter case. When an image is
        in several of these places, the first in that order wins.
    dedupe : bool, default=False
        Keep one image per lesion: the one with the smallest ``image_id``
        (sorted as strings), so the choice is the same on every machine. Rows
        keep their order in the CSV.
    csv : str or path-like, default=None
        Metadata file to read instead of the default names: a file name inside
        ``root`` or a path.
    check_files : bool, default=True
        Fail when a listed image is not on disk. With ``False``, an image that
        is not found gets the path ``<first image folder>/<image_id>.jpg``.

    Returns
    -------
    bunch : :class:`~sklearn.utils.Bunch`
        ``frame`` (metadata plus ``path``), ``data`` (columns
        ``path, lesion_id, age, sex, localization``), ``target`` (``dx``),
        ``groups`` (``lesion_id``), ``target_names`` (classes present,
        sorted), ``feature_names`` and ``DESCR``. All share a RangeIndex.

    Raises
    ------
    DatasetError
        When ``root`` or the CSV is missing, the CSV lists no images, a
        required column is absent or appears twice, a value is invalid
        (unknown ``dx``, an age that is not a finite non-negative number, a
        lesion with two diagnoses, duplicated ``image_id``) or listed images
        are not on disk.
    """
    root, csv_path = _resolve_paths(root, csv)
    frame = _read_metadata(csv_path)
    _check_labels(frame, csv_path)

    folders = _image_folders(root, csv_path.parent)
    index = _index_images(folders)
    frame["path"] = _image_paths(frame["image_id"], index, folders, csv_path, check_files)

    if dedupe:
        frame = _dedupe(frame)
    return _to_bunch(frame)


def _resolve_paths(root, csv) -> tuple[Path, Path]:
    root = Path(root).expanduser()
    if root.is_file() and csv is None:
        # a path to the CSV itself is an obvious intent: accept it
        root, csv = root.parent, root
    if not root.is_dir():
        raise DatasetError(
            f"HAM10000 folder {str(root)!r} does not exist: pass the folder that holds "
            "HAM10000_metadata.csv and the images, or download it with fetch_ham10000()"
        )
    root = root.resolve()
    if csv is not None:
        csv_path = Path(csv).expanduser()
        if not csv_path.is_absolute() and not csv_path.is_file():
            csv_path = root / csv_path
        if not csv_path.is_file():
            raise DatasetError(
                f"metadata file {str(csv)!r} not found in {str(root)!r} or as a path"
            )
        return root, csv_path.resolve()
    for name in METADATA_NAMES:
        if (root / name).is_file():
            return root, root / name
    raise DatasetError(
        f"no metadata CSV in {str(root)!r}: looked for {', '.join(METADATA_NAMES)}; "
        "pass csv='your_file.csv' if it has another name"
    )


def _read_metadata(csv_path: Path) -> pd.DataFrame:
    # Everything as text so that empty or "unknown" sex/localization stay strings;
    # only age becomes a number.
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"cannot read metadata CSV {str(csv_path)!r}: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    # " age" and "age" become one name once trimmed: which one is meant is a guess
    twice = sorted({c for c in frame.columns[frame.columns.duplicated()] if c in REQUIRED_COLUMNS})
    if twice:
        raise DatasetError(
            f"metadata CSV {str(csv_path)!r} has several columns named {twice} (spaces "
            f"around names are ignored); found {list(frame.columns)}; keep one of each"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"metadata CSV {str(csv_path)!r} lacks required column(s) {missing}; "
            f"found {list(frame.columns)}; expected {list(REQUIRED_COLUMNS)}"
        )
    if frame.empty:
        raise DatasetError(
            f"metadata CSV {str(csv_path)!r} has a header but no rows: it lists no images"
        )
    extra = [c for c in frame.columns if c not in REQUIRED_COLUMNS and c != "path"]
    frame = frame[list(REQUIRED_COLUMNS) + extra].copy()
    for column in REQUIRED_COLUMNS:
        frame[column] = frame[column].str.strip()
    frame["dx"] = frame["dx"].str.lower()
    frame["age"] = parse_age(frame["age"], csv_path)
    return frame.reset_index(drop=True)


def parse_age(ages: pd.Series, source: str | os.PathLike) -> pd.Series:
    """Ages from a metadata column read as text: float, NaN where blank or ``"unknown"``.

    The one rule for every CSV skderm reads (the training metadata and the
    ``--metadata`` of ``skderm predict``).

    Parameters
    ----------
    ages : pandas.Series of str
        The ``age`` column, as text.
    source : str or path-like
        The file it came from, named in errors.

    Raises
    ------
    DatasetError
        A value is not a number, or not a finite non-negative one.
    """
    text = ages
    blank = text.str.lower().isin(["", "nan", "na", "unknown"])
    age = pd.to_numeric(text.where(~blank), errors="coerce").astype(float)
    bad = age.isna() & ~blank
    if bad.any():
        values = sorted(set(text[bad]))[:5]
        raise DatasetError(
            f"{int(bad.sum())} age value(s) in {str(source)!r} are not numbers, e.g. {values}; "
            "leave missing ages empty"
        )
    # "inf", "1e400" and "-3" parse as numbers but are no age; the metadata
    # encoder would fail on them much later, far from the CSV
    impossible = ~np.isfinite(age.fillna(0)) | (age < 0)
    if impossible.any():
        values = sorted(set(text[impossible]))[:5]
        raise DatasetError(
            f"{int(impossible.sum())} age value(s) in {str(source)!r} are not finite "
            f"non-negative numbers, e.g. {values}; fix them or leave them empty"
        )
    return age


def _check_labels(frame: pd.DataFrame, csv_path: Path) -> None:
    for column in ("lesion_id", "image_id", "dx"):
        empty = frame[column] == ""
        if empty.any():
            rows = list(frame.index[empty][:5])
            raise DatasetError(
                f"{int(empty.sum())} row(s) of {str(csv_path)!r} have an empty {column} "
                f"(first data rows {rows}); fill or drop them"
            )
    _check_image_ids(frame["image_id"], csv_path)
    unknown = sorted(set(frame["dx"]) - set(DX_CLASSES))
    if unknown:
        raise DatasetError(
            f"unknown dx code(s) {unknown} in {str(csv_path)!r}; valid codes are {list(DX_CLASSES)}"
        )
    duplicated = frame["image_id"][frame["image_id"].duplicated()]
    if len(duplicated):
        raise DatasetError(
            f"{len(duplicated)} image_id(s) listed twice in {str(csv_path)!r}, e.g. "
            f"{sorted(set(duplicated))[:5]}; each image must appear once"
        )
    codes = frame.groupby("lesion_id", sort=True)["dx"].unique()
    mixed = codes[codes.map(len) > 1]
    if len(mixed):
        shown = "; ".join(f"{lesion}: {sorted(dx)}" for lesion, dx in mixed.head(5).items())
        raise DatasetError(
            f"{len(mixed)} lesion(s) have more than one diagnosis in {str(csv_path)!r} "
            f"({shown}); a lesion has one dx: fix the lesion_id or the dx"
        )


def _is_file_name(image_id: str) -> bool:
    """Whether ``image_id`` names a file inside a folder: no folder part, never ``..``."""
    return not (
        "/" in image_id or "\\" in image_id or "\x00" in image_id
        or image_id in (".", "..") or os.path.isabs(image_id)
        or os.path.splitdrive(image_id)[0]
    )


def _check_image_ids(image_ids: pd.Series, csv_path: Path) -> None:
    # an id is joined to an image folder: "../x", "/etc/x" or "sub/x" would
    # leave it, and fit would read whatever file that names
    bad = ~image_ids.map(_is_file_name).astype(bool)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DatasetError(
            f"data row {row} of {str(csv_path)!r} has image_id {image_ids.iloc[row]!r}, "
            f"which is not a plain file name ({int(bad.sum())} such row(s)); an image_id "
            "names a file inside the image folders: give the file name without folders"
        )


def _image_folders(root: Path, csv_dir: Path) -> list[Path]:
    """Folders that may hold images, in search order."""
    subfolders = []
    with os.scandir(root) as entries:
        for entry in entries:
            name = entry.name.lower()
            if name in IMAGE_FOLDERS and entry.is_dir():
                # the official spelling before the Kaggle lower-case copy
                subfolders.append((IMAGE_FOLDERS.index(name), entry.name == name, entry.name))
    folders = [root / name for *_, name in sorted(subfolders)]
    for beside in (root, csv_dir):
        if beside not in folders:
            folders.append(beside)
    return folders


def _index_images(folders: list[Path]) -> dict[str, str]:
    """Map image stem -> absolute path, one scandir per folder (no per-image stat)."""
    index: dict[str, str] = {}
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in entries:
                stem, ext = os.path.splitext(entry.name)
                if ext.lower() in IMAGE_EXTENSIONS and stem not in index and entry.is_file():
                    index[stem] = os.path.join(str(folder), entry.name)
    return index


def _image_paths(image_ids, index, folders, csv_path, check_files) -> list[str]:
    stems = [_strip_extension(image_id) for image_id in image_ids]
    missing = [
        image_id for image_id, stem in zip(image_ids, stems, strict=True) if stem not in index
    ]
    if missing and check_files:
        looked = ", ".join(str(f) for f in folders)
        raise DatasetError(
            f"{len(missing)} of {len(stems)} images listed in {csv_path.name} are not on disk, "
            f"first: {missing[:5]}; looked for .jpg/.jpeg/.png in: {looked}. "
            "Put the images there, or pass check_files=False"
        )
    fallback = str(folders[0])
    return [index.get(stem) or os.path.join(fallback, stem + ".jpg") for stem in stems]


def _strip_extension(image_id: str) -> str:
    stem, ext = os.path.splitext(image_id)
    return stem if ext.lower() in IMAGE_EXTENSIONS else image_id


def _dedupe(frame: pd.DataFrame) -> pd.DataFrame:
    first = frame.sort_values("image_id", kind="stable").drop_duplicates("lesion_id")
    return frame.loc[sorted(first.index)].reset_index(drop=True)


def _to_bunch(frame: pd.DataFrame) -> Bunch:
    frame = frame.reset_index(drop=True)
    target = frame["dx"].rename("dx")
    return Bunch(
        frame=frame,
        data=frame[FEATURE_NAMES].copy(),
        target=target,
        groups=frame["lesion_id"].rename("lesion_id"),
        target_names=sorted(target.unique()),
        feature_names=list(FEATURE_NAMES),
        DESCR=_describe(frame),
    )


def _describe(frame: pd.DataFrame) -> str:
    counts = frame["dx"].value_counts()
    lines = [
        "HAM10000 dermatoscopic images (ISIC 2018 Task 3)",
        "================================================",
        "",
        f"{len(frame):,} images of {frame['lesion_id'].nunique():,} lesions, "
        f"{len(counts)} classes:",
    ]
    for dx in DX_CLASSES:
        if dx in counts:
            lines.append(f"  {dx:<6} {counts[dx]:>6,}  {DX_NAMES[dx]}")
    lines += [
        "",
        "Several images may show the same lesion: split by lesion_id (groups).",
        "",
        "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection",
        "of multi-source dermatoscopic images of common pigmented skin lesions.",
        "Sci Data 5, 180161 (2018). doi:10.1038/sdata.2018.161",
        "",
        "Licence: CC BY-NC-SA 4.0 (attribution, non-commercial, share-alike).",
    ]
    return "\n".join(lines)
