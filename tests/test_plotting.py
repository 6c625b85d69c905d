"""Figures render headless, save as real PNGs and show what they claim."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest
from PIL import Image

matplotlib.use("Agg")  # before anything imports pyplot: no display in tests

from skderm.plotting import (  # noqa: E402
    plot_confusion_matrices,
    plot_confusion_matrix,
    plot_image_grid,
    plot_learning_curves,
    plot_precision_recall,
    plot_reliability_diagram,
    plot_risk_coverage,
    plot_roc,
    save_figure,
)

CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


def _check_png(path, fig, dpi):
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG"
        assert img.mode in ("RGBA", "RGB")
        expected = np.round(fig.get_size_inches() * dpi)
        assert np.abs(np.array(img.size) - expected).max() <= 1
        # something was drawn: not a blank canvas
        assert len(img.convert("L").getcolors(maxcolors=1 << 16) or [0, 0]) > 1


def _legend_texts(ax):
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y_true = rng.choice(CLASSES, size=140)
    y_pred = np.where(rng.random(140) < 0.7, y_true, rng.choice(CLASSES, size=140))
    return y_true, y_pred


# --------------------------------------------------------------------------
# confusion matrices
# --------------------------------------------------------------------------


def test_confusion_matrix_counts_png(predictions, tmp_path):
    y_true, y_pred = predictions
    fig = plot_confusion_matrix(y_true, y_pred)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    # the annotated cells are the counts: they add up to the sample count
    cells = [int(t.get_text()) for t in ax.texts]
    assert sum(cells) == len(y_true)
    path = save_figure(fig, tmp_path / "cm.png", dpi=80)
    _check_png(path, fig, 80)


def test_confusion_matrix_true_normalised_rows_are_recall(predictions):
    y_true, y_pred = predictions
    fig = plot_confusion_matrix(y_true, y_pred, normalize="true")
    ax = fig.axes[0]
    image = ax.images[0].get_array()
    np.testing.assert_allclose(np.asarray(image).sum(axis=1), 1.0)
    mel = CLASSES.index("mel")
    recall = np.mean(y_pred[y_true == "mel"] == "mel")
    assert image[mel, mel] == pytest.approx(recall)
    assert "recall" in ax.get_title()


def test_confusion_matrix_labels_order_and_absent_class():
    y = ["nv", "mel", "nv", "bcc"]
    fig = plot_confusion_matrix(y, y, labels=["nv", "mel", "bcc", "df"], title="mine")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["nv", "mel", "bcc", "df"]
    assert ax.get_title() == "mine"


def test_confusion_matrix_rejects_labels_missing_a_class():
    with pytest.raises(ValueError, match="does not contain"):
        plot_confusion_matrix(["nv", "mel"], ["nv", "bcc"], labels=["nv", "mel"])


def test_confusion_matrix_bad_normalize():
    with pytest.raises(ValueError, match="normalize='rows'"):
        plot_confusion_matrix(["nv"], ["nv"], normalize="rows")


def test_confusion_matrix_draws_on_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plot_confusion_matrix(["a", "b"], ["a", "a"], ax=right) is fig
    assert right.images and not left.images


def test_confusion_matrices_side_by_side(predictions, tmp_path):
    y_true, y_pred = predictions
    fig = plot_confusion_matrices(y_true, y_pred)
    panels = [ax for ax in fig.axes if ax.images]  # the others are colorbars
    assert len(panels) == 2
    counts, normed = (np.asarray(ax.images[0].get_array()) for ax in panels)
    assert counts.sum() == len(y_true)
    np.testing.assert_allclose(normed, counts / counts.sum(axis=1, keepdims=True))
    _check_png(save_figure(fig, tmp_path / "cms.png"), fig, 100)


# --------------------------------------------------------------------------
# learning curves
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(tiny_lesions):
    from skderm import LesionClassifier

    clf = LesionClassifier(backbone="tiny", weights=None, image_size=(48, 64), max_epochs=3,
                           batch_size=16, verbose=0, random_state=0)
    return clf.fit(tiny_lesions.data, tiny_lesions.target)


def _labelled_lines(ax):
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_learning_curves_from_classifier(fitted, tmp_path):
    fig = plot_learning_curves(fitted)
    loss_ax, score_ax = fig.axes
    assert _labelled_lines(loss_ax) == ["train loss", "valid loss"]
    n_epochs = len(fitted.history_)
    for line in loss_ax.get_lines()[:2]:
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, n_epochs + 1))
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(),
                               fitted.history_[:, "train_loss"])
    labels = _labelled_lines(score_ax)
    assert labels[:2] == ["valid balanced accuracy", "valid MCC"]
    best = int(np.argmax(fitted.history_[:, "valid_bacc"])) + 1
    assert len(labels) == 3 and labels[2].startswith(f"best epoch {best} ")
    _check_png(save_figure(fig, tmp_path / "curves.png"), fig, 100)


def test_learning_curves_without_validation_keys(tmp_path):
    history = [{"epoch": e, "train_loss": 2.0 / e, "dur": 0.1} for e in (1, 2, 3, 4)]
    fig = plot_learning_curves(history)
    loss_ax, score_ax = fig.axes
    assert _labelled_lines(loss_ax) == ["train loss"]
    assert score_ax.get_lines() == []  # no curve, no best-epoch marker
    _check_png(save_figure(fig, tmp_path / "train_only.png"), fig, 100)


def test_learning_curves_best_epoch_marks_max_bacc():
    history = [{"epoch": e, "train_loss": 1.0, "valid_loss": 1.0, "valid_bacc": b}
               for e, b in zip((1, 2, 3, 4), (0.3, 0.7, 0.5, 0.6), strict=True)]
    fig = plot_learning_curves(history)
    marks = [ln for ln in fig.axes[1].get_lines() if ln.get_label().startswith("best")]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 2]


def test_learning_curves_on_given_axes():
    from matplotlib.figure import Figure

    history = [{"epoch": 1, "train_loss": 1.0, "valid_bacc": 0.5}]
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert plot_learning_curves(history, ax=axes) is fig
    assert _labelled_lines(axes[0]) == ["train loss"]
    with pytest.raises(ValueError, match="pair of Axes"):
        plot_learning_curves(history, ax=axes[0])


def test_learning_curves_unfitted_and_bad_input():
    from skderm import LesionClassifier

    with pytest.raises(ValueError, match="fit"):
        plot_learning_curves(LesionClassifier(backbone="tiny", weights=None))
    with pytest.raises(ValueError, match="empty"):
        plot_learning_curves([])
    with pytest.raises(TypeError, match="list of per-epoch"):
        plot_learning_curves({"train_loss": [1.0]})


# --------------------------------------------------------------------------
# ROC
# --------------------------------------------------------------------------


def test_roc_one_curve_per_present_class(tmp_path):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    classes = np.array(CLASSES)
    present = ["bcc", "mel", "nv"]  # four classes absent from y_true
    y_true = rng.choice(present, size=90)
    proba = rng.random((90, len(classes)))
    proba[np.arange(90), np.searchsorted(classes, y_true)] += 0.8
    proba /= proba.sum(axis=1, keepdims=True)

    fig = plot_roc(y_true, proba, classes=classes)
    ax = fig.axes[0]
    texts = _legend_texts(ax)
    assert [t.split(" ")[0] for t in texts] == present
    aucs = [roc_auc_score(y_true == c, proba[:, CLASSES.index(c)]) for c in present]
    assert texts[1] == f"mel (AUC {aucs[1]:.3f})"
    assert f"macro AUC {np.mean(aucs):.3f}" in ax.get_title()
    _check_png(save_figure(fig, tmp_path / "roc.png", dpi=60), fig, 60)


def test_roc_rejects_mismatched_input():
    with pytest.raises(ValueError, match="not in classes"):
        plot_roc(["a", "z"], [[0.5, 0.5], [0.5, 0.5]], classes=["a", "b"])
    with pytest.raises(ValueError, match="expected"):
        plot_roc(["a", "b"], [[1.0], [0.0]], classes=["a", "b"])
    with pytest.raises(ValueError, match="at least two classes"):
        plot_roc(["a", "a"], [[0.5, 0.5], [0.5, 0.5]], classes=["a", "b"])


# --------------------------------------------------------------------------
# precision-recall, reliability, risk-coverage
# --------------------------------------------------------------------------


@pytest.fixture
def scored():
    """Three present classes of seven columns, probabilities that favour the truth."""
    rng = np.random.default_rng(2)
    classes = np.array(CLASSES)
    y_true = rng.choice(["bcc", "mel", "nv"], size=200, p=[0.2, 0.2, 0.6])
    proba = rng.random((200, len(classes)))
    proba[np.arange(200), np.searchsorted(classes, y_true)] += 0.8
    return y_true, proba / proba.sum(axis=1, keepdims=True), classes


def test_precision_recall_one_curve_per_present_class(scored, tmp_path):
    from sklearn.metrics import average_precision_score

    y_true, proba, classes = scored
    fig = plot_precision_recall(y_true, proba, classes=classes)
    ax = fig.axes[0]
    texts = _legend_texts(ax)
    assert [t.split(" ")[0] for t in texts] == ["bcc", "mel", "nv"]
    ap = average_precision_score(y_true == "mel", proba[:, CLASSES.index("mel")])
    prevalence = np.mean(y_true == "mel")
    assert texts[1] == f"mel (AP {ap:.3f}, prevalence {prevalence:.3f})"
    assert ax.get_xlabel().startswith("recall") and ax.get_ylabel() == "precision"
    _check_png(save_figure(fig, tmp_path / "pr.png", dpi=60), fig, 60)
    with pytest.raises(ValueError, match="at least two classes"):
        plot_precision_recall(["a", "a"], [[0.5, 0.5], [0.5, 0.5]], classes=["a", "b"])


def test_roc_and_precision_recall_side_by_side(scored):
    from matplotlib.figure import Figure

    y_true, proba, classes = scored
    fig = Figure(figsize=(11, 5))
    left, right = fig.subplots(1, 2)
    assert plot_roc(y_true, proba, classes=classes, ax=left) is fig
    assert plot_precision_recall(y_true, proba, classes=classes, ax=right) is fig
    assert left.get_title().startswith("ROC") and right.get_title().startswith("Precision")


def test_reliability_diagram_bars_are_the_curve(scored, tmp_path):
    from skderm.metrics import expected_calibration_error, reliability_curve

    y_true, proba, classes = scored
    fig = plot_reliability_diagram(y_true, proba, classes=classes, n_bins=10)
    ax = fig.axes[0]
    curve = reliability_curve(y_true, proba, classes=classes, n_bins=10)
    filled = curve[curve["count"] > 0]
    accuracy_bars = ax.containers[1]
    np.testing.assert_allclose([b.get_height() for b in accuracy_bars], filled["accuracy"])
    np.testing.assert_allclose([b.get_x() for b in accuracy_bars], filled["bin_low"])
    ece = expected_calibration_error(y_true, proba, classes=classes, n_bins=10)
    assert f"ECE {ece:.3f}" in ax.get_title()
    _check_png(save_figure(fig, tmp_path / "reliability.png"), fig, 100)
    per_class = plot_reliability_diagram(y_true, proba, classes=classes, label="mel")
    assert "mel vs rest" in per_class.axes[0].get_title()


def test_risk_coverage_plot_draws_the_curve(scored, tmp_path):
    from skderm.metrics import risk_coverage_curve

    y_true, proba, classes = scored
    fig = plot_risk_coverage(y_true, proba, classes=classes)
    ax = fig.axes[0]
    curve = risk_coverage_curve(y_true, proba, classes=classes)
    risk, bacc = ax.get_lines()
    np.testing.assert_allclose(risk.get_ydata(), curve["risk"])
    np.testing.assert_allclose(bacc.get_ydata(), curve["balanced_accuracy"])
    assert f"area {curve['risk'].mean():.3f}" in ax.get_title()
    _check_png(save_figure(fig, tmp_path / "risk_coverage.png"), fig, 100)


# --------------------------------------------------------------------------
# image grid
# --------------------------------------------------------------------------


def test_image_grid_rows_are_classes_titles_coloured(tiny_lesions, tmp_path):
    X, y = tiny_lesions.data, tiny_lesions.target.to_numpy()
    y_pred = y.copy()
    y_pred[::3] = "nv"  # some wrong predictions
    fig = plot_image_grid(X, y, y_pred, per_class=3, image_size=(48, 64))
    axes = np.array(fig.axes).reshape(-1, 3)
    assert [row[0].get_ylabel() for row in axes] == sorted(set(y))
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == sum(min(3, n) for n in np.unique(y, return_counts=True)[1])
    assert shown[0].images[0].get_array().shape == (48, 64, 3)
    colours = set()
    for ax in shown:
        true, pred = ax.get_title().split(" / ")
        colours.add((true == pred, ax.title.get_color()))
    assert colours == {(True, "#1a7f37"), (False, "#cf222e")}
    _check_png(save_figure(fig, tmp_path / "grid.png"), fig, 100)


def test_image_grid_same_seed_same_images(tiny_lesions):
    X, y = tiny_lesions.data, tiny_lesions.target
    a, b, c = (plot_image_grid(X, y, per_class=2, image_size=(24, 32), random_state=s)
               for s in (5, 5, 6))

    def pixels(fig):
        return np.stack([ax.images[0].get_array() for ax in fig.axes if ax.images])

    np.testing.assert_array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(a), pixels(c))


def test_image_grid_bad_input(tiny_lesions):
    X = tiny_lesions.data
    with pytest.raises(ValueError, match="no column 'file'"):
        plot_image_grid(X, path_column="file")
    with pytest.raises(ValueError, match="one label per row"):
        plot_image_grid(X, tiny_lesions.target[:5])


# --------------------------------------------------------------------------
# saving and the optional dependency
# --------------------------------------------------------------------------


def test_save_figure_creates_parents_and_adds_suffix(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    out = save_figure(fig, tmp_path / "a" / "b" / "plot", dpi=50)
    assert out == str(tmp_path / "a" / "b" / "plot.png")
    _check_png(out, fig, 50)
    with pytest.raises(ValueError, match="'.pdf'"):
        save_figure(fig, tmp_path / "plot.pdf")


def test_missing_matplotlib_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    message = "skderm.plotting needs matplotlib: pip install 'skderm[plot]'"
    with pytest.raises(ImportError) as info:
        plot_confusion_matrix(["a"], ["a"])
    assert str(info.value) == message
    for plot in (plot_roc, plot_precision_recall, plot_reliability_diagram, plot_risk_coverage):
        with pytest.raises(ImportError, match=r"skderm\[plot\]"):
            plot(["a", "b"], [[1.0, 0.0], [0.0, 1.0]], classes=["a", "b"])
