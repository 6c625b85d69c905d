"""fetch_ham10000: HAM10000 or the ISIC 2018 Task 3 test set, downloaded once and unpacked.

The files of the public archive (:mod:`~skderm.datasets._remote`) are
downloaded and checked (:mod:`~skderm.datasets._download`), then unpacked into
the layout :func:`~skderm.datasets.load_ham10000` reads. A cache that is
already complete is used without touching the network.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from skderm._utils.files import atomic_write
from skderm.datasets._download import download, verify_placed
from skderm.datasets._ham10000 import REQUIRED_COLUMNS, load_ham10000
from skderm.datasets._remote import DOI_URL, REGISTRY, URL_ENV, RemoteFile
from skderm.exceptions import DatasetError, DownloadError

__all__ = ["fetch_ham10000", "get_data_home", "ground_truth_to_ham"]

DATA_ENV = "SKDERM_DATA"
DEFAULT_DATA_HOME = "~/skderm_data"
_CHUNK = 1 << 20
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SUBSETS = ("train", "test")


@dataclass(frozen=True)
class _Layout:
    """Where one subset's files go under the data home, and what they become."""

    folder: str
    archives: dict[str, str]  # archive name -> folder its images are unpacked into
    table: str  # metadata table as downloaded
    table_aliases: tuple[str, ...]  # other names a table placed by hand may have
    description: str


_LAYOUTS = {
    "train": _Layout(
        folder="ham10000",
        archives={
            "HAM10000_images_part_1.zip": "HAM10000_images_part_1",
            "HAM10000_images_part_2.zip": "HAM10000_images_part_2",
        },
        table="HAM10000_metadata.csv",
        table_aliases=("HAM10000_metadata.tab", "HAM10000_metadata"),
        description="HAM10000 (training set)",
    ),
    "test": _Layout(
        folder="isic2018_test",
        archives={"ISIC2018_Task3_Test_Images.zip": "images"},
        table="ISIC2018_Task3_Test_GroundTruth.csv",
        table_aliases=("ISIC2018_Task3_Test_GroundTruth.tab", "ISIC2018_Task3_Test_GroundTruth"),
        description="ISIC 2018 Task 3 test set",
    ),
}

