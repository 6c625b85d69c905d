"""The benchmark scripts run and report what their tables claim (tiny settings)."""

import importlib.util
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_precision_times_every_setting_and_the_package_default(tmp_path):
    bench = _load("bench_precision")
    report = bench.main(["--device", "cpu", "--backbones", "tiny", "--image-size", "32", "32",
                         "--batch-size", "4", "--steps", "1", "--repeats", "1", "--warmup", "0",
                         "--freeze-until", "1", "--end-to-end", "--e2e-images", "16",
                         "--out", str(tmp_path)])
    rows = report["backbones"]["tiny"]
    assert list(rows) == [label for label, _, _ in bench.SETTINGS] + [
        "fp32 channels_last, frozen until 1", "bf16 channels_last, frozen until 1"]
    assert all(r["train"] > 0 and r["infer"] > 0 for r in rows.values())
    assert rows["fp32"]["train_ratio"] == pytest.approx(1.0)
    e2e = report["end_to_end"]["tiny"]
    # what LesionClassifier picks on a CPU by default: channels_last, no autocast
    assert e2e["channels_last"] is True and e2e["mixed_precision"] is False
    assert e2e["images_per_s"] > 0
    saved = json.loads((tmp_path / "precision_cpu.json").read_text())
    assert set(saved["backbones"]["tiny"]) == set(rows)
    table = (tmp_path / "precision_cpu.md").read_text()
    assert "| tiny | bf16 channels_last |" in table


def test_ham10000_cv_table_says_one_fold_instead_of_nan():
    bench = _load("ham10000_cv")
    row = {"recipe": "r", "setup": "s", "folds_done": 1, "n_folds": 5, "bacc_mean": 0.7,
           "bacc_sd": float("nan"), "mcc_mean": 0.6, "mcc_sd": float("nan"),
           "bacc_ci": [0.6, 0.8], "mcc_ci": [0.5, 0.7], "fit_minutes_per_fold": 1.0,
           "bacc_lesion_avg_mean": 0.7, "mcc_lesion_avg_mean": 0.6,
           "recall": {"a": 0.5, "b": 0.9}}
    table = bench.markdown([row, {**row, "folds_done": 2, "bacc_sd": 0.01, "mcc_sd": 0.02}])
    assert "nan" not in table
    assert "0.700 (1 fold)" in table and "0.600 (1 fold)" in table
    assert "0.700 +/- 0.010" in table and "0.600 +/- 0.020" in table


def test_ham10000_cv_table_names_the_device_of_gpu_folds(monkeypatch):
    import torch

    bench = _load("ham10000_cv")
    row = {"recipe": "r", "setup": "s", "folds_done": 5, "n_folds": 5, "bacc_mean": 0.7,
           "bacc_sd": 0.01, "mcc_sd": 0.02, "mcc_mean": 0.6, "bacc_ci": [0.6, 0.8],
           "mcc_ci": [0.5, 0.7], "fit_minutes_per_fold": 1.5, "bacc_lesion_avg_mean": 0.7,
           "mcc_lesion_avg_mean": 0.6, "recall": {"a": 0.5}}
    table = bench.markdown([{**row, "device": "cpu"}, {**row, "recipe": "g", "device": "H100"}])
    assert "| 1.5 min |" in table and "| 1.5 min (H100) |" in table
    # a fold fitted on "auto" is named by the device it resolved to, not "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert bench._device_name("auto") == "cpu"
    assert bench._device_name("cpu") == "cpu"


def _save_fold(bench, recipe, k, test, proba, classes=("a", "b")):
    np.savez(bench._fold_file(recipe, k), test=test, proba=proba,
             classes=np.asarray(classes), device="cpu", fit_seconds=60.0, seconds=70.0,
             epochs=3, epoch_seconds=60.0)


def test_ham10000_cv_ensemble_votes_saved_folds_and_drops_stale_ones(tmp_path, monkeypatch):
    bench = _load("ham10000_cv")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    (tmp_path / "oof").mkdir()
    test = np.array([3, 1])
    _save_fold(bench, "m1", 0, test, np.array([[0.9, 0.1], [0.2, 0.8]]))
    _save_fold(bench, "m2", 0, test, np.array([[0.3, 0.7], [0.4, 0.6]]))
    _save_fold(bench, "m1", 1, test, np.array([[0.5, 0.5], [0.5, 0.5]]))
    # fold 1 voted by an earlier run of other members: m2 has no fold 1 now
    _save_fold(bench, "ensemble_x", 1, test, np.array([[1.0, 0.0], [1.0, 0.0]]))
    bench.ensemble_folds("ensemble_x", ["m1", "m2"], [3.0, 1.0], n_folds=2)
    folds = bench._load_folds("ensemble_x", 2)
    assert list(folds) == [0]
    np.testing.assert_allclose(folds[0]["proba"], [[0.75, 0.25], [0.25, 0.75]])
    assert folds[0]["test"].tolist() == [3, 1]
    assert folds[0]["members"].tolist() == ["m1", "m2"]
    assert folds[0]["fit_seconds"] == 120.0
    assert bench._is_ensemble("ensemble_x") and bench._is_ensemble("ensemble")
    assert not bench._is_ensemble("ensembles") and not bench._is_ensemble("gpu")


