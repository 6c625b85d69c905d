"""Named recipes, and `skderm train`/`cv` starting from the "cpu" one."""

from __future__ import annotations

import pytest

from skderm.cli import build_parser
from skderm.cli.models import build_model, unwrapped
from skderm.recipes import RECIPES, make_recipe

# run settings that the command line sets itself
_RUN = {"verbose", "callbacks__checkpoint__dirname", "random_state"}


def _model_params(clf) -> dict:
    # by repr: parameter objects (Mixup) compare by their settings
    return {k: repr(v) for k, v in clf.get_params(deep=False).items() if k not in _RUN}


def _network(args):
    """What the command line trains, inside the LesionLevelClassifier it may wrap it in."""
    return unwrapped(build_model(args))


def test_make_recipe_applies_the_recipe_and_overrides():
    clf = make_recipe("cpu", max_epochs=3)
    params = clf.get_params()
    for name, value in RECIPES["cpu"].params.items():
        if name != "max_epochs":
            assert repr(params[name]) == repr(value)
    assert params["max_epochs"] == 3 and params["lr_schedule"] == "cosine"


def test_unknown_recipe_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown recipe 'tpu'.*'cpu'"):
        make_recipe("tpu")


@pytest.mark.parametrize("command", ["train", "cv"])
def test_cli_without_options_builds_the_cpu_recipe(command, tmp_path):
    extra = ["--out", str(tmp_path / "m.skderm")] if command == "train" else []
    args = build_parser().parse_args([command, "--data", str(tmp_path), *extra])
    built = build_model(args)
    # deciding per lesion with the recipe's measured prior shift
    assert type(built).__name__ == "LesionLevelClassifier"
    assert (built.prior_shift, built.pooling) == (-0.15, "mean")
    assert _model_params(built.estimator) == _model_params(make_recipe("cpu"))
    # --decision image: the network alone
    args = build_parser().parse_args([command, "--data", str(tmp_path), *extra,
                                      "--decision", "image"])
    assert _model_params(build_model(args)) == _model_params(make_recipe("cpu"))


@pytest.mark.parametrize("command", ["train", "cv"])
def test_cli_without_options_on_a_cuda_machine_builds_the_vote(command, tmp_path, monkeypatch,
                                                               capsys):
    import torch
    from sklearn.ensemble import VotingClassifier

    from skderm.recipes import make_ensemble

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    extra = ["--out", str(tmp_path / "m.skderm")] if command == "train" else []
    args = build_parser().parse_args([command, "--data", str(tmp_path), *extra])
    built = build_model(args)
    assert built.prior_shift == -0.1
    vote = built.estimator
    assert isinstance(vote, VotingClassifier) and vote.voting == "soft"
    expected = make_ensemble("vote").estimators
    assert [n for n, _ in vote.estimators] == [n for n, _ in expected]
    for (_, ours), (_, theirs) in zip(vote.estimators, expected, strict=True):
        assert _model_params(ours) == _model_params(theirs)
    assert "recipe 'vote'" in capsys.readouterr().out
    # a run pinned to the CPU gets the one-network recipe, as does --recipe cpu
    for options in (["--param", "device=cpu"], ["--recipe", "cpu"]):
        args = build_parser().parse_args([command, "--data", str(tmp_path), *extra, *options])
        clf = _network(args)
        assert _model_params(clf) == _model_params(make_recipe("cpu", **(
            {"device": "cpu"} if "--param" in options else {})))


def test_make_ensemble_members_keep_their_settings_under_overrides():
    from skderm.recipes import make_ensemble

    vote = make_ensemble("vote", random_state=3)
    members = dict(vote.estimators)
    assert [m.random_state for m in members.values()] == [3, 3, 3]
    assert (members["e24"].max_epochs, members["cpu"].max_epochs) == (24, 12)
    assert members["lite2"].freeze_until == "blocks.3"
    # another backbone drops a member's Lite layer name, as make_recipe does
    assert all(m.freeze_until is None
               for m in make_ensemble("vote", backbone="resnet18").named_estimators.values())
    with pytest.raises(ValueError, match=r"unknown recipe 'vot'.*'vote'"):
        make_ensemble("vot")


