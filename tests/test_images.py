"""Tests for skderm.images: decoding every mode real folders hold, errors, the cache."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from skderm import images
from skderm.exceptions import ImageError
from skderm.images import cache_info, clear_cache, load_images, read_image, resize_array

EXIF_ORIENTATION = 0x0112


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with an empty cache and leaves the default bound behind."""
    limit = cache_info().maxbytes
    clear_cache()
    yield
    images.set_cache_limit(limit)
    clear_cache()


def _halves(height: int = 20, width: int = 40) -> np.ndarray:
    """Left half red, right half blue: any flip or rotation is visible."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = (255, 0, 0)
    arr[:, width // 2 :] = (0, 0, 255)
    return arr


def _write_jpeg(path, arr: np.ndarray, **kwargs) -> str:
    Image.fromarray(arr).save(path, quality=95, **kwargs)
    return str(path)


def _close(got, expected, tol: int = 12) -> bool:
    return bool(np.all(np.abs(np.asarray(got, int) - np.asarray(expected, int)) <= tol))


# ---------------------------------------------------------------------------
# decoding: every mode comes out as uint8 RGB (H, W, 3)
# ---------------------------------------------------------------------------


def _check_rgb(arr: np.ndarray, shape: tuple[int, int]) -> None:
    assert arr.dtype == np.uint8
    assert arr.shape == (*shape, 3)


def test_rgb_jpeg_keeps_colours_and_orientation(tmp_path):
    path = _write_jpeg(tmp_path / "a.jpg", _halves())
    out = read_image(path)
    _check_rgb(out, (20, 40))
    assert _close(out[10, 5], (255, 0, 0)) and _close(out[10, 35], (0, 0, 255))


def test_png_is_lossless(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), arr)


def test_rgba_is_composited_over_black(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[:, :2] = (200, 100, 50, 255)  # opaque
    arr[:, 2:] = (200, 100, 50, 0)  # fully transparent
    Image.fromarray(arr, mode="RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    _check_rgb(out, (4, 4))
    np.testing.assert_array_equal(out[:, :2], np.broadcast_to((200, 100, 50), (4, 2, 3)))
    np.testing.assert_array_equal(out[:, 2:], 0)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (5, 1))
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    _check_rgb(out, gray.shape)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    # pure red in CMYK: no cyan, full magenta and yellow, no black
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as img:
        assert img.mode == "CMYK"  # the file really is CMYK
    out = read_image(tmp_path / "c.jpg")
    _check_rgb(out, (8, 16))
    assert _close(out[4, 8], (255, 0, 0), tol=20)


def test_palette_png_with_transparency(tmp_path):
    img = Image.new("P", (6, 3))
    img.putpalette([0, 0, 0, 10, 200, 30, 250, 5, 5] + [0] * (256 * 3 - 9))
    img.paste(1, (0, 0, 3, 3))
    img.paste(2, (3, 0, 6, 3))
    img.info["transparency"] = 2  # index 2 is transparent
    img.save(tmp_path / "p.png", transparency=2)
    with Image.open(tmp_path / "p.png") as check:
        assert check.mode == "P"
    out = read_image(tmp_path / "p.png")
    _check_rgb(out, (3, 6))
    np.testing.assert_array_equal(out[:, :3], np.broadcast_to((10, 200, 30), (3, 3, 3)))
    np.testing.assert_array_equal(out[:, 3:], 0)


def test_16_bit_png_uses_the_full_range(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]] * 3, dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as check:
        assert check.mode.startswith("I")  # a 16-bit grayscale file
    out = read_image(tmp_path / "d.png")
    _check_rgb(out, (3, 4))
    row = out[0, :, 0]
    # scaled, not clipped: 1000/65535 is dark, the middle is mid-grey, the top is white
    assert row[0] == 0 and row[1] <= 5
    assert 126 <= row[2] <= 129
    assert row[3] == 255
    assert np.all(out[..., 0] == out[..., 1]) and np.all(out[..., 1] == out[..., 2])


def test_exif_orientation_6_is_applied(tmp_path):
    arr = _halves(20, 40)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    img.save(tmp_path / "r.jpg", quality=95, exif=exif)
    out = read_image(tmp_path / "r.jpg")
    _check_rgb(out, (40, 20))  # transposed
    expected = np.rot90(arr, k=-1)  # clockwise
    assert np.abs(out.astype(int) - expected).mean() < 6
    # red (left) is now on top, blue (right) at the bottom
    assert _close(out[5, 10], (255, 0, 0)) and _close(out[35, 10], (0, 0, 255))


def test_exif_rotation_happens_before_resize(tmp_path):
    img = Image.fromarray(_halves(20, 40))
    exif = img.getexif()
    exif[EXIF_ORIENTATION] = 6
    img.save(tmp_path / "r.jpg", quality=95, exif=exif)
    out = read_image(tmp_path / "r.jpg", size=(8, 4))
    _check_rgb(out, (8, 4))
    assert _close(out[0, 2], (255, 0, 0), tol=30) and _close(out[-1, 2], (0, 0, 255), tol=30)


@pytest.mark.parametrize("size, expected", [(32, (32, 32)), ((30, 50), (30, 50)), ((7, 3), (7, 3))])
def test_resize_output_shape_and_dtype(tmp_path, size, expected):
    path = _write_jpeg(tmp_path / "a.jpg", _halves(150, 200))
    out = read_image(path, size)
    _check_rgb(out, expected)
    assert out.flags.c_contiguous


def test_jpeg_draft_decoding_matches_a_full_decode(tmp_path):
    # draft mode decodes at a reduced scale; the result must still look like
    # the full-size image shrunk, not a differently cropped or shifted one
    yy, xx = np.mgrid[:300, :400]
    arr = np.stack([xx * 255 // 399, yy * 255 // 299, (xx + yy) * 255 // 698], -1).astype(np.uint8)
    path = _write_jpeg(tmp_path / "grad.jpg", arr)
    full = read_image(path)
    small = read_image(path, (60, 80))
    expected = resize_array(full, (60, 80))
    assert np.abs(small.astype(int) - expected).mean() < 3


def test_resize_array_handles_gray_and_rgba_and_rejects_floats():
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 200
    out = resize_array(rgba, (5, 6))
    _check_rgb(out, (5, 6))
    assert np.all(out[..., 0] == 200)
    _check_rgb(resize_array(np.zeros((10, 12), np.uint8), 4), (4, 4))
    with pytest.raises(ValueError, match="uint8"):
        resize_array(np.zeros((10, 12, 3), np.float32), 4)


def test_bad_size_is_rejected(tmp_path):
    path = _write_jpeg(tmp_path / "a.jpg", _halves())
    with pytest.raises(ValueError, match="positive"):
        read_image(path, (0, 10))


# ---------------------------------------------------------------------------
# errors: each names the file
# ---------------------------------------------------------------------------


def _truncated_jpeg(tmp_path) -> str:
    good = _write_jpeg(tmp_path / "good.jpg", np.full((64, 64, 3), 120, np.uint8))
    data = open(good, "rb").read()
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(data[: len(data) // 2])
    return str(bad)


def _zero_byte(tmp_path) -> str:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    return str(path)


def _text_file(tmp_path) -> str:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image\n")
    return str(path)


def _missing(tmp_path) -> str:
    return str(tmp_path / "ISIC_missing.jpg")


def _directory(tmp_path) -> str:
    path = tmp_path / "folder.jpg"
    path.mkdir()
    return str(path)


BROKEN = {
    "truncated": (_truncated_jpeg, "truncated|corrupt"),
    "zero-byte": (_zero_byte, "empty|0-byte"),
    "text": (_text_file, "not an image"),
    "missing": (_missing, "not found"),
    "directory": (_directory, "directory"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.parametrize("loader", ["read_image", "load_images"])
def test_broken_file_raises_image_error_naming_it(tmp_path, kind, loader):
    make, reason = BROKEN[kind]
    path = make(tmp_path)
    with pytest.raises(ImageError, match=reason) as info:
        if loader == "read_image":
            read_image(path, (16, 16))
        else:
            load_images([path], (16, 16))
    assert os.path.basename(path) in str(info.value)
    assert os.path.abspath(info.value.path) == os.path.abspath(path)
    # users catching the builtin type get it too
    assert isinstance(info.value, ValueError)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    path = _write_jpeg(tmp_path / "big.jpg", np.zeros((100, 100, 3), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for limit_kind in ("warning", "error"):
        # above the limit Pillow warns, above twice the limit it errors
        if limit_kind == "error":
            monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
        with pytest.raises(ImageError, match="too large") as info:
            read_image(path, (16, 16))
        assert "big.jpg" in str(info.value)
    with pytest.raises(ImageError, match="too large"):
        load_images([path], (16, 16))


@pytest.mark.parametrize(
    "name", ["läsion ü/ISIC 0001 é.jpg", "with space/a b.jpg", "病变/图像.png"]
)
def test_non_ascii_and_spaces_in_paths(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    Image.fromarray(_halves()).save(path)
    _check_rgb(read_image(path, (10, 20)), (10, 20))
    _check_rgb(load_images([path], (10, 20))[0], (10, 20))


# ---------------------------------------------------------------------------
# load_images and the cache
# ---------------------------------------------------------------------------


@pytest.fixture
def five_files(tmp_path):
    paths = []
    for i in range(5):
        arr = np.full((30, 40, 3), 40 * i, np.uint8)
        paths.append(_write_jpeg(tmp_path / f"ISIC_{i:07d}.jpg", arr))
    return paths


def test_load_images_returns_one_array_per_path_in_order(five_files):
    out = load_images(five_files + five_files[:1], (12, 16))
    assert len(out) == 6
    for i, arr in enumerate(out[:5]):
        _check_rgb(arr, (12, 16))
        assert abs(int(arr.mean()) - 40 * i) <= 3
    np.testing.assert_array_equal(out[5], out[0])


def test_second_load_decodes_nothing(five_files):
    load_images(five_files, (12, 16))
    first = cache_info()
    assert first.misses == 5
    again = load_images(five_files, (12, 16))
    second = cache_info()
    assert second.misses == 5
    assert second.hits - first.hits == 5
    assert len(again) == 5
    # cached arrays are shared, so they must not be writable
    assert not again[0].flags.writeable


def test_other_size_is_another_entry(five_files):
    load_images(five_files, (12, 16))
    load_images(five_files, (24, 32))
    assert cache_info().misses == 10
    assert cache_info().currsize == 10


def test_relative_and_absolute_paths_share_entries(five_files, monkeypatch):
    folder = os.path.dirname(five_files[0])
    load_images(five_files, (12, 16))
    monkeypatch.chdir(folder)
    load_images([os.path.basename(p) for p in five_files], (12, 16))
    assert cache_info().misses == 5


def test_touched_but_unchanged_file_is_not_decoded_again(five_files):
    # entries are keyed by content: a new mtime alone re-checks the bytes, not the pixels
    load_images(five_files, (12, 16))
    st = os.stat(five_files[2])
    os.utime(five_files[2], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    load_images(five_files, (12, 16))
    assert cache_info().misses == 5
    assert cache_info().hits == 5


def _same_size_rewrite(path, value: int) -> None:
    """Rewrite ``path`` with other pixels but the same byte size and mtime (cp -p, rsync -t)."""
    st = os.stat(path)
    Image.fromarray(np.full((30, 40, 3), value, np.uint8)).save(path, format="BMP")
    assert os.stat(path).st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture
def bmp_file(tmp_path):
    path = tmp_path / "ISIC_0000000.bmp"
    Image.fromarray(np.full((30, 40, 3), 10, np.uint8)).save(path, format="BMP")
    return str(path)


def test_same_size_same_mtime_rewrite_gives_the_new_pixels(bmp_file):
    # a key of path, size and mtime would serve the old pixels here
    before = load_images([bmp_file], (12, 16))[0]
    _same_size_rewrite(bmp_file, 200)
    after = load_images([bmp_file], (12, 16))[0]
    assert before.mean() < 20 and after.mean() > 180
    assert cache_info().misses == 2


def test_settled_files_are_not_reread_but_replacements_are_seen(bmp_file, monkeypatch):
    # pretend every file is old enough for its digest to be remembered
    monkeypatch.setattr(images._keys, "SETTLE_NS", -(10**15))
    load_images([bmp_file], (12, 16))
    reads = []
    real = images._keys.read_source
    monkeypatch.setattr(images._load, "read_source", lambda p: reads.append(p) or real(p))
    load_images([bmp_file], (12, 16))
    assert reads == [] and cache_info().hits == 1  # a warm hit costs a stat, no read
    # an editor's save: a new file moved over the old one, mtime kept
    st = os.stat(bmp_file)
    new = bmp_file + ".new"
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(new, format="BMP")
    os.replace(new, bmp_file)
    os.utime(bmp_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert load_images([bmp_file], (12, 16))[0].mean() > 180
    assert reads == [bmp_file]


def test_identical_files_share_one_entry(tmp_path, five_files):
    copy = str(tmp_path / "copy_of_0.jpg")
    shutil.copyfile(five_files[0], copy)
    load_images(five_files, (12, 16))
    out = load_images([copy], (12, 16))
    assert cache_info().misses == 5
    assert out[0] is load_images(five_files[:1], (12, 16))[0]


def test_file_digest_follows_content(tmp_path, bmp_file):
    first = images.file_digest(bmp_file)
    assert len(first) == 40 and images.file_digest(bmp_file) == first
    _same_size_rewrite(bmp_file, 200)
    assert images.file_digest(bmp_file) != first
    with pytest.raises(ImageError, match="not found"):
        images.file_digest(tmp_path / "ISIC_missing.jpg")


def test_rewritten_file_gives_the_new_pixels(five_files):
    before = load_images(five_files[:1], (12, 16))[0]
    st = os.stat(five_files[0])
    _write_jpeg(five_files[0], np.full((30, 40, 3), 250, np.uint8))
    # a distinct mtime, as any real edit seconds later would have
    os.utime(five_files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    after = load_images(five_files[:1], (12, 16))[0]
    assert before.mean() < 10 and after.mean() > 240


def test_cache_bound_evicts_least_recently_used(five_files):
    one = 12 * 16 * 3
    images.set_cache_limit(2 * one)
    load_images(five_files, (12, 16))
    info = cache_info()
    assert info.currsize == 2
    assert info.nbytes <= info.maxbytes == 2 * one
    # the last two are cached, the first was evicted
    load_images(five_files[-2:], (12, 16))
    assert cache_info().misses == 5
    load_images(five_files[:1], (12, 16))
    assert cache_info().misses == 6


def test_cache_limit_zero_disables_caching(five_files):
    images.set_cache_limit(0)
    load_images(five_files, (12, 16))
    load_images(five_files, (12, 16))
    assert cache_info().misses == 10
    assert cache_info().nbytes == 0


def test_lowering_the_limit_trims_the_cache(five_files):
    one = 12 * 16 * 3
    load_images(five_files, (12, 16))
    assert cache_info().nbytes == 5 * one
    images.set_cache_limit(one)
    assert cache_info().nbytes == one
    assert cache_info().misses == 5  # trimming is not a decode
    load_images(five_files[-1:], (12, 16))  # the most recent one survived
    assert cache_info().misses == 5
    with pytest.raises(ValueError, match="maxbytes"):
        images.set_cache_limit(-1)


def test_set_cache_limit_leaves_no_phantom_entry(five_files):
    load_images(five_files, (12, 16))
    images.set_cache_limit(12 * 16 * 3)
    assert cache_info().currsize == 1
    images.set_cache_limit(0)
    assert cache_info().currsize == 0


def test_failed_files_are_not_cached(tmp_path, five_files):
    bad = _text_file(tmp_path)
    with pytest.raises(ImageError):
        load_images([*five_files, bad], (12, 16))
    # the good files were decoded and kept; the bad one is tried again next time
    assert cache_info().currsize == 5
    good_path = tmp_path / "fixed.jpg"
    _write_jpeg(good_path, np.zeros((8, 8, 3), np.uint8))
    shutil.copy(good_path, bad)
    assert load_images([bad], (12, 16))[0].shape == (12, 16, 3)


def test_two_bad_files_among_many_say_how_many_failed(tmp_path, five_files):
    bad = [_text_file(tmp_path), _zero_byte(tmp_path)]
    with pytest.raises(ImageError, match=r"2 of 7 images failed") as info:
        load_images([five_files[0], bad[0], *five_files[1:], bad[1]], (12, 16))
    assert "notes.jpg" in str(info.value)
    assert info.value.path == bad[0]


def test_one_bad_file_among_many_says_how_many_failed(tmp_path, five_files):
    bad = _text_file(tmp_path)
    with pytest.raises(ImageError, match=r"1 of 6 images failed") as info:
        load_images([*five_files, bad], (12, 16))
    assert "notes.jpg" in str(info.value)


def test_missing_and_corrupt_files_are_both_counted(tmp_path, five_files):
    with pytest.raises(ImageError, match=r"2 of 7 images failed"):
        load_images([*five_files, _missing(tmp_path), _text_file(tmp_path)], (12, 16))


def test_threaded_decoding_leaves_warning_filters_alone(tmp_path):
    import warnings

    paths = []
    for i in range(200):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), i % 256, np.uint8)).save(path)
        paths.append(str(path))
    before = list(warnings.filters)
    try:
        for _ in range(5):  # the race shows up in nearly every round
            clear_cache()
            load_images(paths, (4, 4), n_jobs=8)
            assert list(warnings.filters) == before
    finally:
        warnings.filters[:] = before
