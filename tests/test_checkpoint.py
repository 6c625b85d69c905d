"""Checkpoints: an interrupted fit resumes to the result of an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from skorch.callbacks import Callback

from skderm import LesionClassifier
from skderm.classifier.checkpoint import checkpoint_path
from skderm.cli import main
from skderm.exceptions import SkdermError
from skderm.losses import CrossEntropy
from skderm.persistence import load_model
from skderm.transforms import Augmentation, Mixup

FAST = dict(backbone="tiny", weights=None, image_size=(32, 32), random_state=0, valid_size=0.3,
            lr=3e-3, lr_schedule="cosine", verbose=0)


class Crash(Exception):
    pass


class CrashInEpoch(Callback):
    """Raise after the first training batch of ``epoch`` when ``armed`` (a crash, a kill);
    count the epochs this fit trains.

    ``armed`` is an argument of ``__init__`` but not a parameter (``get_params``
    omits it): a callback's parameters are part of the checkpoint's fingerprint,
    and the crashed and the resumed run must be the same run.
    """

    def __init__(self, epoch=3):
        self.epoch = epoch
        self.armed = False
        self.epochs_trained = 0

    @classmethod
    def armed_(cls, epoch=3):
        cb = cls(epoch)
        cb.armed = True
        return cb

    def _get_param_names(self):
        return ["epoch"]

    def on_epoch_begin(self, net, **kwargs):
        self.epochs_trained += 1

    def on_batch_end(self, net, training=False, **kwargs):
        if self.armed and training and len(net.history) == self.epoch:
            raise Crash


def _ckpts(folder) -> list[str]:
    return sorted(os.listdir(folder))


def _same_history(a, b, keys=("train_loss", "valid_loss", "valid_bacc", "valid_mcc")):
    assert len(a.history_) == len(b.history_)
    for key in keys:
        np.testing.assert_allclose(a.history_[:, key], b.history_[:, key], rtol=0, atol=1e-7)


# skorch's LRScheduler builds its scheduler in on_train_begin from len(net.history): it
# comes after EpochCheckpoint, so a resumed cosine run anneals on from where it stopped.

# the backbone unfreezes in the resumed part; the augmentation and mixing draws come
# from the restored random state
FREEZE_AUGMENT_MIX = {"freeze": 2, "augmentation": "default", "mixup": Mixup(0.4, 1.0),
                      "class_weight": "balanced"}


@pytest.mark.parametrize("extra", [
    pytest.param({}, id="cosine"),
    pytest.param(FREEZE_AUGMENT_MIX,
                 id="cosine-freeze-augment-mix"),
    pytest.param({"lr_schedule": "constant"}, id="constant"),
    pytest.param({"lr_schedule": "constant", **FREEZE_AUGMENT_MIX},
                 id="constant-freeze-augment-mix"),
])
def test_interrupted_fit_resumes_to_the_uninterrupted_result(tiny_lesions, tmp_path, extra):
    X, y = tiny_lesions.data, tiny_lesions.target
    kw = {**FAST, "max_epochs": 5, "callbacks__early_stopping__patience": None, **extra}
    full = LesionClassifier(**kw, callbacks=[("crash", CrashInEpoch())]).fit(X, y)

    with pytest.raises(Crash):
        LesionClassifier(**kw, callbacks__checkpoint__dirname=tmp_path,
                         callbacks=[("crash", CrashInEpoch.armed_())]).fit(X, y)
    [name] = _ckpts(tmp_path)  # one file, no temporary left behind
    assert name.startswith("skderm-") and name.endswith(".ckpt")

    counter = CrashInEpoch()
    resumed = LesionClassifier(**kw, callbacks__checkpoint__dirname=tmp_path, warm_start=True,
                               callbacks=[("crash", counter)]).fit(X, y)
    # it resumed that run (same file) and trained only the epochs the crash lost
    assert _ckpts(tmp_path) == [name]
    assert counter.epochs_trained == 3
    _same_history(full, resumed)
    np.testing.assert_array_equal(full.predict_proba(X), resumed.predict_proba(X))


def test_resume_replays_early_stopping(tiny_lesions, tmp_path):
    X, y = tiny_lesions.data, tiny_lesions.target
    kw = dict(FAST, max_epochs=12, callbacks__early_stopping__patience=2,
              callbacks__checkpoint__dirname=tmp_path)
    full = LesionClassifier(**kw).fit(X, y)
    assert len(full.history_) < 12, "the set-up needs a run that stops early"
    # resuming the finished run trains nothing more and restores the same best model
    again = LesionClassifier(**kw, warm_start=True).fit(X, y)
    assert len(_ckpts(tmp_path)) == 1, "the second fit did not resume the first"
    _same_history(full, again)
    np.testing.assert_array_equal(full.predict_proba(X), again.predict_proba(X))


def test_raising_max_epochs_continues_a_finished_run(tiny_lesions, tmp_path):
    X, y = tiny_lesions.data, tiny_lesions.target
    kw = dict(FAST, lr_schedule="constant", callbacks__early_stopping__patience=None,
              callbacks__checkpoint__dirname=tmp_path)
    LesionClassifier(**kw, max_epochs=2).fit(X, y)
    longer = LesionClassifier(**kw, max_epochs=4, warm_start=True).fit(X, y)
    assert len(_ckpts(tmp_path)) == 1, "the longer fit did not resume the shorter one"
    straight = LesionClassifier(**dict(kw, callbacks__checkpoint__dirname=None), max_epochs=4).fit(X, y)
    assert len(longer.history_) == 4
    _same_history(straight, longer)


def test_cosine_runs_of_another_length_never_resume_each_other(tiny_lesions, tmp_path):
    """The cosine rate of every epoch depends on max_epochs: a longer run that
    resumed a shorter one's finished checkpoint would restart its annealing."""
    X, y = tiny_lesions.data, tiny_lesions.target
    kw = dict(FAST, callbacks__early_stopping__patience=None, callbacks__checkpoint__dirname=tmp_path)
    LesionClassifier(**kw, max_epochs=2).fit(X, y)
    longer = LesionClassifier(**kw, max_epochs=4, warm_start=True).fit(X, y)
    straight = LesionClassifier(**dict(kw, callbacks__checkpoint__dirname=None), max_epochs=4).fit(X, y)
    _same_history(straight, longer)
    np.testing.assert_array_equal(straight.predict_proba(X), longer.predict_proba(X))
    assert len(_ckpts(tmp_path)) == 2
    # the same length still resumes: the finished run trains nothing more
    again = LesionClassifier(**kw, max_epochs=4, warm_start=True).fit(X, y)
    _same_history(straight, again)