def test_operating_points_shift_moves_decisions_between_priors(tmp_path):
    bench = _load("operating_points")
    classes = np.array(["common", "rare"])
    y_train = np.array(["common"] * 9 + ["rare"])
    proba = np.array([[0.6, 0.4], [0.3, 0.7], [0.85, 0.15]])
    # t = 0: the probabilities' own argmax
    assert bench.shifted_predictions(proba, classes, y_train, 0.0).tolist() == [
        "common", "rare", "common"]
    # t = 1 divides by the prior (0.9 vs 0.1): 0.4 / 0.1 beats 0.6 / 0.9
    assert bench.shifted_predictions(proba, classes, y_train, 1.0).tolist() == [
        "rare", "rare", "rare"]
    # t < 0 favours the frequent class: 0.7 * 0.1 loses to 0.3 * 0.9
    assert bench.shifted_predictions(proba, classes, y_train, -1.0).tolist() == [
        "common", "common", "common"]
    with pytest.raises(ValueError, match="rare"):
        bench.shifted_predictions(proba, classes, np.array(["common"] * 3), 0.5)


def test_operating_points_scores_soft_votes_of_saved_folds(tmp_path):
    bench = _load("operating_points")
    cv = _load("ham10000_cv")
    y = np.array(["a", "b", "a", "b", "a", "a"])
    oof = tmp_path / "oof"
    oof.mkdir()
    for k, test in enumerate([np.array([0, 1, 2]), np.array([3, 4, 5])]):
        # m1 right on every image, m2 wrong on every image but less sure
        right = np.where(y[test][:, None] == np.array(["a", "b"]), 0.9, 0.1)
        np.savez(oof / f"m1_fold{k}.npz", test=test, proba=right, classes=np.array(["a", "b"]))
        wrong = np.where(right == 0.9, 0.4, 0.6)
        np.savez(oof / f"m2_fold{k}.npz", test=test, proba=wrong, classes=np.array(["a", "b"]))
    assert cv._fold_file("m1", 0).name == "m1_fold0.npz"  # the files ham10000_cv writes
    r = bench.frontier("m1+m2", y, [0.0], n_folds=2, oof=oof)
    assert r["points"][0]["bacc_mean"] == 1.0 and r["points"][0]["mcc_mean"] == 1.0
    r = bench.frontier("m2", y, [0.0], n_folds=2, oof=oof)
    assert r["points"][0]["bacc_mean"] == 0.0
    with pytest.raises(FileNotFoundError, match="--recipes m3"):
        bench.frontier("m1+m3", y, [0.0], n_folds=2, oof=oof)
    table = bench.markdown([r])
    assert "| m2 | 0.000 / " in table and "t = +0" in table
    # a named vote: its own row name, the members kept beside it
    named = bench.frontier("both=m1+m2", y, [0.0], n_folds=2, oof=oof)
    assert named["recipe"] == "both" and named["members"] == ["m1", "m2"]
    assert named["points"] == bench.frontier("m1+m2", y, [0.0], n_folds=2, oof=oof)["points"]
    assert "| both | 1.000 / 1.000 |" in bench.markdown([named])
    for bad in ("=m1+m2", "both="):
        with pytest.raises(ValueError, match="name=a"):
            bench.frontier(bad, y, [0.0], n_folds=2, oof=oof)


def test_operating_points_on_one_fold_writes_valid_json(tmp_path):
    bench = _load("operating_points")
    y = np.array(["a", "b", "a", "b", "a", "b"])  # the last two: fold 0's training images
    oof = tmp_path / "oof"
    oof.mkdir()
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    np.savez(oof / "m_fold0.npz", test=np.arange(4), proba=proba, classes=np.array(["a", "b"]))
    r = bench.frontier("m", y, [0.0, 0.5], n_folds=1, oof=oof)
    assert r["n_folds"] == 1 and r["points"][0]["bacc_mean"] == 1.0
    assert r["points"][0]["bacc_sd"] is None and r["points"][0]["mcc_sd"] is None
    json.loads(json.dumps(r, allow_nan=False))  # strict JSON: no NaN


