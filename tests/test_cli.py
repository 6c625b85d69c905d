"""The skderm command: demo, backbones, train/predict/evaluate/cv, one-line errors."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skderm.cli import main


def _run(*args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "skderm", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_demo_on_synthetic_data_prints_grid_and_held_out_report(tmp_path):
    out = tmp_path / "report"
    proc = _run("demo", "--n-synthetic", "180", "--folds", "2", "--epochs", "2",
                "--image-size", "48", "64", "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    m = re.search(r"cross-validated, best candidate: balanced accuracy (\d\.\d+) \+/- .*"
                  r"MCC (-?\d\.\d+)", text)
    assert m, text
    assert 0.0 <= float(m.group(1)) <= 1.0 and -1.0 <= float(m.group(2)) <= 1.0
    assert "grid search" in text and text.count("+/-") >= 4  # two candidates, two scores
    held = re.search(r"held-out: balanced accuracy (\d\.\d+) \[95% CI (\d\.\d+)-(\d\.\d+)\]",
                     text)
    assert held and float(held.group(2)) <= float(held.group(1)) <= float(held.group(3))
    assert "specificity" in text  # the per-class report
    assert (out / "metrics.json").is_file() and (out / "report.csv").is_file()


@pytest.mark.realdata
def test_demo_on_real_folder(ham10000_root):
    proc = _run("demo", "--data", str(ham10000_root), "--max-images", "300", "--folds", "2",
                "--epochs", "1", "--image-size", "48", "64", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "balanced accuracy" in proc.stdout


def test_backbones_lists_registry_and_offline_weights(capsys):
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"tf_efficientnet_lite0 .*available", out)
    assert re.search(r"resnet50 .*(available|missing)", out)
    assert "hub/checkpoints" in out


def test_errors_are_one_line_with_nonzero_exit(tmp_path, capsys):
    code = main(["demo", "--data", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("skderm: error:") and "nowhere" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_debug_shows_the_traceback(tmp_path):
    from skderm.exceptions import DatasetError

    with pytest.raises(DatasetError):
        main(["--debug", "demo", "--data", str(tmp_path / "nowhere")])


def test_version_and_help():
    proc = _run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("skderm ")
    assert _run("--help").stdout.count("demo") >= 1


# --------------------------------------------------------------------------
# train -> predict -> evaluate, cv
# --------------------------------------------------------------------------

ISIC_HEADER = "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC"
# LesionClassifier's defaults: the "cpu" recipe's head-only first epoch and
# cosine decay leave a random-weight tiny net too little training here
TRAIN_FAST = ["--recipe", "defaults", "--backbone", "tiny", "--weights", "none",
              "--image-size", "32", "32",
              "--param", "lr=3e-3", "--param", "valid_size=None", "--quiet"]


def _plotting_available() -> bool:
    try:
        import skderm.plotting  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def trained(tiny_lesions, tmp_path_factory):
    """A model trained by `skderm train` on the tiny synthetic set: (model path, data)."""
    model = tmp_path_factory.mktemp("cli_model") / "model.skderm"
    code = main(["train", "--data", tiny_lesions.directory, "--epochs", "3",
                 "--param", "module__hidden_units=16", "--param", "optimizer__weight_decay=0.01",
                 "--param", "colour_constancy=shades_of_gray",
                 *TRAIN_FAST, "--out", str(model)])
    assert code == 0
    return model, tiny_lesions


def test_train_saves_a_model_with_the_given_params(trained, capsys):
    from skderm.datasets import DX_CLASSES
    from skderm.persistence import load_model

    model, data = trained
    clf = load_model(model)
    assert list(clf.classes_) == list(DX_CLASSES)
    assert clf.module__hidden_units == 16 and clf.optimizer__weight_decay == 0.01
    assert clf.colour_constancy == "shades_of_gray"  # a bare word is a string
    assert clf.backbone == "tiny" and clf.image_size_ == (32, 32) and len(clf.history_) == 3


def test_predict_plain_csv(trained, tmp_path):
    import pandas as pd

    from skderm.persistence import load_model

    model, data = trained
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(model), str(Path(data.directory) / "images"),
                 "--csv", str(out), "--quiet"]) == 0
    table = pd.read_csv(out)
    classes = list(load_model(model).classes_)
    assert list(table.columns) == ["image", "prediction", "decided_by", *classes]
    assert sorted(table.image) == sorted(data.frame.path) and table.image.is_monotonic_increasing
    proba = table[classes].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (table.decided_by == "argmax").all()
    assert (np.array(classes)[proba.argmax(axis=1)] == table.prediction).all()


def test_predict_isic_format(trained, tmp_path, capsys):
    model, data = trained
    files = sorted(data.frame.path)[:4]
    assert main(["predict", "--model", str(model), *files, "--format", "isic"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ISIC_HEADER and len(lines) == 5
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == [Path(f).stem for f in files]
    assert all(re.fullmatch(r"ISIC_\d{7}", r[0]) for r in rows)
    np.testing.assert_allclose([sum(map(float, r[1:])) for r in rows], 1.0, atol=1e-5)


def test_isic_format_gives_unseen_classes_zero():
    from skderm.cli.predict import isic_frame

    proba = np.array([[0.25, 0.75], [0.6, 0.4]])
    table = isic_frame(["ISIC_0000001", "ISIC_0000002"], proba, np.array(["mel", "nv"]))
    assert ",".join(table.columns) == ISIC_HEADER
    np.testing.assert_array_equal(table.MEL, [0.25, 0.6])
    np.testing.assert_array_equal(table.NV, [0.75, 0.4])
    assert (table[["BCC", "AKIEC", "BKL", "DF", "VASC"]].to_numpy() == 0).all()
    with pytest.raises(ValueError, match="'CAT'"):
        isic_frame(["a"], proba[:1], np.array(["cat", "mel"]))


def test_evaluate_writes_metrics_and_report(trained, tmp_path):
    import json

    import pandas as pd
    from sklearn.metrics import balanced_accuracy_score

    from skderm.persistence import load_model

    model, data = trained
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(model), "--data", data.directory,
                 "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"balanced_accuracy", "mcc", "accuracy", "n_images", "per_class"} <= set(metrics)
    assert metrics["n_images"] == len(data.target)
    assert set(metrics["per_class"]) == set(data.target)
    assert set(metrics["per_class"]["mel"]) >= {"recall", "specificity", "auc"}
    pred = load_model(model).predict(data.data)
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(data.target,
                                                                                 pred))
    report = pd.read_csv(out / "report.csv", index_col=0)
    assert report.loc["balanced_accuracy", "value"] == pytest.approx(
        metrics["balanced_accuracy"])
    if _plotting_available():
        for name in ("confusion_matrix.png", "roc.png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cv_two_folds(tiny_lesions, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "cv"
    assert main(["cv", "--data", tiny_lesions.directory, "--folds", "2", "--epochs", "1",
                 *TRAIN_FAST, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"balanced accuracy \d\.\d{3} \+/- \d\.\d{3} +MCC -?\d\.\d{3} \+/- ",
                     printed)
    results = pd.read_csv(out / "results.csv")
    assert list(results.fold) == [1, 2]
    assert results.n_test.sum() == len(tiny_lesions.target)
    assert results.balanced_accuracy.between(0, 1).all()
    if _plotting_available():
        assert (out / "learning_curves_fold1.png").is_file()
        assert (out / "learning_curves_fold2.png").is_file()


# the "vote" recipe's three members, shrunk: the options apply to each member (the
# image sizes stay the members' own, so the members differ as the real ones do)
VOTE_FAST = ["--recipe", "vote", "--backbone", "tiny", "--weights", "none",
             "--param", "module__hidden_units=8"]


@pytest.fixture(scope="module")
def trained_vote(tiny_lesions, tmp_path_factory):
    model = tmp_path_factory.mktemp("cli_vote") / "vote.skderm"
    assert main(["train", "--data", tiny_lesions.directory, *VOTE_FAST, "--quiet",
                 "--out", str(model)]) == 0
    return model, tiny_lesions


def test_train_vote_saves_the_three_member_soft_vote(trained_vote, capsys):
    from sklearn.ensemble import VotingClassifier

    from skderm.datasets import DX_CLASSES
    from skderm.decision import LesionLevelClassifier
    from skderm.persistence import load_model
    from skderm.recipes import make_ensemble

    model, data = trained_vote
    wrapper = load_model(model)
    # deciding per lesion with the vote's measured prior shift (--decision lesion, the default)
    assert isinstance(wrapper, LesionLevelClassifier)
    assert (wrapper.prior_shift, wrapper.pooling, wrapper.group_column) == (-0.1, "mean",
                                                                           "lesion_id")
    np.testing.assert_allclose(wrapper.class_prior_,
                               data.target.value_counts(normalize=True)[wrapper.classes_])
    vote = wrapper.estimator_
    assert isinstance(vote, VotingClassifier) and vote.voting == "soft" and vote.weights is None
    assert list(vote.classes_) == list(DX_CLASSES)
    assert list(vote.named_estimators_) == ["cpu", "e24", "lite2"]
    # each member keeps its own recipe except what the options set for all
    recipe = dict(make_ensemble("vote").estimators)
    for name, member in vote.named_estimators_.items():
        assert member.backbone == "tiny" and member.image_size_ == recipe[name].image_size
        assert member.module__hidden_units == 8 and member.freeze_until is None
        assert len(member.history_) == member.max_epochs == recipe[name].max_epochs
        assert member.metadata_columns == ["age", "sex", "localization"]
        assert member.criterion == "logit_adjusted"
        # a Mixup object is not a plain value: the file records it as text, not to rebuild
        assert member.mixup is None
        assert member.dropped_params_["mixup"] == "Mixup(cutmix_alpha=1.0, mixup_alpha=0.4)"
    assert [len(m.history_) for m in vote.estimators_] == [12, 24, 12]


def test_predict_and_evaluate_read_a_vote(trained_vote, tmp_path, capsys):
    import json

    import pandas as pd
    from sklearn.metrics import balanced_accuracy_score

    from skderm.persistence import load_model

    model, data = trained_vote
    vote = load_model(model)  # the LesionLevelClassifier around the soft vote
    out = tmp_path / "pred.csv"
    images = Path(data.directory) / "images"
    assert main(["predict", "--model", str(model), str(images), "--quiet",
                 "--csv", str(out)]) == 1  # the members read metadata: --metadata is needed
    assert main(["predict", "--model", str(model), str(images), "--metadata",
                 _metadata_csv(data), "--csv", str(out), "--quiet"]) == 0
    table = pd.read_csv(out)
    frame = data.data.set_index(data.data["path"].map(lambda p: Path(p).name))
    X = frame.loc[[Path(p).name for p in table.image]]
    expected = vote.predict_proba(X)  # each lesion's images pooled: the CSV has lesion_id
    np.testing.assert_allclose(table[list(vote.classes_)].to_numpy(), expected, atol=1e-5)
    assert (table.prediction == vote.predict(X)).all()
    assert (table.groupby(X["lesion_id"].to_numpy())[list(vote.classes_)].nunique() == 1).all(
        axis=None)
    # an empty lesion_id is a missing one: that image is decided on its own
    table = pd.read_csv(_metadata_csv(data))
    table["lesion_id"] = table["lesion_id"].astype(object)
    table.loc[:9, "lesion_id"] = ""
    some_missing = tmp_path / "some_missing.csv"
    table.to_csv(some_missing, index=False)
    assert main(["predict", "--model", str(model), str(images), "--metadata",
                 str(some_missing), "--csv", str(out), "--quiet"]) == 0
    partial = X.assign(lesion_id=X.index.map(
        dict(zip(table.image_id + ".jpg", table.lesion_id.replace("", None), strict=True))))
    np.testing.assert_allclose(pd.read_csv(out)[list(vote.classes_)].to_numpy(),
                               vote.predict_proba(partial), atol=1e-5)
    # without lesion ids: each image on its own, with the shift, and a note that says so
    no_lesions = tmp_path / "no_lesions.csv"
    pd.read_csv(_metadata_csv(data)).drop(columns="lesion_id").to_csv(no_lesions, index=False)
    assert main(["predict", "--model", str(model), str(images), "--metadata",
                 str(no_lesions), "--csv", str(out), "--quiet"]) == 0
    assert "without a 'lesion_id'" in capsys.readouterr().err
    per_image = load_model(model).set_params(group_column=None)
    table = pd.read_csv(out)
    np.testing.assert_allclose(table[list(vote.classes_)].to_numpy(), per_image.predict_proba(X),
                               atol=1e-5)
    assert (table.prediction == per_image.predict(X)).all()
    report = tmp_path / "report"
    assert main(["evaluate", "--model", str(model), "--data", data.directory,
                 "--out", str(report), "--quiet"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(data.target, vote.predict(data.data)))


def test_an_interrupted_vote_resumes_each_member_from_its_own_checkpoint(trained_vote, tmp_path,
                                                                          capfd):
    # the members' checkpoints share OUT.checkpoints (their settings name their files):
    # after a run killed while the third member trained, --resume trains only that one
    import torch

    from skderm.persistence import load_model

    model, data = trained_vote
    ckpts = Path(f"{model}.checkpoints")
    assert len(list(ckpts.glob("*.ckpt"))) == 3
    lite2 = max(ckpts.glob("*.ckpt"), key=lambda f: f.stat().st_mtime)  # the last member's
    state = torch.load(lite2, map_location="cpu", weights_only=True)
    assert len(state["history"]) == 12
    lite2.unlink()
    out = tmp_path / "again.skderm"
    args = ["train", "--data", data.directory, *VOTE_FAST, "--checkpoint-dir", str(ckpts),
            "--out", str(out)]
    capfd.readouterr()
    assert main([*args, "--resume"]) == 0
    printed = capfd.readouterr().out
    assert printed.count("after epoch 12.") == 1 and printed.count("after epoch 24.") == 1
    assert printed.count("training from the start") == 1
    X = data.data
    np.testing.assert_allclose(load_model(out).predict_proba(X),
                               load_model(model).predict_proba(X), atol=1e-6)


def test_the_cpu_recipe_decides_per_lesion_unless_told_per_image(tiny_lesions, tmp_path, capsys):
    from skderm import LesionClassifier
    from skderm.decision import LesionLevelClassifier
    from skderm.persistence import load_model

    fast = ["--recipe", "cpu", "--backbone", "tiny", "--weights", "none", "--epochs", "1",
            "--image-size", "32", "32", "--quiet", "--data", tiny_lesions.directory]
    assert main(["train", *fast, "--out", str(tmp_path / "lesion.skderm")]) == 0
    wrapper = load_model(tmp_path / "lesion.skderm")
    assert isinstance(wrapper, LesionLevelClassifier) and wrapper.prior_shift == -0.15
    assert isinstance(wrapper.estimator_, LesionClassifier)
    assert main(["train", *fast, "--decision", "image", "--out", str(tmp_path / "img.skderm")]) == 0
    plain = load_model(tmp_path / "img.skderm")
    assert isinstance(plain, LesionClassifier)
    # the same network either way: only the decision differs
    X = tiny_lesions.data
    np.testing.assert_allclose(plain.predict_proba(X), wrapper.set_params(
        group_column=None).estimator_.predict_proba(X), atol=1e-6)
    # cv scores the per-lesion decision and, from the same networks, the image-by-image argmax
    import pandas as pd

    cv_opts = ["cv", *[o for o in fast if o != "--quiet"], "--folds", "2"]
    capsys.readouterr()
    assert main([*cv_opts, "--out", str(tmp_path / "cv")]) == 0
    printed = capsys.readouterr().out
    assert "image by image, argmax: balanced accuracy" in printed and "prior shift -0.15" in printed
    results = pd.read_csv(tmp_path / "cv" / "results.csv")
    assert {"balanced_accuracy", "mcc", "balanced_accuracy_image", "mcc_image"} <= set(results)
    assert results[["balanced_accuracy_image", "mcc_image"]].notna().all(axis=None)
    assert main([*cv_opts, "--decision", "image", "--out", str(tmp_path / "cv_image")]) == 0
    plain = pd.read_csv(tmp_path / "cv_image" / "results.csv")
    assert "balanced_accuracy_image" not in plain
    # the same networks (same seed): --decision image scores what the image columns did
    np.testing.assert_allclose(plain.balanced_accuracy, results.balanced_accuracy_image)
    np.testing.assert_allclose(plain.mcc, results.mcc_image)
    # evaluate says how the wrapped model decided
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "lesion.skderm"), "--data",
                 tiny_lesions.directory, "--out", str(tmp_path / "report")]) == 0
    assert "deciding per lesion (each lesion_id's images pooled), prior shift -0.15" in (
        capsys.readouterr().out)


def test_cv_of_the_vote_reports_each_members_epochs(tiny_lesions, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "cv"
    assert main(["cv", "--data", tiny_lesions.directory, "--folds", "2", *VOTE_FAST,
                 "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    results = pd.read_csv(out / "results.csv", dtype={"epochs": str})
    assert list(results.epochs) == ["2+2+2", "2+2+2"]
    assert results.balanced_accuracy.between(0, 1).all()
    if _plotting_available():
        assert sorted(p.name for p in out.glob("learning_curves_*.png")) == sorted(
            f"learning_curves_fold{k}_{m}.png" for k in (1, 2) for m in ("cpu", "e24", "lite2"))


def test_bad_param_name_is_one_line_naming_it(tiny_lesions, tmp_path, capsys):
    code = main(["train", "--data", tiny_lesions.directory, "--param", "freeze_untill=blocks.3",
                 "--out", str(tmp_path / "m.skderm")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "'freeze_untill'" in err and "freeze_until" in err
    assert not (tmp_path / "m.skderm").exists()


def test_model_that_is_not_a_model_is_one_clear_line(tiny_lesions, capsys):
    not_model = tiny_lesions.frame.path[0]
    code = main(["predict", "--model", not_model, not_model])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "not a readable skderm model file" in err and Path(not_model).name in err


def test_console_script_predicts(trained, tmp_path):
    script = Path(sys.executable).with_name("skderm")
    if not script.is_file():
        pytest.skip(f"console script not installed beside {sys.executable}")
    model, data = trained
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([str(script), "predict", "--model", str(model), "--format", "isic",
                           str(Path(data.directory) / "images")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0] == ISIC_HEADER
    assert len(proc.stdout.splitlines()) == len(data.target) + 1


def test_evaluate_without_plotting_skips_pngs_with_a_notice(trained, tmp_path, monkeypatch,
                                                            capsys):
    model, data = trained
    monkeypatch.setitem(sys.modules, "skderm.plotting", None)  # import fails as if absent
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(model), "--data", data.directory,
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("note: no plots") == 1
    assert "akiec" in printed  # the per-class table needs no plots
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.csv"]


def test_train_shows_progress_unless_quiet(tiny_lesions, tmp_path, capfd, monkeypatch):
    import skderm.cli.models
    import skderm.images

    loud_fast = [a for a in TRAIN_FAST if a != "--quiet"]
    args = ["train", "--data", tiny_lesions.directory, "--epochs", "1", *loud_fast]
    skderm.images.clear_cache()
    assert main([*args, "--out", str(tmp_path / "log.skderm")]) == 0
    logged = capfd.readouterr()  # stderr is not a terminal here: a log gets no bars
    assert "decoded" not in logged.err and "train_loss" in logged.out
    monkeypatch.setattr(skderm.cli.models, "watched", lambda: True)
    skderm.images.clear_cache()
    assert main([*args, "--out", str(tmp_path / "a.skderm")]) == 0
    loud = capfd.readouterr()
    assert "decoded" in loud.err and "train_loss" in loud.out  # decoded images, epoch table
    skderm.images.clear_cache()
    assert main([*args, "--quiet", "--out", str(tmp_path / "b.skderm")]) == 0
    quiet = capfd.readouterr()
    assert "decoded" not in quiet.err and "train_loss" not in quiet.out


# --------------------------------------------------------------------------
# models that read metadata
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_with_metadata(tiny_lesions, tmp_path_factory):
    model = tmp_path_factory.mktemp("cli_meta") / "meta.skderm"
    assert main(["train", "--data", tiny_lesions.directory, "--epochs", "2",
                 "--param", "metadata_columns=['age','sex','localization']",
                 *TRAIN_FAST, "--out", str(model)]) == 0
    return model, tiny_lesions


def _metadata_csv(data) -> str:
    return str(next(Path(data.directory).glob("*.csv")))


def test_predict_metadata_model_reads_the_metadata_csv(trained_with_metadata, tmp_path):
    import pandas as pd

    from skderm.persistence import load_model

    model, data = trained_with_metadata
    out = tmp_path / "pred.csv"
    images = Path(data.directory) / "images"
    assert main(["predict", "--model", str(model), str(images), "--metadata",
                 _metadata_csv(data), "--csv", str(out), "--quiet"]) == 0
    table = pd.read_csv(out)
    clf = load_model(model)
    # the same probabilities as predicting the loader's frame in Python, row by row
    frame = data.data.set_index(data.data["path"].map(lambda p: Path(p).name))
    expected = clf.predict_proba(frame.loc[[Path(p).name for p in table.image]])
    np.testing.assert_allclose(table[list(clf.classes_)].to_numpy(), expected, atol=1e-5)
    # metadata matters to this model: other ages give other probabilities
    older = frame.loc[[Path(p).name for p in table.image]].assign(age=90.0)
    assert not np.allclose(clf.predict_proba(older), expected, atol=1e-5)


def test_predict_metadata_model_without_or_with_a_bad_csv(trained_with_metadata, tmp_path,
                                                           capsys):
    import pandas as pd

    model, data = trained_with_metadata
    images = str(Path(data.directory) / "images")
    assert main(["predict", "--model", str(model), images]) != 0
    assert "--metadata" in capsys.readouterr().err

    table = pd.read_csv(_metadata_csv(data))
    table.drop(columns="sex").to_csv(tmp_path / "nosex.csv", index=False)
    assert main(["predict", "--model", str(model), images, "--metadata",
                 str(tmp_path / "nosex.csv")]) != 0
    assert "no column(s) ['sex']" in capsys.readouterr().err

    table.iloc[1:].to_csv(tmp_path / "short.csv", index=False)
    assert main(["predict", "--model", str(model), images, "--metadata",
                 str(tmp_path / "short.csv")]) != 0
    err = capsys.readouterr().err
    assert "no row for 1 image(s)" in err and str(table.image_id.iloc[0]) in err

    assert main(["predict", "--model", str(model), images, "--metadata",
                 str(tmp_path / "absent.csv")]) != 0
    assert "no metadata file" in capsys.readouterr().err


def test_predict_image_model_ignores_metadata_with_a_note(trained, capsys):
    model, data = trained
    images = str(Path(data.directory) / "images")
    assert main(["predict", "--model", str(model), images, "--metadata",
                 _metadata_csv(data)]) == 0
    assert "reads no metadata" in capsys.readouterr().err


# --------------------------------------------------------------------------
# one decision wherever a user reads it
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shifted(tiny_lesions, tmp_path_factory):
    """A 'cpu' recipe model deciding per lesion, with a prior shift strong enough to
    change labels on these images."""
    from skderm.persistence import save_model
    from skderm.recipes import make_lesion_level

    clf = make_lesion_level("cpu", backbone="tiny", weights=None, image_size=(32, 32),
                            max_epochs=2, verbose=0)
    clf.fit(tiny_lesions.data, tiny_lesions.target)
    proba = clf.predict_proba(tiny_lesions.data)
    for shift in (-0.5, -1.0, -2.0, 0.5, 1.0, 2.0, 4.0):
        clf.set_params(prior_shift=shift)
        if (clf.decide(proba) != clf.classes_[proba.argmax(axis=1)]).any():
            break
    else:
        pytest.fail("no prior shift changes a label of this model")
    path = tmp_path_factory.mktemp("cli_shifted") / "shifted.skderm"
    save_model(clf, path)
    return path, tiny_lesions


def test_isic_file_and_plain_csv_agree_with_skderms_label(shifted, tmp_path, capsys):
    """With a prior shift, the ISIC file holds the decision scores: their argmax is the
    label of the plain CSV, which names how it was decided."""
    import pandas as pd

    from skderm.persistence import load_model

    model, data = shifted
    args = ["predict", "--model", str(model), str(Path(data.directory) / "images"),
            "--metadata", _metadata_csv(data), "--quiet"]
    assert main([*args, "--csv", str(tmp_path / "plain.csv")]) == 0
    assert main([*args, "--format", "isic", "--csv", str(tmp_path / "isic.csv")]) == 0
    assert "decision scores" in capsys.readouterr().err
    plain, isic = pd.read_csv(tmp_path / "plain.csv"), pd.read_csv(tmp_path / "isic.csv")
    clf = load_model(model)
    assert (plain.decided_by == "deciding per lesion (each lesion_id's images pooled), "
            f"prior shift {clf.prior_shift:+g}").all()
    scores = isic[ISIC_HEADER.split(",")[1:]].to_numpy()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    isic_labels = np.array(ISIC_HEADER.split(",")[1:])[scores.argmax(axis=1)]
    assert list(isic.image) == [Path(p).stem for p in plain.image]
    assert (np.char.lower(isic_labels.astype(str)) == plain.prediction.to_numpy()).all()
    # the shift changes some labels here, so the probabilities' argmax would not do
    proba = plain[list(clf.classes_)].to_numpy()
    assert (clf.classes_[proba.argmax(axis=1)] != plain.prediction).any()


def _isic_truth(data, path) -> None:
    import pandas as pd

    truth = pd.DataFrame({"image": data.frame.image_id})
    for code in ISIC_HEADER.split(",")[1:]:
        truth[code] = (data.target.str.upper() == code).astype(float)
    truth.to_csv(path, index=False)


@pytest.mark.slow
def test_isic_scorer_agrees_in_an_environment_it_supports(shifted, tmp_path):
    """The official ISIC 2018 scorer (isic-challenge-scoring 5.6.0, which needs pandas < 3)
    scores our --format isic file as skderm scores its own labels. The test builds the
    scorer's environment from PyPI, as a user would."""
    from sklearn.metrics import balanced_accuracy_score

    from skderm.persistence import load_model

    venv = tmp_path / "isic-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "-q", "isic-challenge-scoring==5.6.0",
                          "pandas<3"], capture_output=True, text=True, timeout=1200)
    if pip.returncode:
        pytest.skip(f"cannot install isic-challenge-scoring from PyPI here: {pip.stderr[-500:]}")
    model, data = shifted
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(model), "--format", "isic", "--csv", str(pred),
                 "--metadata", _metadata_csv(data), "--quiet",
                 str(Path(data.directory) / "images")]) == 0
    _isic_truth(data, tmp_path / "truth.csv")
    code = ("import sys; from pathlib import Path; from isic_challenge_scoring.classification "
            "import ClassificationScore as S, ClassificationMetric as M; print(S.from_file("
            "Path(sys.argv[1]), Path(sys.argv[2]), M.BALANCED_ACCURACY).overall)")
    scorer = subprocess.run([python, "-c", code, str(tmp_path / "truth.csv"), str(pred)],
                            capture_output=True, text=True, timeout=300)
    assert scorer.returncode == 0, scorer.stderr[-2000:]
    labels = load_model(model).predict(data.data)
    assert float(scorer.stdout.split()[-1]) == pytest.approx(
        balanced_accuracy_score(data.target, labels))