def test_other_settings_or_data_never_resume_a_checkpoint(tiny_lesions, tmp_path):
    X, y = tiny_lesions.data, tiny_lesions.target
    kw = dict(FAST, max_epochs=2, callbacks__early_stopping__patience=None,
              callbacks__checkpoint__dirname=tmp_path)
    LesionClassifier(**kw).fit(X, y)
    other_lr = LesionClassifier(**dict(kw, lr=1e-3), warm_start=True).fit(X, y)
    fewer_rows = LesionClassifier(**kw, warm_start=True).fit(X.iloc[:50], y.iloc[:50])
    # each trained its own two epochs from scratch, in its own file
    assert len(other_lr.history_) == 2 and len(fewer_rows.history_) == 2
    assert len(_ckpts(tmp_path)) == 3


def test_a_damaged_checkpoint_is_refused_with_the_fix(tiny_lesions, tmp_path):
    X, y = tiny_lesions.data, tiny_lesions.target
    kw = dict(FAST, max_epochs=1, callbacks__checkpoint__dirname=tmp_path)
    LesionClassifier(**kw).fit(X, y)
    [name] = _ckpts(tmp_path)
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SkdermError, match="damaged.*delete") as err:
        LesionClassifier(**kw, warm_start=True).fit(X, y)
    assert name in str(err.value)
    # without warm_start the run starts over and replaces it
    LesionClassifier(**kw).fit(X, y)
    assert path.stat().st_size > 200


