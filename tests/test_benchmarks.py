"""The benchmark scripts run and report what their tables claim (tiny settings)."""

import importlib.util
import json
from pathlib import Path

import pytest

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
