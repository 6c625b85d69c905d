"""``skderm export``, ``skderm explain`` and ``skderm lr-find`` on a tiny model."""

import os
from pathlib import Path

import numpy as np
import pytest

from skderm.cli import main

TRAIN_FAST = ["--recipe", "cpu_images", "--decision", "image", "--backbone", "tiny",
              "--weights", "none", "--image-size", "32", "32", "--param", "valid_size=None",
              "--quiet"]


@pytest.fixture(scope="module")
def model(tiny_lesions, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_tools") / "model.skderm"
    assert main(["train", "--data", tiny_lesions.directory, "--epochs", "2", *TRAIN_FAST,
                 "--out", str(path)]) == 0
    return path


def test_export_writes_an_onnx_file_that_predicts_like_the_model(model, tiny_lesions, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from skderm.images import read_image
    from skderm.persistence import load_model

    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(model), "--out", str(out), "--quiet"]) == 0
    clf = load_model(model)
    paths = list(tiny_lesions.data["path"][:4])
    pixels = np.stack([read_image(p, clf.image_size_) for p in paths])
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = session.run(None, {name: pixels})[0]
    np.testing.assert_allclose(got, clf.predict_proba(paths), atol=1e-4)


def test_export_refuses_to_overwrite_its_model(model, capsys):
    before = Path(model).read_bytes()
    assert main(["export", "--model", str(model), "--out", str(model)]) == 1
    assert "--out" in capsys.readouterr().err
    assert Path(model).read_bytes() == before


def test_explain_writes_one_overlay_per_image(model, tiny_lesions, tmp_path, capsys):
    images = list(tiny_lesions.data["path"][:3])
    out = tmp_path / "maps"
    assert main(["explain", "--model", str(model), *images, "--out", str(out)]) == 0
    written = sorted(os.listdir(out))
    assert len(written) == 3 and all(name.endswith("_grad_cam.png") for name in written)
    from PIL import Image

    assert Image.open(out / written[0]).size == (32, 32)


def test_explain_never_writes_into_the_image_folder(model, tiny_lesions, capsys):
    folder = os.path.dirname(tiny_lesions.data["path"][0])
    before = sorted(os.listdir(folder))
    assert main(["explain", "--model", str(model), tiny_lesions.data["path"][0],
                 "--out", os.path.join(folder, "maps")]) == 1
    assert "data folder" in capsys.readouterr().err
    assert sorted(os.listdir(folder)) == before


def test_lr_find_suggests_a_rate(tiny_lesions, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "lr.png"
    assert main(["lr-find", "--data", tiny_lesions.directory, *TRAIN_FAST, "--iterations",
                 "20", "--plot", str(plot)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("suggested lr: ") and float(line.split()[2]) > 0
    assert plot.stat().st_size > 0


def test_predict_refer_marks_the_least_confident_share(model, tiny_lesions, tmp_path):
    import pandas as pd

    out = tmp_path / "pred.csv"
    images = list(tiny_lesions.data["path"][:20])
    assert main(["predict", "--model", str(model), *images, "--refer", "0.25",
                 "--csv", str(out), "--quiet"]) == 0
    table = pd.read_csv(out)
    assert table["referred"].sum() == 5
    classes = [c for c in table.columns if c not in ("image", "prediction", "decided_by",
                                                     "referred")]
    top = table[classes].max(axis=1)
    assert top[table["referred"]].max() <= top[~table["referred"]].min()


@pytest.mark.parametrize("value", ["1", "-0.1", "x"])
def test_predict_refer_bad_share_is_named(model, tiny_lesions, value, capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(model), tiny_lesions.data["path"][0], "--refer", value])
    assert "share in [0, 1)" in capsys.readouterr().err


def test_the_demo_search_says_which_fit_of_how_many(tiny_lesions, capsys):
    from skderm.cli.demo import make_grid_search

    search = make_grid_search(backbone="tiny", image_size=(32, 32), epochs=1, folds=2,
                              progress=True)
    search.set_params(estimator__lesionclassifier__weights=None)
    X, y = tiny_lesions.data, tiny_lesions.target
    search.fit(X, y, groups=X["lesion_id"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("fit ")]
    assert [line.split(",")[0] for line in lines] == [f"fit {k} of 5" for k in range(1, 6)]
    assert "s left" in lines[-1]


def test_serve_refuses_a_model_file_with_another_digest_before_listening(model, capsys):
    wrong = "0" * 64
    assert main(["serve", "--model", str(model), "--port", "0", "--model-sha256", wrong]) == 1
    assert Path(model).name in capsys.readouterr().err


def test_evaluate_writes_a_report_page_and_prints_the_per_class_table(model, tiny_lesions,
                                                                       tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from html.parser import HTMLParser

    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(model), "--data", tiny_lesions.directory,
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert all(dx in printed for dx in ("akiec", "mel", "nv"))  # the per-class table
    page = (out / "report.html").read_text(encoding="utf-8")

    class Images(HTMLParser):
        sources: list = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.sources.append(dict(attrs).get("src", ""))

    parser = Images()
    parser.feed(page)
    assert parser.sources and all(src.startswith("data:image/png;base64,")
                                  for src in parser.sources)
    assert "not a medical device" in page


def test_warnings_come_once_and_quiet_silences_them(monkeypatch, recwarn):
    import warnings

    import skderm.cli.backbones as command

    def noisy(args, log):
        for _ in range(5):
            warnings.warn("y_pred contains classes not in y_true", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(command, "run", noisy)
    def shown():
        return sum("y_pred contains classes" in str(w.message) for w in recwarn.list)

    assert main(["backbones"]) == 0
    assert shown() == 1
    recwarn.clear()
    assert main(["backbones", "--quiet"]) == 0
    assert shown() == 0


def test_explain_refuses_two_images_of_one_name_before_any_work(model, tiny_lesions, tmp_path,
                                                               capsys):
    import shutil

    first = tiny_lesions.data["path"][0]
    other = tmp_path / "copy"
    other.mkdir()
    shutil.copy(first, other / os.path.basename(first))
    assert main(["explain", "--model", str(model), first, str(other / os.path.basename(first)),
                 "--out", str(tmp_path / "maps")]) == 1
    assert "share a file name" in capsys.readouterr().err
    assert not (tmp_path / "maps").exists()