@pytest.mark.parametrize("damage", ["missing key", "wrong shape", "bad random state"])
def test_a_checkpoint_that_does_not_fit_names_the_file_and_the_fix(tiny_lesions, tmp_path,
                                                                    damage):
    import torch

    X, y = tiny_lesions.data, tiny_lesions.target
    kw = dict(FAST, max_epochs=1, callbacks__checkpoint__dirname=tmp_path)
    LesionClassifier(**kw).fit(X, y)
    [name] = _ckpts(tmp_path)
    payload = torch.load(tmp_path / name, weights_only=True)
    key = next(iter(payload["module"]))
    if damage == "missing key":
        del payload["module"][key]
    elif damage == "wrong shape":
        payload["module"][key] = torch.zeros(3, 1, 2)
    else:
        payload["torch_rng"] = torch.zeros(5, dtype=torch.uint8)
    torch.save(payload, tmp_path / name)
    with pytest.raises(SkdermError, match="does not fit this run.*delete it") as err:
        LesionClassifier(**kw, warm_start=True).fit(X, y)
    assert name in str(err.value) and "--resume" in str(err.value)


def test_grid_search_candidates_do_not_share_checkpoints(tiny_lesions, tmp_path):
    from sklearn.model_selection import GridSearchCV, GroupKFold

    X, y = tiny_lesions.data, tiny_lesions.target
    search = GridSearchCV(LesionClassifier(**dict(FAST, max_epochs=1, callbacks__checkpoint__dirname=tmp_path)),
                          {"lr": [1e-3, 3e-3]}, cv=GroupKFold(2), scoring="balanced_accuracy")
    search.fit(X, y, groups=tiny_lesions.groups)
    assert len(_ckpts(tmp_path)) == 2 * 2 + 1  # candidates x folds, and the refit


# --------------------------------------------------------------------------
# the fingerprint: which settings make another run
# --------------------------------------------------------------------------


class _FakeDataset:
    images = [np.zeros((2, 2, 3), np.uint8)]
    y, groups, metadata = np.array([0]), None, None

    def __len__(self):
        return 1


def _name(tmp_path, dataset=None, **params) -> str:
    clf = LesionClassifier(**{**FAST, "callbacks__checkpoint__dirname": tmp_path, **params})
    return os.path.basename(checkpoint_path(clf, dataset or _FakeDataset(), tmp_path))


@pytest.mark.parametrize("param, values", [
    ("freeze_until", [None, "1", "2"]),
    ("freeze", ["none", "backbone", 1, 2]),
    ("criterion", [CrossEntropy, "focal", "logit_adjusted"]),
    ("criterion__tau", [1.0, 0.5]),
    ("criterion__label_smoothing", [0.0, 0.1]),
    ("mixup__mixup_alpha", [0.0, 0.2, 0.4]),
    ("mixup__cutmix_alpha", [0.0, 0.2, 1.0]),
    ("colour_constancy", [None, "shades_of_gray", 1.0]),
    ("optimizer__param_groups", [None, [("backbone.*", {"lr": 1e-4})]]),
    ("augmentation", ["default", "none", Augmentation(rotation=45.0)]),
    ("lr", [1e-3, 3e-3]),
    ("random_state", [0, 1]),
])  # fmt: skip
def test_changing_a_training_setting_changes_the_fingerprint(tmp_path, param, values):
    names = [_name(tmp_path, **({} if v is None else {param: v})) for v in values]
    assert len(set(names)) == len(names), dict(zip(map(repr, values), names, strict=True))


def test_changing_the_data_changes_the_fingerprint(tmp_path):
    other = _FakeDataset()
    other.y = np.array([1])
    assert _name(tmp_path) != _name(tmp_path, other)


