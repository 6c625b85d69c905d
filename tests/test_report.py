"""The evaluation report: a self-contained page with every section, and its terminal text."""

from __future__ import annotations

import base64
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, recall_score

pytest.importorskip("matplotlib")

from skderm.datasets import make_lesions  # noqa: E402
from skderm.exceptions import OutputPathError  # noqa: E402
from skderm.report import INTENDED_USE, REPORT_NAME, format_summary, write_report  # noqa: E402
from skderm.report.page import SECTIONS  # noqa: E402
from skderm.report.tables import per_class_intervals  # noqa: E402

N_BOOT = 100
#: confusion, ROC, PR, reliability, risk-coverage, top losses
FIGURES_WITH_GALLERY = 6


class _Page(HTMLParser):
    """Collects what the tests look at: tags, ids, links and the text."""

    def __init__(self):
        super().__init__()
        self.tags, self.ids, self.imgs, self.links, self.text = [], set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        for key in ("src", "href"):
            if key in attrs:
                self.links.append(attrs[key])

    def handle_data(self, data):
        self.text.append(data)


def _parse(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _predictions(y, classes, strength=2.0, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(y), len(classes))) + strength * (classes == y[:, None])
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = make_lesions(48, random_state=0, directory=tmp_path_factory.mktemp("lesions"))
    y = d.target.to_numpy()
    classes = np.unique(y)
    return d, y, classes, _predictions(y, classes)


@pytest.fixture(scope="module")
def small():
    """Three classes, no images: the cheapest page, for the tests about files."""
    rng = np.random.default_rng(0)
    y = rng.choice(np.array(["bcc", "mel", "nv"]), size=30)
    classes = np.unique(y)
    return y, classes, _predictions(y, classes)


@pytest.fixture(scope="module")
def report(data, tmp_path_factory):
    d, y, classes, proba = data
    calls = []

    def saliency(paths):
        calls.append(list(paths))
        return [np.outer(np.hanning(9), np.hanning(12)) for _ in paths]

    path = write_report(tmp_path_factory.mktemp("out") / "report", y_true=y, proba=proba,
                        classes=classes, groups=d.groups, images=d.data["path"].tolist(),
                        model_info={"backbone": "tf_efficientnet_lite0", "recipe": "cpu",
                                    "training_data": "HAM10000 folds 1-4"},
                        data_summary={"protocol": "fold 0 of a lesion-grouped split"},
                        saliency=saliency, n_boot=N_BOOT)
    return path, calls


def test_page_parses_with_every_section_and_only_inline_figures(report):
    path, _ = report
    assert path.name == REPORT_NAME
    page = _parse(path)
    assert set(SECTIONS) <= page.ids
    assert len(page.imgs) == FIGURES_WITH_GALLERY
    for src in page.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # every other link is an anchor on the page: nothing names another file or a host
    others = [link for link in page.links if not link.startswith("data:image/png;base64,")]
    assert others and all(link.startswith("#") for link in others)
    assert not [link for link in others if "http" in link]
    # nothing that could fetch or run: no script, no external stylesheet, no frame
    assert not {"script", "link", "iframe", "object"} & set(page.tags)


def test_page_states_intended_use_and_model_card(report):
    text = " ".join(_parse(report[0]).text)
    assert INTENDED_USE in text
    for part in ("Training data", "Recipe", "Figures and their protocol", "Known limits",
                 "HAM10000 folds 1-4", "fold 0 of a lesion-grouped split"):
        assert part in text
    assert "not a medical device" in text


def test_gallery_overlays_the_saliency_of_the_top_losses(report, data):
    _, calls = report
    d, y, classes, proba = data
    wrong = (classes[proba.argmax(1)] != y).sum()
    assert len(calls) == 1
    assert len(calls[0]) == min(8, wrong)
    assert set(calls[0]) <= set(d.data["path"])


def test_page_without_images_has_no_gallery(small, tmp_path):
    y, classes, proba = small
    page = _parse(write_report(tmp_path, y_true=y, proba=proba, classes=classes,
                               n_boot=N_BOOT))
    assert len(page.imgs) == FIGURES_WITH_GALLERY - 1
    assert set(SECTIONS) <= page.ids


def test_refuses_to_replace_a_file_it_did_not_write(small, tmp_path):
    y, classes, proba = small
    (tmp_path / REPORT_NAME).write_text("my notes")
    with pytest.raises(OutputPathError, match="not a skderm report"):
        write_report(tmp_path, y_true=y, proba=proba, classes=classes, n_boot=N_BOOT)
    assert (tmp_path / REPORT_NAME).read_text() == "my notes"
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        write_report(not_a_folder, y_true=y, proba=proba, classes=classes, n_boot=N_BOOT)


