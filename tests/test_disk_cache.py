"""The opt-in disk cache of decoded images, content keys, and streaming passes.

Covers ``skderm.images.set_cache_dir`` / ``SKDERM_CACHE_DIR`` (entries named by
content, atomic writes, corrupt entries, unwritable folders, the data folder
left untouched), the in-memory cache modes used by single-use passes, and
``BackboneFeatures``: streaming in chunks and embeddings keyed by content.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skderm import features, images
from skderm.exceptions import ImageError, OutputPathError
from skderm.images import cache_info, clear_cache, load_images, read_image

SIZE = (12, 16)


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test starts with empty caches and no disk cache, and leaves it so."""
    before = images.get_cache_dir()
    clear_cache()
    features.clear_embedding_cache()
    images.set_cache_dir(None)
    yield
    images.set_cache_dir(before)
    clear_cache()
    features.clear_embedding_cache()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """Five distinct JPEGs in their own folder (the user's data)."""
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((30, 40, 3), 40 * i, np.uint8)).save(
            folder / f"ISIC_{i:07d}.jpg", quality=95)
    return folder


def _paths(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.jpg"))


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.rgb"))


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


def _no_decoding(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("decoded a file the disk cache should have served")

    monkeypatch.setattr(images._load, "decode", refuse)


# ---------------------------------------------------------------------------
# the disk cache
# ---------------------------------------------------------------------------


def test_a_new_process_reads_the_disk_instead_of_decoding(data_dir, tmp_path, monkeypatch):
    cache = images.set_cache_dir(tmp_path / "cache")
    paths = _paths(data_dir)
    first = load_images(paths, SIZE)
    info = cache_info()
    assert (info.disk_hits, info.disk_misses, info.misses) == (0, 5, 5)
    assert info.disk_dir == str(cache)
    assert len(_entries(cache)) == 5
    clear_cache()  # what a new process starts with
    _no_decoding(monkeypatch)
    again = load_images(paths, SIZE)
    assert cache_info().disk_hits == 5
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        assert b.shape == (*SIZE, 3) and b.dtype == np.uint8 and not b.flags.writeable


def test_disk_entries_equal_a_direct_decode(data_dir, tmp_path):
    images.set_cache_dir(tmp_path / "cache")
    paths = _paths(data_dir)
    load_images(paths, SIZE)
    clear_cache()
    for path, arr in zip(paths, load_images(paths, SIZE), strict=True):
        np.testing.assert_array_equal(arr, read_image(path, SIZE))
    assert cache_info().disk_hits == 5


def test_nothing_is_written_into_the_data_folder(data_dir, tmp_path):
    before = _listing(data_dir)
    load_images(_paths(data_dir), SIZE)  # memory only
    images.set_cache_dir(tmp_path / "cache")
    clear_cache()  # images already in memory are not written out
    load_images(_paths(data_dir), SIZE)
    load_images(_paths(data_dir), (8, 8))
    assert _listing(data_dir) == before
    assert len(_entries(tmp_path / "cache")) == 10


@pytest.mark.parametrize("where", ["the data folder", "inside it", "above it"])
def test_a_cache_folder_at_inside_or_above_the_images_is_refused(data_dir, tmp_path, where):
    cache = {"the data folder": data_dir, "inside it": data_dir / "cache",
             "above it": tmp_path}[where]
    images.set_cache_dir(cache)
    before = _listing(tmp_path)
    with pytest.raises(OutputPathError) as info:
        load_images(_paths(data_dir), SIZE)
    message = str(info.value)
    assert str(data_dir) in message and str(cache) in message
    assert "set_cache_dir" in message and "SKDERM_CACHE_DIR" in message
    assert _listing(tmp_path) == before  # nothing written, not even the folder
    # decoding without the disk cache still works
    assert len(load_images(_paths(data_dir), SIZE, cache=False)) == 5


def test_the_environment_variable_on_the_data_folder_is_refused(data_dir):
    code = (
        "import skderm.images as im\n"
        f"im.load_images({_paths(data_dir)!r}, {SIZE!r})\n"
    )
    before = _listing(data_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SKDERM_CACHE_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "OutputPathError" in done.stderr
    assert str(data_dir) in done.stderr
    assert _listing(data_dir) == before


def test_a_nul_byte_in_a_folder_is_an_image_error_with_the_disk_cache(tmp_path):
    images.set_cache_dir(tmp_path / "cache")
    with pytest.raises(ImageError, match="NUL|null"):
        load_images([str(tmp_path / "da\x00ta" / "ISIC_0000001.jpg")], SIZE)


def test_a_cache_folder_beside_the_images_is_used(data_dir, tmp_path):
    images.set_cache_dir(tmp_path / "cache")  # a sibling of the data folder
    load_images(_paths(data_dir), SIZE)
    assert len(_entries(tmp_path / "cache")) == 5


def test_an_edited_image_misses_even_with_the_same_size_and_mtime(data_dir, tmp_path):
    images.set_cache_dir(tmp_path / "cache")
    path = data_dir / "ISIC_0000001.bmp"
    Image.fromarray(np.full((30, 40, 3), 10, np.uint8)).save(path, format="BMP")
    assert load_images([path], SIZE)[0].mean() < 20
    st = path.stat()
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(path, format="BMP")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p or rsync -t leave it
    assert path.stat().st_size == st.st_size
    clear_cache()
    assert load_images([path], SIZE)[0].mean() > 180
    assert cache_info().disk_misses == 1


def test_another_size_or_path_with_other_bytes_is_another_entry(data_dir, tmp_path):
    cache = images.set_cache_dir(tmp_path / "cache")
    paths = _paths(data_dir)
    load_images(paths[:1], SIZE)
    load_images(paths[:1], (8, 8))
    load_images(paths[1:2], SIZE)
    assert len(_entries(cache)) == 3 and cache_info().disk_misses == 3


@pytest.mark.parametrize("damage", ["truncate", "flip_pixel", "garbage", "empty"])
def test_a_corrupt_entry_is_a_miss_and_is_rewritten(data_dir, tmp_path, damage):
    cache = images.set_cache_dir(tmp_path / "cache")
    path = _paths(data_dir)[3]
    expected = load_images([path], SIZE)[0].copy()
    (entry,) = _entries(cache)
    good = entry.read_bytes()
    broken = {
        "truncate": good[: len(good) // 2],
        "flip_pixel": good[:-1] + bytes([good[-1] ^ 0xFF]),
        "garbage": os.urandom(len(good)),
        "empty": b"",
    }[damage]
    entry.write_bytes(broken)
    clear_cache()
    got = load_images([path], SIZE)[0]
    np.testing.assert_array_equal(got, expected)
    assert cache_info().disk_misses == 1 and cache_info().disk_hits == 0
    assert entry.read_bytes() == good  # rewritten whole


def _temporaries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.skderm-tmp-*"))


def test_a_process_killed_while_writing_leaves_no_entry_and_the_next_cleans_up(data_dir,
                                                                              tmp_path):
    cache = tmp_path / "cache"
    first, path = _paths(data_dir)[:2]
    # the child writes one entry, then dies (no cleanup, like SIGKILL) after
    # writing the next entry's temporary file and before moving it into place
    code = (
        "import os, skderm.images as im\n"
        f"im.set_cache_dir({str(cache)!r})\n"
        f"im.load_images([{first!r}], {SIZE!r})\n"
        "os.replace = lambda *a, **k: os._exit(9)\n"
        f"im.load_images([{path!r}], {SIZE!r})\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == 9, done.stderr.decode()
    assert len(_entries(cache)) == 1
    (left,) = _temporaries(cache)  # the half-written file never got an entry's name
    images.set_cache_dir(cache)
    np.testing.assert_array_equal(load_images([path], SIZE)[0], read_image(path, SIZE))
    assert len(_entries(cache)) == 2
    assert not left.exists() and _temporaries(cache) == []  # the next run removed it


def test_an_interrupted_write_removes_its_temporary_file(data_dir, tmp_path, monkeypatch):
    cache = images.set_cache_dir(tmp_path / "cache")
    load_images(_paths(data_dir)[:1], SIZE)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_images(_paths(data_dir)[1:2], SIZE, n_jobs=1)
    assert len(_entries(cache)) == 1 and _temporaries(cache) == []


def _one_warning(record) -> str:
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    return messages[0]


def test_an_unusable_cache_folder_warns_once_and_decoding_goes_on(data_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    images.set_cache_dir(blocker / "cache")  # cannot be created, even by root
    paths = _paths(data_dir)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = load_images(paths, SIZE)
        clear_cache()
        again = load_images(paths, SIZE)
    assert "cannot write its image cache" in _one_warning(record)
    assert str(blocker) in _one_warning(record)
    for a, b in zip(out, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_full_disk_warns_once_and_decoding_goes_on(data_dir, tmp_path, monkeypatch):
    images.set_cache_dir(tmp_path / "cache")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = load_images(_paths(data_dir), SIZE)
    assert "No space left" in _one_warning(record)
    assert len(out) == 5 and _temporaries(tmp_path / "cache") == []


def test_an_unreadable_entry_is_a_miss(data_dir, tmp_path, monkeypatch):
    cache = images.set_cache_dir(tmp_path / "cache")
    path = _paths(data_dir)[0]
    load_images([path], SIZE)
    clear_cache()
    real = Path.read_bytes

    def denied(self):
        if self.suffix == ".rgb":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert load_images([path], SIZE)[0].shape == (*SIZE, 3)
    assert cache_info().disk_misses == 1
    assert len(_entries(cache)) == 1


def test_clear_cache_disk_deletes_only_skderm_entries(data_dir, tmp_path):
    cache = images.set_cache_dir(tmp_path / "cache")
    load_images(_paths(data_dir), SIZE)
    (namespace,) = [p for p in cache.iterdir() if p.is_dir()]
    # what a user keeps there: a note, a folder whose name looks like skderm's,
    # files inside skderm's own folder, a file named like an entry but not one
    mine = {cache / "notes.txt": "keep me",
            cache / "images-validation" / "ISIC_0000001.jpg": "a user's image",
            cache / f"{namespace.name}-copy" / "x.rgb": "a user's copy",
            namespace / "README": "mine",
            namespace / "ab" / f"{'ab' * 20}-12x16.rgb": "not an entry"}
    for path, text in mine.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    clear_cache()
    assert len(_entries(cache)) == 7  # the default clears memory only
    clear_cache(disk=True)
    assert {p: p.read_text() for p in mine} == mine
    assert sorted(_entries(cache)) == sorted(p for p in mine if p.suffix == ".rgb")
    info = cache_info()
    assert (info.hits, info.misses, info.disk_hits, info.disk_misses) == (0, 0, 0, 0)


def test_clear_cache_disk_removes_its_folder_when_nothing_else_is_there(data_dir, tmp_path):
    cache = images.set_cache_dir(tmp_path / "cache")
    load_images(_paths(data_dir), SIZE)
    clear_cache(disk=True)
    assert list(cache.iterdir()) == []
    load_images(_paths(data_dir), SIZE)  # and writing starts afresh
    assert len(_entries(cache)) == 5


def test_a_folder_without_skderms_marker_is_never_cleared(data_dir, tmp_path):
    cache = images.set_cache_dir(tmp_path / "cache")
    load_images(_paths(data_dir), SIZE)
    (namespace,) = [p for p in cache.iterdir() if p.is_dir()]
    (namespace / ".skderm-cache").write_text("skderm image cache\n")  # no token, no name
    clear_cache(disk=True)
    assert len(_entries(cache)) == 5


def test_default_cache_dir_is_the_platform_cache(monkeypatch, tmp_path):
    if sys.platform in ("win32", "darwin"):
        pytest.skip("XDG_CACHE_HOME applies on Linux and other Unixes")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert images.set_cache_dir("default") == tmp_path / "xdg" / "skderm"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert images.set_cache_dir("default") == Path.home() / ".cache" / "skderm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert images.set_cache_dir("default") == Path.home() / ".cache" / "skderm"
    assert images.set_cache_dir(None) is None and cache_info().disk_dir is None


def test_relative_cache_dir_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert images.set_cache_dir("here") == tmp_path / "here"


def test_environment_variable_turns_the_disk_cache_on(data_dir, tmp_path):
    cache = tmp_path / "env_cache"
    code = (
        "import skderm.images as im\n"
        f"im.load_images({_paths(data_dir)!r}, {SIZE!r})\n"
        "print(im.get_cache_dir(), im.cache_info().disk_misses)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SKDERM_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(cache), "5"]
    assert len(_entries(cache)) == 5


def test_missing_and_corrupt_files_still_raise_with_the_disk_cache(data_dir, tmp_path):
    images.set_cache_dir(tmp_path / "cache")
    bad = data_dir / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match=r"2 of 7 images failed"):
        load_images([*_paths(data_dir)[:5], str(data_dir / "gone.jpg"), str(bad)], SIZE)
    assert len(_entries(tmp_path / "cache")) == 5


# ---------------------------------------------------------------------------
# cache modes: single-use passes leave the in-memory cache alone
# ---------------------------------------------------------------------------


def test_read_mode_serves_cached_images_and_adds_none(data_dir):
    paths = _paths(data_dir)
    load_images(paths[:2], SIZE)
    out = load_images(paths, SIZE, cache="read")
    info = cache_info()
    assert len(out) == 5 and info.currsize == 2
    assert (info.hits, info.misses) == (2, 5)
    with images.cache_mode("read"):
        load_images(paths, SIZE)
    assert cache_info().currsize == 2
    load_images(paths, SIZE)  # outside the block: back to filling
    assert cache_info().currsize == 5


def test_cache_false_decodes_every_file_and_bypasses_the_disk(data_dir, tmp_path):
    cache = images.set_cache_dir(tmp_path / "cache")
    paths = _paths(data_dir)
    load_images(paths, SIZE, cache=False)
    load_images(paths, SIZE, cache=False)
    info = cache_info()
    assert (info.hits, info.misses, info.currsize, info.disk_misses) == (0, 10, 0, 0)
    assert _entries(cache) == []


def test_a_bad_cache_mode_is_refused(data_dir):
    with pytest.raises(ValueError, match=r"True, 'read' or False, got 'yes'"):
        load_images(_paths(data_dir), SIZE, cache="yes")
    with pytest.raises(ValueError, match="got 1"):
        with images.cache_mode(1):
            pass


def test_stream_cache_mode_keeps_one_chunk_and_streams_longer_passes():
    assert images.stream_cache_mode(10, chunk_size=10) is True
    assert images.stream_cache_mode(11, chunk_size=10) == "read"
    assert images.stream_cache_mode(images.STREAM_CHUNK_SIZE) is True
    assert images.stream_cache_mode(images.STREAM_CHUNK_SIZE + 1) == "read"


@pytest.mark.parametrize("kind", ["frame", "series", "list", "array", "images"])
def test_iter_chunks_cuts_every_kind_of_X_in_order(kind):
    n = 23
    X = {
        "frame": pd.DataFrame({"path": [f"{i}.jpg" for i in range(n)]}, index=range(100, 123)),
        "series": pd.Series([f"{i}.jpg" for i in range(n)], index=range(100, 123)),
        "list": [f"{i}.jpg" for i in range(n)],
        "array": np.array([f"{i}.jpg" for i in range(n)], dtype=object),
        "images": np.zeros((n, 4, 4, 3), np.uint8),
    }[kind]
    chunks = list(images.iter_chunks(X, chunk_size=10))
    assert [rows for rows, _ in chunks] == [slice(0, 10), slice(10, 20), slice(20, 23)]
    assert [len(c) for _, c in chunks] == [10, 10, 3]
    assert type(chunks[0][1]) is type(X)
    if kind != "images":
        flat = [v for _, c in chunks for v in (c["path"] if kind == "frame" else c)]
        assert list(flat) == [f"{i}.jpg" for i in range(n)]


def test_iter_chunks_hands_small_or_odd_X_back_whole():
    X = ["a.jpg", "b.jpg"]
    assert list(images.iter_chunks(X, chunk_size=10)) == [(slice(0, 2), X)]
    assert list(images.iter_chunks([], chunk_size=10)) == [(slice(0, 0), [])]
    assert list(images.iter_chunks(5, chunk_size=1)) == [(slice(0, None), 5)]
    with pytest.raises(ValueError, match="chunk_size must be a positive int, got 0"):
        list(images.iter_chunks(X, chunk_size=0))


def test_iter_chunks_follows_stream_chunk_size(monkeypatch):
    monkeypatch.setattr(images, "STREAM_CHUNK_SIZE", 4)
    assert [len(c) for _, c in images.iter_chunks(list(range(10)))] == [4, 4, 2]
    assert images.stream_cache_mode(5) == "read"


# ---------------------------------------------------------------------------
# BackboneFeatures: streaming and content-keyed embeddings
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> str:
    """A weights file for the tiny backbone, so its embeddings are cached."""
    import torch

    from skderm.backbones import get_backbone

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    torch.save(get_backbone("tiny").build().state_dict(), path)
    return str(path)


def _features(weights):
    return features.BackboneFeatures(backbone="tiny", weights=weights, image_size=(24, 32),
                                     batch_size=8).fit()


def test_an_edited_image_is_embedded_afresh(tmp_path, tiny_weights):
    # a cache keyed by path, size and mtime returns the first embedding here
    path = tmp_path / "ISIC_0000001.bmp"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path, "BMP")
    feats = _features(tiny_weights)
    before = feats.transform([str(path)])
    st = path.stat()
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path, "BMP")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = feats.transform([str(path)])
    features.clear_embedding_cache()
    clear_cache()
    np.testing.assert_allclose(after, feats.transform([str(path)]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(before, after)


def test_weights_rewritten_in_place_are_not_served_old_embeddings(data_dir, tmp_path):
    import torch

    from skderm.backbones import get_backbone

    weights = tmp_path / "my_backbone.pth"
    paths = _paths(data_dir)
    embeddings = []
    for seed in (0, 1):  # retrained and saved under the same name
        torch.manual_seed(seed)
        torch.save(get_backbone("tiny").build().state_dict(), weights)
        embeddings.append(_features(str(weights)).transform(paths))
    assert not np.allclose(embeddings[0], embeddings[1])
    features.clear_embedding_cache()
    np.testing.assert_allclose(_features(str(weights)).transform(paths), embeddings[1],
                               rtol=1e-5, atol=1e-6)


def test_a_copied_image_reuses_its_embedding(data_dir, tmp_path, tiny_weights):
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(Path(_paths(data_dir)[2]).read_bytes())
    feats = _features(tiny_weights)
    Z = feats.transform(_paths(data_dir))
    misses = features.embedding_cache_info()["misses"]
    np.testing.assert_array_equal(feats.transform([str(copy)])[0], Z[2])
    assert features.embedding_cache_info()["misses"] == misses


@pytest.mark.parametrize("weights", ["file", None])
def test_transform_streams_in_chunks_with_the_same_result(tmp_path, monkeypatch, tiny_weights,
                                                          weights):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(23):
        p = tmp_path / f"ISIC_{i:07d}.png"
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    feats = _features(tiny_weights if weights else None)
    whole = feats.transform(paths)
    features.clear_embedding_cache()
    clear_cache()
    sizes = []
    real = features.BackboneFeatures._embed

    def counting(self, imgs):
        sizes.append(len(imgs))
        return real(self, imgs)

    monkeypatch.setattr(features.BackboneFeatures, "_embed", counting)
    monkeypatch.setattr(images, "STREAM_CHUNK_SIZE", 10)
    streamed = feats.transform(pd.DataFrame({"path": paths}))
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-6)
    assert sizes == [10, 10, 3]  # never more than a chunk decoded at once
    # a pass longer than a chunk is single-use: the decoded images are not kept
    assert cache_info().currsize == 0 and cache_info().misses == 23


def test_in_memory_images_stream_too(monkeypatch, tiny_weights):
    X = np.random.default_rng(2).integers(0, 255, (13, 30, 40, 3), dtype=np.uint8)
    feats = _features(tiny_weights)
    whole = feats.transform(X)
    monkeypatch.setattr(images, "STREAM_CHUNK_SIZE", 5)
    np.testing.assert_allclose(feats.transform(X), whole, rtol=1e-5, atol=1e-6)
    assert feats.transform(X[:0]).shape == (0, feats.n_features_out_)
