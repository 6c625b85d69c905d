"""fetch_ham10000 against a local HTTP server: no internet is used.

The server serves small archives built here (a few synthetic JPEGs and a
metadata table); ``SKDERM_HAM10000_URL`` points the downloader at it and the
registry is patched with checksums computed from those bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skderm.datasets import (
    _download,
    _fetch,
    _remote,
    fetch_ham10000,
    get_data_home,
    ground_truth_to_ham,
)
from skderm.datasets._ham10000 import REQUIRED_COLUMNS
from skderm.datasets._remote import RemoteFile
from skderm.exceptions import DatasetError, DownloadError

PART_1 = "HAM10000_images_part_1.zip"
PART_2 = "HAM10000_images_part_2.zip"
METADATA = "HAM10000_metadata.csv"
TEST_IMAGES = "ISIC2018_Task3_Test_Images.zip"
TEST_TRUTH = "ISIC2018_Task3_Test_GroundTruth.csv"

# image_id -> (lesion_id, dx); lesions span both parts, as in HAM10000
TRAIN = {
    "ISIC_0024306": ("HAM_0000001", "nv"),
    "ISIC_0024307": ("HAM_0000001", "nv"),
    "ISIC_0024308": ("HAM_0000002", "mel"),
    "ISIC_0029000": ("HAM_0000002", "mel"),
    "ISIC_0029001": ("HAM_0000003", "bkl"),
    "ISIC_0029002": ("HAM_0000004", "vasc"),
}
TEST = {"ISIC_0034524": "nv", "ISIC_0034525": "mel", "ISIC_0034526": "df"}


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def _build_files() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Archives as served, and every image's bytes by image_id."""
    images = {image_id: _jpeg(k) for k, image_id in enumerate([*TRAIN, *TEST])}
    ids = list(TRAIN)
    metadata = pd.DataFrame(
        {
            "lesion_id": [TRAIN[i][0] for i in ids],
            "image_id": ids,
            "dx": [TRAIN[i][1] for i in ids],
            "dx_type": "histo",
            "age": [45.0, 45.0, 70.0, 70.0, np.nan, 30.0],
            "sex": ["male", "male", "female", "female", "unknown", "male"],
            "localization": "back",
            "dataset": "vidir_modern",  # the Dataverse file has this 8th column
        }
    )
    truth = pd.DataFrame({"image": list(TEST)})
    for name in ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"):
        truth[name] = [1.0 if dx == name.lower() else 0.0 for dx in TEST.values()]
    test_members = {f"ISIC2018_Task3_Test_Images/{i}.jpg": images[i] for i in TEST}
    test_members["ISIC2018_Task3_Test_Images/LICENSE.txt"] = b"CC BY-NC"
    test_members["__MACOSX/ISIC2018_Task3_Test_Images/._ISIC_0034524.jpg"] = b"junk"
    files = {
        PART_1: _zip({f"{i}.jpg": images[i] for i in ids[:3]}),
        PART_2: _zip({f"{i}.jpg": images[i] for i in ids[3:]}),
        METADATA: metadata.to_csv(index=False).encode(),
        TEST_IMAGES: _zip(test_members),
        TEST_TRUTH: truth.to_csv(index=False).encode(),
    }
    return files, images