def test_operating_points_rejects_bad_shifts_by_name(capsys):
    bench = _load("operating_points")
    with pytest.raises(SystemExit):
        bench.main(["--data", "unused", "--recipes", "m1", "--shifts=-0.5,zero"])
    assert "--shifts '-0.5,zero'" in capsys.readouterr().err


def test_ham10000_cv_longer_variant_is_the_cpu_recipe_trained_longer():
    import argparse

    bench = _load("ham10000_cv")
    args = argparse.Namespace(image_size=(150, 200), epochs=None, weights=None)
    base = bench.build("finetune_192_meta_all_fu3_la_mix04_cut10_tc", args)
    longer = bench.build("finetune_192_meta_all_fu3_la_mix04_cut10_e24_tc", args)
    assert (base.max_epochs, longer.max_epochs) == (12, 24)
    changed = {k for k, v in longer.get_params(deep=False).items()
               if v != base.get_params(deep=False)[k]}
    assert changed == {"max_epochs"}
    # its cosine schedule anneals differently from epoch 1: in the shared
    # folder it must not resume the 12-epoch runs' final checkpoints
    from skderm.classifier.checkpoint import checkpoint_dir, checkpoint_path

    class Data:  # what the fingerprint reads of a training dataset
        images, y, groups, metadata = [np.zeros((4, 4, 3), np.uint8)], np.array([0]), None, None

        def __len__(self):
            return 1

    data = Data()
    folder = checkpoint_dir(base)
    assert folder is not None and folder == checkpoint_dir(longer)
    assert checkpoint_path(base, data, folder) != checkpoint_path(longer, data, folder)


def test_ham10000_cv_lite2_variant_is_the_cpu_recipe_on_a_larger_backbone():
    import argparse

    bench = _load("ham10000_cv")
    args = argparse.Namespace(image_size=(150, 200), epochs=None, weights=None)
    base = bench.build("finetune_192_meta_all_fu3_la_mix04_cut10_tc", args)
    lite2 = bench.build("finetune_240_lite2_meta_all_fu3_la_mix04_cut10_tc", args)
    changed = {k: v for k, v in lite2.get_params(deep=False).items()
               if v != base.get_params(deep=False)[k]}
    # make_recipe drops freeze_until for another backbone unless it is given:
    # Lite2's stem and blocks 0-2 stay frozen as Lite0's do
    assert changed == {"backbone": "tf_efficientnet_lite2", "image_size": (240, 320)}
    assert lite2.freeze_until == "blocks.3"
    assert "tf_efficientnet_lite2 240x320" in bench.describe(
        "finetune_240_lite2_meta_all_fu3_la_mix04_cut10_tc", args)


def test_ham10000_cv_colour_constancy_variants_change_only_that():
    import argparse

    bench = _load("ham10000_cv")
    args = argparse.Namespace(image_size=(150, 200), epochs=None, weights=None,
                              backbones=["tf_efficientnet_lite0"], C=0.05)
    base = bench.build("finetune_192_meta_all_fu3_la_mix04_cut10_tc", args)
    cc = bench.build("finetune_192_meta_all_fu3_la_mix04_cut10_tc_cc6", args)
    changed = {k: v for k, v in cc.get_params(deep=False).items()
               if v != base.get_params(deep=False)[k]}
    assert changed == {"colour_constancy": "shades_of_gray"}
    assert "colour constancy shades_of_gray" in bench.describe(
        "finetune_192_meta_all_fu3_la_mix04_cut10_tc_cc6", args)
    for plain, corrected in (("features", "features_cc"), ("fusion", "fusion_cc")):
        a = bench.build(plain, args).get_params()
        b = bench.build(corrected, args).get_params()
        diff = {k for k in a if k in b and repr(a[k]) != repr(b[k])}
        # the embedding step's parameter and the objects that contain it
        assert {k for k in diff if k.endswith("colour_constancy")} == {
            "columntransformer__image__backbonefeatures__colour_constancy"}
        assert "colour constancy shades_of_gray" in bench.describe(corrected, args)
        assert "colour constancy" not in bench.describe(plain, args)


