"""skderm._utils.files: atomic writes keep the old file on failure; stale temporaries go."""

import os
import subprocess
import sys

import pytest

from skderm._utils.files import atomic_write, file_digest, remove_stale_temporaries


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.bin"]
    with atomic_write(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["model.bin"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    from skderm._utils.files import _HOST

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".model.bin.skderm-tmp-{_HOST}-{dead}-0a1b"
    mine = tmp_path / f".other.skderm-tmp-{_HOST}-{os.getpid()}-0a1b"
    # another machine's writer on a shared folder: its pid says nothing here
    elsewhere = tmp_path / f".model.bin.skderm-tmp-not-{_HOST}-{dead}-0a1b"
    user = tmp_path / "notes.skderm-tmp-1"  # not ours: no leading dot
    for p in (stale, mine, elsewhere, user):
        p.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [str(stale)]
    assert mine.exists() and elsewhere.exists() and user.exists() and not stale.exists()


def test_temporaries_of_one_path_do_not_collide_and_are_flushed(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    target = tmp_path / "model.bin"
    with atomic_write(target) as first, atomic_write(target) as second:
        assert first.name != second.name  # two writers in one process, one path
        first.write(b"first")
        second.write(b"second")
    assert target.read_bytes() == b"first" and len(synced) == 2
    with atomic_write(target, durable=False) as fh:
        fh.write(b"cache")
    assert len(synced) == 2 and os.listdir(tmp_path) == ["model.bin"]


def test_file_digest_matches_hashlib(tmp_path):
    import hashlib

    p = tmp_path / "f"
    p.write_bytes(b"abc" * 1_000_000)
    assert file_digest(p) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()
    assert file_digest(p, "blake2b") == hashlib.blake2b(b"abc" * 1_000_000).hexdigest()


def test_check_output_path_refuses_inputs_data_and_wrong_kinds(tmp_path):
    from skderm._utils.paths import check_output_path
    from skderm.exceptions import OutputPathError

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    csv = data / "meta.csv"
    csv.write_text("x")
    other = tmp_path / "other.csv"
    other.write_text("y")
    with pytest.raises(OutputPathError, match="overwrite an input"):
        check_output_path(other, inputs=[other])
    with pytest.raises(OutputPathError, match="data folder"):
        check_output_path(data / "model.pt", data_folders=[data])
    with pytest.raises(OutputPathError, match="data folder"):
        check_output_path(tmp_path, kind="dir", data_folders=[data])
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_path(tmp_path, kind="file")
    with pytest.raises(OutputPathError, match="is a file"):
        check_output_path(other, kind="dir")
    assert check_output_path(tmp_path / "out" / "model.pt", inputs=[other],
                             data_folders=[data]) == (tmp_path / "out" / "model.pt").resolve()