def test_refuses_to_write_over_an_input_image(small, tmp_path):
    y, classes, proba = small
    images = [str(tmp_path / f"{i}.jpg") for i in range(len(y) - 1)] + [
        str(tmp_path / REPORT_NAME)]
    with pytest.raises(OutputPathError, match="would overwrite an input"):
        write_report(tmp_path, y_true=y, proba=proba, classes=classes, images=images)


def test_replaces_its_own_report(small, tmp_path):
    y, classes, proba = small
    first = write_report(tmp_path, y_true=y, proba=proba, classes=classes, n_boot=N_BOOT,
                         title="first")
    second = write_report(tmp_path, y_true=y, proba=proba, classes=classes, n_boot=N_BOOT,
                          title="second")
    assert first == second and "<title>second</title>" in second.read_text()


def test_bad_saliency_output_is_named(data, tmp_path):
    d, y, classes, proba = data
    with pytest.raises(ValueError, match="one map per path"):
        write_report(tmp_path, y_true=y, proba=proba, classes=classes, n_boot=N_BOOT,
                     images=d.data["path"].tolist(), saliency=lambda paths: [])


def test_summary_text_holds_the_table_and_intervals(data):
    d, y, classes, proba = data
    text = format_summary(y, proba, classes, groups=d.groups, n_boot=N_BOOT)
    pred = classes[proba.argmax(1)]
    assert f"{len(y)} images, {d.groups.nunique()} lesions" in text
    assert "resamples of lesions" in text
    recalls = recall_score(y, pred, labels=classes, average=None)
    for label, recall in zip(classes, recalls, strict=True):
        line = next(row for row in text.splitlines() if row.startswith(label + " "))
        assert f"{recall:.3f} [" in line
    bacc = next(row for row in text.splitlines() if row.startswith("balanced_accuracy"))
    assert f"{balanced_accuracy_score(y, pred):.3f} [" in bacc
    assert "ECE" in text and "Brier" in text and "sensitivity at specificity" in text


def test_decision_labels_replace_the_argmax(data):
    _, y, classes, proba = data
    decided = np.full(len(y), classes[0])
    text = format_summary(y, proba, classes, decision_labels=decided, n_boot=N_BOOT)
    first = next(row for row in text.splitlines() if row.startswith(classes[0] + " "))
    assert "1.000 [1.000, 1.000]" in first  # every image decided as the first class


def test_lesion_bootstrap_resamples_whole_lesions():
    # five identical images per lesion, resampled by lesion, give exactly the
    # intervals of one image per lesion resampled by image: the same draws
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], size=60)
    pred = np.where(rng.random(60) < 0.7, y, rng.choice(["a", "b", "c"], size=60))
    one = per_class_intervals(y, pred, labels=["a", "b", "c"], n_boot=200, random_state=3)
    five = per_class_intervals(np.repeat(y, 5), np.repeat(pred, 5), labels=["a", "b", "c"],
                               groups=np.repeat(np.arange(60), 5), n_boot=200, random_state=3)
    np.testing.assert_allclose(five.to_numpy(), one.to_numpy())
    by_image = per_class_intervals(np.repeat(y, 5), np.repeat(pred, 5), labels=["a", "b", "c"],
                                   n_boot=200, random_state=3)
    width = (by_image["recall_high"] - by_image["recall_low"]).mean()
    assert width < (five["recall_high"] - five["recall_low"]).mean()
    assert ((one["recall_low"] <= one["recall"]) & (one["recall"] <= one["recall_high"])).all()


_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# a copy of the report with a probe added: after load, it writes how many images
# decoded into the DOM that --dump-dom prints (the report itself runs no script)
_PROBE = ("<script>window.addEventListener('load', () => {const imgs = [...document.images];"
          "document.body.setAttribute('data-probe', imgs.filter(i => i.complete && "
          "i.naturalWidth > 0).length + '/' + imgs.length);});</script>")


@pytest.mark.skipif(_CHROMIUM is None, reason="no chromium or chromium-browser on PATH "
                    "(Debian: apt-get install chromium)")
def test_report_loads_in_a_headless_browser(report, tmp_path):
    page = report[0].read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    run = subprocess.run(
        [_CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f'data-probe="{FIGURES_WITH_GALLERY}/{FIGURES_WITH_GALLERY}"' in run.stdout
    for error in ("Uncaught", "Failed to load resource", "Refused to", "net::ERR_"):
        assert error not in run.stderr, run.stderr[-2000:]