def test_the_user_guides_three_network_vote_is_the_benchmarks_members():
    # docs/user_guide/ensembles.rst builds the three-network vote's members with make_recipe:
    # run the guide's own code block, so the test follows the guide as written
    import argparse
    import re

    from skderm import LesionVotingClassifier
    from skderm.recipes import make_recipe

    rst = (BENCH.parent / "docs" / "user_guide" / "ensembles.rst").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"\n(   vote = LesionVotingClassifier\(.*?\)\)\]\))\n", rst,
                                    re.S)
              if '("e24"' in b]
    assert len(blocks) == 1, "the three-network vote's code block is not in ensembles.rst"
    namespace = {"LesionVotingClassifier": LesionVotingClassifier, "make_recipe": make_recipe}
    exec(textwrap.dedent(blocks[0]), namespace)
    members = dict(namespace["vote"].estimators)
    bench = _load("ham10000_cv")
    args = argparse.Namespace(image_size=(150, 200), epochs=None, weights=None)
    guide = {
        "finetune_192_meta_all_fu3_la_mix04_cut10_tc": members["cpu"],
        "finetune_192_meta_all_fu3_la_mix04_cut10_e24_tc": members["e24"],
        "finetune_240_lite2_meta_all_fu3_la_mix04_cut10_tc": members["lite2"],
    }
    for variant, model in guide.items():
        ours, theirs = model.get_params(deep=False), bench.build(variant, args).get_params(deep=False)
        # the benchmark adds its resumable checkpoints; everything else is the same
        differ = {k for k in ours.keys() | theirs.keys() if repr(ours.get(k)) != repr(theirs.get(k))}
        assert differ == {"callbacks__checkpoint__dirname", "warm_start"}, variant


def test_make_ensemble_vote_is_the_benchmarks_three_network_vote():
    # `skderm train --recipe vote` / make_ensemble("vote") must train the networks
    # whose cross-validated vote benchmarks/README.md reports
    import argparse

    from skderm.recipes import make_ensemble

    bench = _load("ham10000_cv")
    args = argparse.Namespace(image_size=(150, 200), epochs=None, weights=None)
    vote = make_ensemble("vote")
    assert vote.voting == "soft" and vote.weights is None
    members = dict(vote.estimators)
    # the members the saved vote averaged, from its out-of-fold file, with equal weights
    saved = np.load(BENCH / "results" / "oof" / "ensemble_cpu_e24_lite2_fold0.npz")
    np.testing.assert_array_equal(saved["member_weights"], [1.0, 1.0, 1.0])
    for name, variant in zip(["cpu", "e24", "lite2"], saved["members"].tolist(), strict=True):
        ours = members[name].get_params(deep=False)
        theirs = bench.build(variant, args).get_params(deep=False)
        differ = {k for k in ours.keys() | theirs.keys() if repr(ours.get(k)) != repr(theirs.get(k))}
        assert differ == {"callbacks__checkpoint__dirname", "warm_start"}, (name, differ)


def test_bench_mixing_refuses_variants_it_cannot_compare(capsys):
    bench = _load("bench_mixing")
    for bad in ("finetune_192_meta_all_fu3_la", "finetune_192_meta_all_fu3_la,nope"):
        with pytest.raises(SystemExit):
            bench.main(["--data", "unused", "--variants", bad])
        assert f"--variants {bad!r}: give two of ham10000_cv.py's" in capsys.readouterr().err