# The HAM10000-style table written next to the test images, so that
# load_ham10000 reads the test set exactly like the training set.
_TEST_METADATA = "HAM10000_metadata.csv"
_ONE_HOT = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Return the skderm data folder (not created here).

    Parameters
    ----------
    data_home : str or path-like or None, default=None
        Explicit folder. None uses the ``SKDERM_DATA`` environment variable,
        else ``~/skderm_data``.

    Returns
    -------
    pathlib.Path
        Absolute path of the data folder.
    """
    if data_home is None:
        data_home = os.environ.get(DATA_ENV) or DEFAULT_DATA_HOME
    return Path(data_home).expanduser().resolve()


def fetch_ham10000(
    data_home: str | os.PathLike | None = None,
    *,
    subset: str = "train",
    download_if_missing: bool = True,
    dedupe: bool = False,
    verbose: bool = True,
):
    """Load HAM10000 (or the ISIC 2018 Task 3 test set), downloading it if needed.

    Files come from the dataset's public archive on Harvard Dataverse
    (https://doi.org/10.7910/DVN/DBW86T), about 2.8 GB for ``"train"``. Each
    is checked against its published MD5, then the zips are unpacked and
    removed. Once the cache is complete no network access happens at all.

    Parameters
    ----------
    data_home : str or path-like or None, default=None
        Cache folder. None uses ``$SKDERM_DATA``, else ``~/skderm_data``. The
        training set goes to ``<data_home>/ham10000/`` (``HAM10000_metadata.csv``,
        ``HAM10000_images_part_1/``, ``HAM10000_images_part_2/``), the test set
        to ``<data_home>/isic2018_test/`` (``HAM10000_metadata.csv``,
        ``images/``, and the original ground truth file).
    subset : {"train", "test"}, default="train"
        ``"train"``: the 10,015 HAM10000 images. ``"test"``: the 1,511 official
        ISIC 2018 Task 3 test images with their published ground truth.
    download_if_missing : bool, default=True
        If False and files are missing, raise :class:`~skderm.exceptions.DownloadError`
        explaining how to place them by hand instead of downloading.
    dedupe : bool, default=False
        Passed to :func:`~skderm.datasets.load_ham10000`.
    verbose : bool, default=True
        Print progress (a plain-text bar on stderr) while downloading.

    Returns
    -------
    sklearn.utils.Bunch
        What :func:`~skderm.datasets.load_ham10000` returns for the folder.

    Raises
    ------
    DownloadError
        A file is missing and downloading is disabled or failed (HTTP error,
        no connection), or a download does not match its published checksum.

    Notes
    -----
    The test ground truth may carry no ``lesion_id`` (the one-hot ISIC
    challenge format has none). Each such image then gets its own
    ``lesion_id`` equal to its ``image_id``: grouping by lesion is then a no-op
    on the test set, which is fine for scoring but not for grouped resampling.

    Set ``SKDERM_HAM10000_URL`` to download ``<url>/<file name>`` from a mirror.
    """
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}, got {subset!r}")
    layout = _LAYOUTS[subset]
    folder = get_data_home(data_home) / layout.folder
    _prepare(layout, folder, download_if_missing=download_if_missing, verbose=verbose)
    if subset == "test":
        _ensure_test_metadata(folder, layout)

    return load_ham10000(folder, dedupe=dedupe)


# --------------------------------------------------------------------------- plan


def _prepare(layout: _Layout, folder: Path, *, download_if_missing: bool, verbose: bool) -> None:
    """Make ``folder`` hold the extracted images and the metadata table."""
    missing = _missing_files(layout, folder)
    if missing and not download_if_missing:
        raise DownloadError(
            f"{layout.description} is not complete in {folder} and downloading is "
            f"disabled (download_if_missing=False).\n" + _manual_instructions(layout, folder)
        )
    for archive, target in layout.archives.items():
        if _images_present(folder, target):
            continue
        path = folder / archive
        if path.is_file():
            verify_placed(path, _registry_entry(archive))
        else:
            download(_registry_entry(archive), path,
                     instructions=_manual_instructions(layout, folder), verbose=verbose)
        _extract_images(path, folder / target)
        path.unlink()  # the unpacked images are the cache; keeping the zip doubles it
    if not (folder / layout.table).is_file():
        alias = next((folder / a for a in layout.table_aliases if (folder / a).is_file()), None)
        if alias is not None:
            _normalise_table(alias, folder / layout.table)
        else:
            entry = _registry_entry(layout.table)
            download(entry, folder / layout.table,
                     instructions=_manual_instructions(layout, folder), verbose=verbose)


def _images_present(folder: Path, target: str) -> bool:
    # A folder that exists was renamed into place after a full extraction (or
    # put there by hand); an already-flat images/ folder is accepted as well.
    return (folder / target).is_dir() or (folder / "images").is_dir()


def _missing_files(layout: _Layout, folder: Path) -> list[str]:
    missing = [
        archive
        for archive, target in layout.archives.items()
        if not _images_present(folder, target) and not (folder / archive).is_file()
    ]
    tables = (layout.table, *layout.table_aliases)
    if not any((folder / name).is_file() for name in tables):
        missing.append(layout.table)
    return missing


def _registry_entry(name: str) -> RemoteFile:
    try:
        return REGISTRY[name]
    except KeyError:  # only reachable if REGISTRY was edited
        raise DownloadError(f"no download entry for {name!r} in skderm.datasets._remote.REGISTRY") from None


def _manual_instructions(layout: _Layout, folder: Path) -> str:
    names = "\n".join(f"  - {name}" for name in (*layout.archives, layout.table))
    extracted = ", ".join(f"{target}/" for target in layout.archives.values())
    stem = Path(layout.table).stem
    return (
        f"To place the files by hand, download them from {DOI_URL} (Harvard Dataverse):\n"
        f"{names}\n"
        f"(Dataverse lists the table as {stem}.tab; its 'Original File Format' download "
        f"is {layout.table}, and the .tab form is accepted too.)\n"
        f"Put them, unchanged, in:\n  {folder}{os.sep}\n"
        f"then call fetch_ham10000 again: it checks the checksums and unpacks the zips. "
        f"Already-extracted image folders ({extracted}) are accepted in place of the zips. "
        f"To download from a mirror instead, set {URL_ENV} to a URL that serves these "
        f"file names."
    )



# ------------------------------------------------------------------------ unpack


def _extract_images(archive: Path, target: Path) -> None:
    """Unpack every image of ``archive`` flat into ``target``, atomically.

    The images go to a hidden sibling folder first and are renamed into place
    at the end, so ``target`` existing always means a complete extraction.
    Folders inside the zip, macOS resource forks and non-image files (licence
    texts) are dropped; only base names are used, so no member can escape.
    """
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        count = 0
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                member = PurePosixPath(info.filename.replace("\\", "/"))
                if (
                    info.is_dir()
                    or "__MACOSX" in member.parts
                    or member.name.startswith(".")
                    or member.suffix.lower() not in _IMAGE_SUFFIXES
                ):
                    continue
                out = staging / member.name
                if out.exists():
                    raise DownloadError(f"{archive} holds two images named {member.name!r}")
                with bundle.open(info) as source, open(out, "wb") as sink:
                    shutil.copyfileobj(source, sink, _CHUNK)
                count += 1
        if count == 0:
            raise DownloadError(f"{archive} contains no images ({', '.join(_IMAGE_SUFFIXES)})")
    except zipfile.BadZipFile as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(
            f"{archive} is not a valid zip archive ({exc}): delete it and call "
            f"fetch_ham10000 again."
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(staging, target)


def _read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Dataverse's tab-separated conversion of it."""
    with open(path, encoding="utf-8-sig") as handle:
        header = handle.readline()
    separator = "\t" if "\t" in header else ","
    return pd.read_csv(path, sep=separator, encoding="utf-8-sig")


def _write_csv(frame: pd.DataFrame, dest: Path) -> None:
    with atomic_write(dest) as handle:
        handle.write(frame.to_csv(index=False).encode("utf-8"))


def _normalise_table(source: Path, dest: Path) -> None:
    """Rewrite a hand-placed table (.tab or no extension) as the CSV expected."""
    _write_csv(_read_table(source), dest)


# -------------------------------------------------------------------- test set


def _ensure_test_metadata(folder: Path, layout: _Layout) -> None:
    """Write the HAM10000-style table of the test set once, next to its images."""
    dest = folder / _TEST_METADATA
    if not dest.is_file():
        _write_csv(ground_truth_to_ham(_read_table(folder / layout.table)), dest)


def ground_truth_to_ham(table: pd.DataFrame) -> pd.DataFrame:
    """Turn an ISIC 2018 Task 3 ground-truth table into HAM10000's metadata columns.

    Parameters
    ----------
    table : pandas.DataFrame
        Either the HAM10000-style table Dataverse publishes (``image_id``,
        ``dx``, optionally ``lesion_id``, ``dx_type``, ``age``, ``sex``,
        ``localization``) or the challenge's one-hot format (``image`` and
        ``MEL, NV, BCC, AKIEC, BKL, DF, VASC``).

    Returns
    -------
    pandas.DataFrame
        Columns ``lesion_id, image_id, dx, dx_type, age, sex, localization``
        then any other columns of ``table``. A missing ``lesion_id`` is
        replaced by the ``image_id`` (each image its own lesion); missing
        ``dx_type``/``sex``/``localization`` become ``"unknown"``, a missing
        ``age`` NaN.

    Raises
    ------
    DatasetError
        Neither a ``dx`` column nor the one-hot columns are present, or a
        one-hot row does not mark exactly one class.
    """
    columns = {str(c).strip().lower(): c for c in table.columns}
    image_col = columns.get("image_id", columns.get("image"))
    if image_col is None:
        raise DatasetError(
            f"the ground truth has no image_id or image column; columns: {list(table.columns)}"
        )
    image_id = table[image_col].astype(str).str.strip()
    if "dx" in columns:
        dx = table[columns["dx"]].astype(str).str.strip().str.lower()
    elif all(name.lower() in columns for name in _ONE_HOT):
        dx = _dx_from_one_hot(table, columns, image_id)
    else:
        raise DatasetError(
            f"the ground truth has neither a dx column nor the one-hot columns "
            f"{', '.join(_ONE_HOT)}; columns: {list(table.columns)}"
        )
    out = pd.DataFrame({"image_id": image_id, "dx": dx})
    lesion = (
        table[columns["lesion_id"]] if "lesion_id" in columns else pd.Series(np.nan, table.index)
    )
    out["lesion_id"] = lesion.where(lesion.notna(), image_id).astype(str)
    out["age"] = (
        pd.to_numeric(table[columns["age"]], errors="coerce") if "age" in columns else np.nan
    )
    for name in ("dx_type", "sex", "localization"):
        out[name] = table[columns[name]].fillna("unknown") if name in columns else "unknown"
    used = {image_col, *(columns.get(c) for c in (*REQUIRED_COLUMNS, *(h.lower() for h in _ONE_HOT)))}
    extra = [c for c in table.columns if c not in used]
    return pd.concat([out[list(REQUIRED_COLUMNS)], table[extra]], axis=1)


def _dx_from_one_hot(table: pd.DataFrame, columns: dict, image_id: pd.Series) -> pd.Series:
    scores = table[[columns[name.lower()] for name in _ONE_HOT]].astype(float)
    scores.columns = [name.lower() for name in _ONE_HOT]
    marked = (scores > 0.5).sum(axis=1)
    bad = image_id[marked != 1]
    if len(bad):
        raise DatasetError(
            f"{len(bad)} ground-truth rows do not mark exactly one of "
            f"{', '.join(_ONE_HOT)}, e.g. {list(bad[:3])}"
        )
    return scores.idxmax(axis=1)