@dataclass
class _State:
    files: dict[str, bytes]
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    ignore_range: bool = False
    truncate_once: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``state.files`` by name, honouring ``Range: bytes=N-`` unless told not to."""

    def do_GET(self):  # noqa: N802 - the http.server API
        state: _State = self.server.state
        name = unquote(self.path.split("?")[0].lstrip("/"))
        requested = self.headers.get("Range")
        with state.lock:
            state.requests.append((name, requested))
            truncate = name in state.truncate_once
            state.truncate_once.discard(name)
        body = state.files.get(name)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", requested or "")
        if match and not state.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        # a dropped connection: announce everything, send half, close
        self.wfile.write(payload[: len(payload) // 2] if truncate else payload)

    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def built():
    return _build_files()


@pytest.fixture
def server(built):
    files, _ = built
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State(files=dict(files))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mirror(server, built, monkeypatch, tmp_path):
    """Point the downloader at the local server, with checksums of the served bytes."""
    files, _ = built
    host, port = server.server_address
    monkeypatch.setenv(_remote.URL_ENV, f"http://{host}:{port}")
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.delenv(_fetch.DATA_ENV, raising=False)
    monkeypatch.setattr(_download, "TIMEOUT", 5.0)
    for name, data in files.items():
        entry = RemoteFile(name, None, hashlib.md5(data).hexdigest(), size=len(data))
        monkeypatch.setitem(_remote.REGISTRY, name, entry)
    return server.state


def _names(state: _State) -> list[str]:
    return [name for name, _ in state.requests]


def test_download_extracts_and_returns_ham10000_bunch(mirror, built, tmp_path):
    _, images = built
    bunch = fetch_ham10000(tmp_path, verbose=False)

    folder = tmp_path / "ham10000"
    assert sorted(_names(mirror)) == sorted([PART_1, PART_2, METADATA])
    assert sorted(bunch.frame["image_id"]) == sorted(TRAIN)
    assert list(bunch.target) == [TRAIN[i][1] for i in bunch.frame["image_id"]]
    assert list(bunch.groups) == [TRAIN[i][0] for i in bunch.frame["image_id"]]
    for image_id, path in zip(bunch.frame["image_id"], bunch.data["path"], strict=True):
        assert Path(path).parent.parent == folder
        assert Path(path).read_bytes() == images[image_id]
    assert (folder / "HAM10000_images_part_1" / "ISIC_0024306.jpg").is_file()
    assert (folder / "HAM10000_images_part_2" / "ISIC_0029002.jpg").is_file()
    # archives are removed once unpacked, and nothing half-written is left
    leftovers = [p.name for p in folder.iterdir() if p.suffix in {".zip", ".part", ".partial"}]
    assert leftovers == []
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_complete_cache_makes_no_request(mirror, tmp_path):
    first = fetch_ham10000(tmp_path, verbose=False)
    seen = len(mirror.requests)
    assert seen == 3

    second = fetch_ham10000(tmp_path, verbose=False)
    third = fetch_ham10000(tmp_path, download_if_missing=False, verbose=False)
    assert len(mirror.requests) == seen
    pd.testing.assert_frame_equal(first.frame, second.frame)
    pd.testing.assert_frame_equal(first.frame, third.frame)


def test_data_home_defaults_to_environment_variable(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(_fetch.DATA_ENV, str(tmp_path / "from_env"))
    assert get_data_home() == (tmp_path / "from_env").resolve()
    bunch = fetch_ham10000(verbose=False)
    assert all(p.startswith(str(tmp_path / "from_env" / "ham10000")) for p in bunch.data["path"])


@pytest.mark.parametrize("ignore_range", [False, True], ids=["range", "range-ignored"])
def test_resume_from_half_written_part(mirror, built, tmp_path, ignore_range):
    files, images = built
    mirror.ignore_range = ignore_range
    folder = tmp_path / "ham10000"
    folder.mkdir()
    half = len(files[PART_1]) // 2
    (folder / f"{PART_1}.part").write_bytes(files[PART_1][:half])

    bunch = fetch_ham10000(tmp_path, verbose=False)

    assert (PART_1, f"bytes={half}-") in mirror.requests
    # the other files had no .part, so no Range was asked for them
    assert all(rng is None for name, rng in mirror.requests if name != PART_1)
    assert not (folder / f"{PART_1}.part").exists()
    for image_id, path in zip(bunch.frame["image_id"], bunch.data["path"], strict=True):
        assert Path(path).read_bytes() == images[image_id]


def test_interrupted_transfer_keeps_part_and_next_call_resumes(mirror, built, tmp_path):
    files, _ = built
    mirror.truncate_once.add(PART_2)
    part = tmp_path / "ham10000" / f"{PART_2}.part"

    with pytest.raises(DownloadError, match="resume") as excinfo:
        fetch_ham10000(tmp_path, verbose=False)
    assert PART_2 in str(excinfo.value)
    kept = part.stat().st_size
    assert 0 < kept < len(files[PART_2])

    bunch = fetch_ham10000(tmp_path, verbose=False)
    assert (PART_2, f"bytes={kept}-") in mirror.requests
    assert sorted(bunch.frame["image_id"]) == sorted(TRAIN)


def test_checksum_mismatch_raises_and_removes_part(mirror, built, tmp_path, monkeypatch):
    files, _ = built
    wrong = "0" * 32
    got = hashlib.md5(files[PART_1]).hexdigest()
    monkeypatch.setitem(_remote.REGISTRY, PART_1, RemoteFile(PART_1, None, wrong))

    with pytest.raises(DownloadError) as excinfo:
        fetch_ham10000(tmp_path, verbose=False)

    message = str(excinfo.value)
    assert PART_1 in message and wrong in message and got in message
    folder = tmp_path / "ham10000"
    assert not (folder / f"{PART_1}.part").exists()
    assert not (folder / PART_1).exists()
    assert not (folder / "HAM10000_images_part_1").exists()


def test_unknown_checksum_still_downloads_and_says_so(mirror, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(_remote.REGISTRY, PART_1, RemoteFile(PART_1, None, None))
    with caplog.at_level("WARNING", logger=_download.__name__):
        bunch = fetch_ham10000(tmp_path, verbose=False)
    assert len(bunch.frame) == len(TRAIN)
    assert any(PART_1 in r.getMessage() and "checksum" in r.getMessage() for r in caplog.records)


def test_offline_empty_cache_explains_how_to_place_files(mirror, tmp_path):
    with pytest.raises(DownloadError) as excinfo:
        fetch_ham10000(tmp_path, download_if_missing=False, verbose=False)

    message = str(excinfo.value)
    for expected in (PART_1, PART_2, METADATA, "https://doi.org/10.7910/DVN/DBW86T"):
        assert expected in message
    assert str(tmp_path / "ham10000") in message
    assert mirror.requests == []


def test_files_placed_by_hand_are_used_offline(mirror, built, tmp_path):
    files, _ = built
    folder = tmp_path / "ham10000"
    folder.mkdir()
    for name in (PART_1, PART_2):
        (folder / name).write_bytes(files[name])
    # Dataverse's tab-separated conversion, saved under its listed name
    table = pd.read_csv(io.BytesIO(files[METADATA]))
    table.to_csv(folder / "HAM10000_metadata.tab", sep="\t", index=False)

    bunch = fetch_ham10000(tmp_path, download_if_missing=False, verbose=False)

    assert mirror.requests == []
    assert sorted(bunch.frame["image_id"]) == sorted(TRAIN)
    assert bunch.frame.loc[bunch.frame["image_id"] == "ISIC_0029001", "age"].isna().all()


def test_corrupt_archive_placed_by_hand_is_reported_not_deleted(mirror, tmp_path):
    folder = tmp_path / "ham10000"
    folder.mkdir()
    (folder / PART_1).write_bytes(b"not the archive")
    with pytest.raises(DownloadError, match="does not match the published checksum"):
        fetch_ham10000(tmp_path, verbose=False)
    assert (folder / PART_1).exists()


def test_http_404_names_url_and_status(mirror, tmp_path):
    del mirror.files[PART_2]
    with pytest.raises(DownloadError) as excinfo:
        fetch_ham10000(tmp_path, verbose=False)
    message = str(excinfo.value)
    assert "404" in message
    assert f"{os.environ[_remote.URL_ENV]}/{PART_2}" in message


def test_unreachable_server_names_url(mirror, tmp_path, monkeypatch, server):
    host, port = server.server_address
    server.shutdown()
    server.server_close()
    with pytest.raises(DownloadError, match=rf"could not connect to http://{host}:{port}/"):
        fetch_ham10000(tmp_path, verbose=False)


def test_progress_bar_on_stderr_only_when_verbose(mirror, tmp_path, capfd):
    fetch_ham10000(tmp_path / "quiet", verbose=False)
    quiet = capfd.readouterr()
    assert quiet.err == "" and quiet.out == ""

    fetch_ham10000(tmp_path / "loud", verbose=True)
    loud = capfd.readouterr()
    assert loud.out == ""
    assert f"\r{PART_1} [" in loud.err and "100.0%" in loud.err


def test_test_subset_from_one_hot_ground_truth(mirror, built, tmp_path):
    _, images = built
    bunch = fetch_ham10000(tmp_path, subset="test", verbose=False)

    folder = tmp_path / "isic2018_test"
    assert sorted(_names(mirror)) == sorted([TEST_IMAGES, TEST_TRUTH])
    assert dict(zip(bunch.frame["image_id"], bunch.target, strict=True)) == TEST
    # no lesion_id in the one-hot format: each image is its own lesion
    assert list(bunch.groups) == list(bunch.frame["image_id"])
    assert sorted(p.name for p in (folder / "images").iterdir()) == sorted(f"{i}.jpg" for i in TEST)
    for image_id, path in zip(bunch.frame["image_id"], bunch.data["path"], strict=True):
        assert Path(path).read_bytes() == images[image_id]
    assert not (tmp_path / "ham10000").exists()

    fetch_ham10000(tmp_path, subset="test", verbose=False)
    assert len(mirror.requests) == 2


def test_invalid_subset_names_choices(tmp_path):
    with pytest.raises(ValueError, match=r"subset must be one of \('train', 'test'\), got 'val'"):
        fetch_ham10000(tmp_path, subset="val")


def test_ground_truth_in_ham_format_keeps_its_columns():
    table = pd.DataFrame(
        {
            "lesion_id": ["HAM_1", "HAM_1", None],
            "image_id": ["ISIC_1", "ISIC_2", "ISIC_3"],
            "dx": ["MEL", "mel", "bcc"],
            "dx_type": ["histo", "histo", "histo"],
            "age": [50, 50, None],
            "sex": ["male", "male", None],
            "localization": ["back", "back", "face"],
            "dataset": ["vienna", "vienna", "rosendahl"],
        }
    )
    out = ground_truth_to_ham(table)
    assert list(out.columns) == [*REQUIRED_COLUMNS, "dataset"]
    assert list(out["dx"]) == ["mel", "mel", "bcc"]
    assert list(out["lesion_id"]) == ["HAM_1", "HAM_1", "ISIC_3"]
    assert list(out["sex"]) == ["male", "male", "unknown"]
    assert out["age"].isna().tolist() == [False, False, True]


def test_one_hot_row_without_single_class_is_rejected():
    table = pd.DataFrame({"image": ["ISIC_1", "ISIC_2"]})
    for name in ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"):
        table[name] = 0.0
    table.loc[0, "MEL"] = 1.0
    with pytest.raises(DatasetError, match="ISIC_2"):
        ground_truth_to_ham(table)