def test_decision_rule_cross_fits_the_shift_and_pools_as_the_package_does(tmp_path):
    import pandas as pd
    from sklearn.metrics import balanced_accuracy_score

    from skderm.decision import LesionLevelClassifier

    bench = _load("decision_rule")
    rng = np.random.default_rng(0)
    lesion = np.repeat(np.arange(60), 2)
    y = np.where(rng.random(60) < 0.7, "nv", "mel")[lesion]
    classes = np.array(["mel", "nv"])
    logits = rng.normal(size=(len(y), 2)) + 1.2 * (y[:, None] == classes)
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    oof = tmp_path / "oof"
    oof.mkdir()
    tests = np.array_split(np.arange(len(y)), 3)  # whole lesions: pairs never straddle a fold
    for k, test in enumerate(tests):
        np.savez(oof / f"m_fold{k}.npz", test=test, proba=proba[test], classes=classes)
    groups = np.array([f"L{i}" for i in lesion], dtype=object)
    shifts = [-1.0, 0.0, 1.0]
    rows = bench.evaluate("m", y, groups, shifts, 3, oof, ["sum", "margin"], (0.8, 0.7),
                          n_boot=50)
    assert [(r["view"], r["criterion"]) for r in rows] == [
        (v, c) for v in ("image", "lesion") for c in ("none (t = 0)", "sum", "margin")]
    # a fold's shift is the one the other folds score best at, by the criterion
    scores = bench.fold_scores(y, groups, [(t, classes, proba[t]) for t in tests], shifts,
                               "lesion")
    best_on_others = [shifts[int(np.argmax(np.delete(scores, k, 0).mean(0).sum(1)))]
                      for k in range(3)]
    lesion_sum = rows[4]
    assert lesion_sum["shifts"] == best_on_others
    # each fold's score is what LesionLevelClassifier predicts at that shift
    for k, test in enumerate(tests):
        X = pd.DataFrame({"p0": proba[test, 0], "p1": proba[test, 1], "lesion_id": groups[test]})
        train = np.setdiff1d(np.arange(len(y)), test)
        clf = LesionLevelClassifier(_ColumnProba(), prior_shift=lesion_sum["shifts"][k])
        clf.fit(X, y[train])
        assert lesion_sum["bacc"][k] == pytest.approx(balanced_accuracy_score(y[test],
                                                                              clf.predict(X)))
    assert "| m | per lesion | sum |" in bench.markdown(rows)
    # a fixed shift (a recipe's) is scored on every fold as it is
    fixed = bench.evaluate("m", y, groups, shifts, 3, oof, ["sum"], (0.8, 0.7), n_boot=50,
                           fixed=(1.0,))
    row = [r for r in fixed if r["view"] == "lesion" and r["criterion"] == "fixed t = +1"][0]
    assert row["shifts"] == [1.0] * 3 and row["bacc"] == pytest.approx(scores[:, 2, 0].tolist())
    with pytest.raises(ValueError, match="criterion 'best'"):
        bench.cross_fit(scores, shifts, "best")


class _ColumnProba(ClassifierMixin, BaseEstimator):
    """A classifier whose probabilities of mel and nv are X's columns p0 and p1."""

    def fit(self, X, y):
        self.classes_ = np.array(["mel", "nv"])
        return self

    def predict_proba(self, X):
        return X[["p0", "p1"]].to_numpy()


def test_bench_export_times_the_three_ways_side_by_side(ham10000_root, tmp_path):
    pytest.importorskip("onnxruntime", reason="pip install 'skderm[export]'")
    bench = _load("bench_export")
    report = bench.main(["--data", str(ham10000_root), "--backbone", "tiny", "--image-size",
                         "32", "48", "--images", "8", "--rounds", "2", "--out", str(tmp_path)])
    assert set(report["images_per_s"]) == set(bench.METHODS)
    assert all(len(v) == 2 and min(v) > 0 for v in report["images_per_s_rounds"].values())
    assert report["ratio_to_predict_proba"]["predict_proba"] == pytest.approx(1.0)
    # the timed ways predict the same probabilities
    assert max(report["max_abs_difference_to_predict_proba"].values()) <= 1e-4
    saved = json.loads((tmp_path / "export.json").read_text())
    assert saved["ratio_to_predict_proba"] == report["ratio_to_predict_proba"]
    table = (tmp_path / "export.md").read_text()
    assert "| onnxruntime |" in table and "shared with other work" in table


@pytest.mark.parametrize("argv, message", [
    ([], "give a checkout of skderm"),
    (["--pairs", "0"], "--pairs 0 --images 640: use --pairs >= 1"),
    (["--images", "8"], "--pairs 2 --images 8: use --pairs >= 1 and --images >= 32")])
def test_bench_checkouts_refuses_what_it_cannot_run(tmp_path, capsys, argv, message):
    bench = _load("bench_checkouts")
    with pytest.raises(SystemExit):
        bench.main(["--before", str(tmp_path), "--out", str(tmp_path / "out"), *argv])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bench_checkouts_table_gives_medians_and_after_over_before():
    import argparse

    bench = _load("bench_checkouts")
    rows = [{"label": label, "epoch_s": [e1, e2], "fit_s": 60.0, "predict_s": p,
             "peak_rss_mb": rss, "load": 1.5}
            for label, e1, e2, p, rss in [("before", 20, 40, 25.6, 2000), ("after", 10, 32, 12.8, 2200),
                                          ("before", 20, 40, 25.6, 2000), ("after", 10, 32, 12.8, 2200)]]
    args = argparse.Namespace(before="old", after="new", images=640, pairs=2)
    table = bench._table(rows, args)
    assert "| epoch 1 (head), images/s | 32.0 | 64.0 | 2.00 |" in table
    assert "| epoch 2 (blocks.3 on), images/s | 16.0 | 20.0 | 1.25 |" in table
    assert "| predict_proba of 256, images/s | 10.0 | 20.0 | 2.00 |" in table
    assert "| peak RSS, MB | 2000.0 | 2200.0 | 1.10 |" in table