# --------------------------------------------------------------------------
# outputs never overwrite inputs nor land in the data; every error says what to do
# --------------------------------------------------------------------------

def _digests(*roots) -> dict:
    """Content digest of every file under ``roots`` (files or folders)."""
    import hashlib

    found = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        found |= {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    return found


def _refused(argv, capsys) -> str:
    """Run ``argv``; assert it fails with an OutputPathError; return the message."""
    from skderm.exceptions import OutputPathError

    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("skderm: error: ") and err.count("\n") == 1
    with pytest.raises(OutputPathError):
        main(["--debug", *argv])
    return err


def _cases(model: Path, data) -> list[tuple[str, list[str], str]]:
    """(what, argv, path that must be named) for outputs drawn from each command's own inputs
    and data folders."""
    root = Path(data.directory)
    csv, images = _metadata_csv(data), root / "images"
    image = sorted(images.iterdir())[0]
    model_dir = model.parent
    train = ["train", "--data", str(root), *TRAIN_FAST, "--epochs", "1"]
    cv = ["cv", "--data", str(root), *TRAIN_FAST, "--epochs", "1", "--folds", "2"]
    predict = ["predict", "--model", str(model), str(images), "--metadata", csv, "--quiet"]
    evaluate = ["evaluate", "--model", str(model), "--data", str(root), "--quiet"]
    cases = []
    for target in (csv, str(image), str(root / "model.skderm"), str(images / "m.skderm"),
                   str(root), str(model_dir)):
        cases.append(("train --out", [*train, "--out", target], target))
    for target in (str(root), str(root / "ck"), str(images), csv):
        cases.append(("train --checkpoint-dir", [*train, "--out", str(model_dir / "x.skderm"),
                                                 "--checkpoint-dir", target], target))
    for target in (str(image), csv, str(model), str(images), str(images / "pred.csv"),
                   str(model_dir)):
        cases.append(("predict --csv", [*predict, "--csv", target], target))
    for target in (str(root), str(root / "report"), str(images), csv, str(model)):
        cases.append(("evaluate --out", [*evaluate, "--out", target], target))
    for target in (str(root), str(root / "cv"), csv):
        cases.append(("cv --out", [*cv, "--out", target], target))
    return cases


def test_each_output_drawn_from_the_inputs_is_refused_before_any_work(trained, capsys,
                                                                      monkeypatch):
    """Every case names the path and what to do, and nothing in the data changes."""
    from skderm import LesionClassifier

    model, data = trained

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output paths were checked")

    monkeypatch.setattr(LesionClassifier, "fit", no_work)
    monkeypatch.setattr(LesionClassifier, "predict_proba", no_work)
    before = _digests(data.directory, model)
    for what, argv, target in _cases(model, data):
        err = _refused(argv, capsys)
        assert repr(target) in err, (what, err)
        assert "choose" in err or "give a" in err, (what, err)
    assert _digests(data.directory, model) == before


def test_a_folder_where_a_file_goes_and_the_reverse(trained, tmp_path, capsys):
    model, data = trained
    folder = tmp_path / "existing"
    folder.mkdir()
    err = _refused(["train", "--data", data.directory, *TRAIN_FAST, "--out", str(folder)],
                   capsys)
    assert "is a folder; give a file name" in err
    assert ".skderm-tmp-" not in err and ".skderm_model_" not in err
    assert not Path(f"{folder}.checkpoints").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    err = _refused(["evaluate", "--model", str(model), "--data", data.directory,
                    "--out", str(a_file)], capsys)
    assert "is a file; give a folder" in err and a_file.read_text() == "mine"
    err = _refused(["predict", "--model", str(model), str(Path(data.directory) / "images"),
                    "--csv", str(a_file / "pred.csv")], capsys)
    assert "which is a file" in err


def test_property_no_command_modifies_its_data(trained, capsys):
    """Hypothesis draws a command and an output path among its inputs and data folders."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    model, data = trained
    cases = _cases(model, data)
    before = _digests(data.directory, model)

    @settings(max_examples=12, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(cases), st.sampled_from(["", "/", "/."]))
    def check(case, tail):
        _, argv, target = case
        if tail and os.path.isdir(target):  # the same folder, spelt otherwise
            argv = [a + tail if a == target else a for a in argv]
        _refused(argv, capsys)
        assert _digests(data.directory, model) == before

    check()


# --------------------------------------------------------------------------
# errors that help
# --------------------------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["train", "--data", "d", "--out", "m", "--epochs", "0"], "--epochs: 0 is too small"),
    (["cv", "--data", "d", "--epochs", "-2"], "--epochs: -2 is too small"),
    (["cv", "--data", "d", "--folds", "1"], "--folds: 1 is too small: use 2 or more"),
    (["demo", "--batch-size", "0"], "--batch-size: 0 is too small"),
    (["predict", "--model", "m", "x.jpg", "--model-sha256", "abc"], "not a SHA-256 digest"),
])
def test_bad_numbers_fail_at_parse_time_naming_the_option(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and needle in capsys.readouterr().err


def test_an_error_without_words_still_says_what_to_do(tiny_lesions, tmp_path, monkeypatch,
                                                      capsys):
    import skderm

    def out_of_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(skderm, "load_ham10000", out_of_memory)
    assert main(["train", "--data", tiny_lesions.directory, "--out",
                 str(tmp_path / "m.skderm")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("skderm: error: out of memory") and "--image-size" in err

    def silent(*args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(skderm, "load_ham10000", silent)
    assert main(["train", "--data", tiny_lesions.directory, "--out",
                 str(tmp_path / "m.skderm")]) == 1
    assert "RuntimeError with no message; run again with --debug" in capsys.readouterr().err


def test_model_sha256_is_checked_when_given(trained, tmp_path, capsys):
    from skderm._utils.files import file_digest

    model, data = trained
    image = sorted(data.frame.path)[0]
    good = file_digest(model)
    assert main(["predict", "--model", str(model), image, "--model-sha256", good]) == 0
    bad = ("0" if good[0] != "0" else "1") + good[1:]
    for argv in (["predict", "--model", str(model), image],
                 ["evaluate", "--model", str(model), "--data", data.directory,
                  "--out", str(tmp_path / "r")]):
        capsys.readouterr()
        assert main([*argv, "--model-sha256", bad]) == 1
        assert Path(model).name in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