def test_settings_that_change_no_epoch_keep_the_fingerprint(tmp_path):
    constant = dict(lr_schedule="constant", max_epochs=3)
    base = _name(tmp_path, **constant)
    # a longer constant-rate run continues a shorter one (see above)
    assert _name(tmp_path, **dict(constant, max_epochs=5)) == base
    assert _name(tmp_path, **constant, verbose=1, warm_start=True, device="cpu") == base
    assert _name(tmp_path / "elsewhere", **constant) == base
    # under the cosine schedule every epoch's rate depends on max_epochs
    assert (_name(tmp_path, max_epochs=3, lr_schedule="cosine")
            != _name(tmp_path, max_epochs=5, lr_schedule="cosine"))


def test_test_crop_is_fingerprinted_only_with_a_validation_split(tmp_path):
    # a validation split scores epochs on the crop: another run
    assert (_name(tmp_path, valid_size=0.2, test_crop="auto")
            != _name(tmp_path, valid_size=0.2, test_crop=None))
    assert (_name(tmp_path, valid_size=0.2, tta=True)
            != _name(tmp_path, valid_size=0.2, tta=False))
    # without one no epoch depends on it: a run resumes whatever its test_crop
    assert (_name(tmp_path, valid_size=None, test_crop="auto")
            == _name(tmp_path, valid_size=None, test_crop=None)
            == _name(tmp_path, valid_size=None, test_crop=0.5, tta=True))


# --------------------------------------------------------------------------
# the command line: kill -9 mid-epoch, then `skderm train --resume`
# --------------------------------------------------------------------------

_PAUSING_TRAIN = textwrap.dedent("""
    import sys, time
    from skderm.classifier import LesionClassifier
    from skderm.cli import main

    marker = sys.argv[1]
    base = LesionClassifier.on_batch_end

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        base(self, net, batch=batch, training=training, **kwargs)
        if training and len(self.history) == 3:  # mid-epoch 3: wait to be killed
            open(marker, "w").close()
            time.sleep(600)

    LesionClassifier.on_batch_end = on_batch_end
    sys.exit(main(sys.argv[2:]))
""")


def test_cli_resume_after_kill_matches_an_uninterrupted_run(tiny_lesions, tmp_path):
    opts = ["--data", str(tiny_lesions.directory), "--backbone", "tiny", "--weights", "none",
            "--image-size", "32", "32", "--epochs", "5", "--param", "valid_size=0.3",
            "--param", "callbacks__early_stopping__patience=None",
            "--param", "lr_schedule='cosine'", "--quiet"]
    killed_out, marker = tmp_path / "killed.skderm", tmp_path / "paused"
    script = tmp_path / "pausing_train.py"
    script.write_text(_PAUSING_TRAIN)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(marker), "train", *opts,
                             "--out", str(killed_out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"training ended before the kill: {proc.stdout.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("training never reached epoch 3")
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not killed_out.exists()
    ckpt_dir = tmp_path / "killed.skderm.checkpoints"
    assert [n.endswith(".ckpt") for n in _ckpts(ckpt_dir)] == [True]

    assert main(["train", *opts, "--out", str(killed_out), "--resume"]) == 0
    straight_out = tmp_path / "straight.skderm"
    assert main(["train", *opts, "--out", str(straight_out)]) == 0

    # the "cpu" recipe's network, inside the LesionLevelClassifier that decides per lesion
    resumed, straight = (load_model(p).estimator_ for p in (killed_out, straight_out))
    assert len(resumed.history_) == len(straight.history_) == 5
    np.testing.assert_allclose(resumed.history_[:, "valid_bacc"],
                               straight.history_[:, "valid_bacc"], atol=1e-7)
    X = tiny_lesions.data
    np.testing.assert_allclose(resumed.predict_proba(X), straight.predict_proba(X), atol=1e-6)


def test_cli_resume_without_a_checkpoint_folder_is_an_error(tiny_lesions, capsys):
    code = main(["cv", "--data", str(tiny_lesions.directory), "--backbone", "tiny",
                 "--weights", "none", "--resume", "--quiet"])
    assert code == 1
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err