def test_cli_options_override_the_recipe(tmp_path):
    args = build_parser().parse_args(
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--epochs", "4",
         "--backbone", "tiny", "--image-size", "32", "48", "--param", "class_weight=None"])
    params = _network(args).get_params()
    assert (params["max_epochs"], params["backbone"], params["image_size"]) == (4, "tiny", (32, 48))
    assert params["class_weight"] is None and params["lr_schedule"] == "cosine"
    defaults = build_parser().parse_args(
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--recipe", "defaults"])
    assert build_model(defaults).get_params()["lr_schedule"] == "constant"


def test_cpu_recipe_is_the_measured_benchmark_variant():
    """benchmarks/ham10000_cv.py measures "cpu" as cpu_images + these changes."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ham10000_cv.py"
    spec = importlib.util.spec_from_file_location("ham10000_cv", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    measured = make_recipe(
        "cpu_images", **bench.FINETUNE_VARIANTS["finetune_192_meta_all_fu3_la_mix04_cut10_tc"])
    assert _model_params(measured) == _model_params(make_recipe("cpu"))
    assert _model_params(make_recipe("cpu_images", **bench.FINETUNE_VARIANTS["finetune"])) == \
        _model_params(make_recipe("cpu_images"))
    # the second network of the documented two-network vote (docs: ensembles)
    second = make_recipe(
        "cpu_images", **bench.FINETUNE_VARIANTS["finetune_192_meta_all_fu3_la_mixup04_tc"])
    assert _model_params(second) == _model_params(make_recipe("cpu", mixup__cutmix_alpha=0.0))


def test_gpu_recipe_is_the_measured_benchmark_variant_and_a_cli_choice(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ham10000_cv.py"
    spec = importlib.util.spec_from_file_location("ham10000_cv", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    measured = make_recipe(bench.VARIANT_BASE["gpu"], **bench.FINETUNE_VARIANTS["gpu"])
    assert _model_params(measured) == _model_params(make_recipe("gpu"))
    params = make_recipe("gpu").get_params()
    assert (params["backbone"], params["image_size"], params["freeze_until"]) == \
        ("tf_efficientnet_lite2", (240, 320), None)
    args = build_parser().parse_args(
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--recipe", "gpu"])
    assert _model_params(build_model(args)) == _model_params(make_recipe("gpu"))


def test_recipes_do_not_share_mutable_settings():
    clf = make_recipe("cpu")
    clf.metadata_columns.append("anatom_site")
    assert RECIPES["cpu"].params["metadata_columns"] == ["age", "sex", "localization"]
    assert make_recipe("cpu").metadata_columns == ["age", "sex", "localization"]


def test_cpu_recipe_freezes_lite0_layers_only_for_lite0(tmp_path, capsys):
    assert make_recipe("cpu").get_params()["freeze_until"] == "blocks.3"
    # the layer name belongs to EfficientNet-Lite0: another backbone trains every layer
    assert make_recipe("cpu", backbone="tiny").get_params()["freeze_until"] is None
    assert make_recipe("cpu", backbone="tiny", freeze_until="1").freeze_until == "1"
    common = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"),
              "--backbone", "tiny"]
    clf = _network(build_parser().parse_args(common))
    assert clf.freeze_until is None
    assert "freeze_until='blocks.3' is a layer of tf_efficientnet_lite0" in capsys.readouterr().out
    clf = _network(build_parser().parse_args([*common, "--param", "freeze_until='1'"]))
    assert clf.freeze_until == "1"


def test_make_lesion_level_wraps_the_recipe_with_its_measured_shift():
    from sklearn.ensemble import VotingClassifier

    from skderm import LesionClassifier, LesionLevelClassifier
    from skderm.recipes import LESION_DECISIONS, make_ensemble, make_lesion_level

    vote = make_lesion_level("vote", random_state=3)
    assert isinstance(vote, LesionLevelClassifier) and vote.prior_shift == LESION_DECISIONS["vote"]
    assert isinstance(vote.estimator, VotingClassifier)
    assert [_model_params(m) for _, m in vote.estimator.estimators] == [
        _model_params(m) for _, m in make_ensemble("vote", random_state=3).estimators]
    cpu = make_lesion_level("cpu", max_epochs=3)
    assert isinstance(cpu.estimator, LesionClassifier) and cpu.estimator.max_epochs == 3
    assert cpu.prior_shift == LESION_DECISIONS["cpu"] and cpu.group_column == "lesion_id"
    with pytest.raises(ValueError, match=r"recipe 'gpu' has no per-lesion decision rule"):
        make_lesion_level("gpu")


def test_the_recipes_shifts_are_the_ones_decision_rule_measured():
    """LESION_DECISIONS holds what benchmarks/results/decision_rule.json reports."""
    import json
    from pathlib import Path

    from skderm.recipes import LESION_DECISIONS

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    rows = json.loads((results / "decision_rule.json").read_text())["rows"]
    vote = {r["criterion"]: r["shifts"] for r in rows
            if r["recipe"] == "ensemble_cpu_e24_lite2" and r["view"] == "lesion"}
    # every fold's other folds chose the vote's shift, by both criteria
    assert vote["sum"] == vote["margin"] == [LESION_DECISIONS["vote"]] * 5
    cpu = [r for r in rows if r["recipe"] == "finetune_192_meta_all_fu3_la_mix04_cut10_tc"
           and r["view"] == "lesion" and r["criterion"] == "margin"][0]["shifts"]
    # the shift most folds' other folds chose
    assert max(set(cpu), key=cpu.count) == LESION_DECISIONS["cpu"]


def test_recipes_are_plain_data_without_figures():
    """A recipe says what it is for in words; scores and timings live in the docs."""
    import re

    from skderm.recipes import Recipe

    for name, recipe in RECIPES.items():
        assert isinstance(recipe, Recipe) and recipe.name == name
        assert 40 <= len(recipe.purpose) <= 300, name
        assert not re.search(r"\d\.\d|\d+ ?(%|min|minutes|hours|s\b)", recipe.purpose), name
    assert RECIPES["vote"].members and not RECIPES["cpu"].members
    with pytest.raises(ValueError, match=r"'vote' is an ensemble.*make_ensemble\('vote'\)"):
        make_recipe("vote")


def test_make_recipe_takes_nested_parameters():
    from skderm import Augmentation

    clf = make_recipe("defaults", augmentation=Augmentation(), augmentation__rotation=90.0,
                      optimizer__weight_decay=0.01)
    assert clf.get_params()["augmentation__rotation"] == 90.0
    assert clf.optimizer__weight_decay == 0.01


def test_override_notes_name_what_an_override_turns_off():
    from skderm.recipes import override_notes

    assert override_notes("cpu") == []
    assert override_notes("cpu", backbone="tiny", freeze_until="1") == []
    notes = override_notes("vote", backbone="tiny")
    assert len(notes) == 3 and all("freeze_until='blocks.3'" in n for n in notes)
