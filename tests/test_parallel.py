"""More than one process: searches on joblib's loky workers and on dask, and Accelerate.

What a user relies on: a ``GridSearchCV(n_jobs=2)`` over an imblearn pipeline
with a :class:`~skderm.LesionClassifier` runs in worker processes, scores
exactly as the sequential search does, and each worker's torch uses
``cpu_count // n_jobs`` threads (joblib's limit), not every core; the same
search runs on a dask cluster through ``joblib.parallel_backend("dask")``; and
:class:`~skderm.accelerate.AcceleratedLesionClassifier` trains and predicts as
the plain classifier does, on one process or several.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap
import types

import joblib
import numpy as np
import pytest
import torch
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

# the numeric-data adapter and the list of checks that cannot apply to an
# image classifier on skorch, shared with LesionClassifier's own checks
from test_sklearn_compat import CANNOT_APPLY, CHECK_PARAMS, NumericAsImagesMixin

from skderm import LesionClassifier
from skderm.accelerate import AcceleratedLesionClassifier
from skderm.transforms import Mixup

HAVE_DASK = importlib.util.find_spec("distributed") is not None
HAVE_ACCELERATE = importlib.util.find_spec("accelerate") is not None
needs_dask = pytest.mark.skipif(
    not HAVE_DASK, reason="dask.distributed is not installed: pip install 'dask[distributed]'")
needs_accelerate = pytest.mark.skipif(
    not HAVE_ACCELERATE, reason="accelerate is not installed: pip install accelerate")

# tiny and fast, but trained enough (no validation split, no augmentation) for
# the two learning rates to score differently
FAST = dict(backbone="tiny", weights=None, image_size=(32, 32), max_epochs=2, batch_size=16,
            valid_size=None, augmentation="none", verbose=0, random_state=0)
GRID = {"lesionclassifier__lr": [1e-3, 1e-2]}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMEXPR_NUM_THREADS")


# scorers that report where the candidate was fitted: they run in the worker
def _torch_threads(estimator, X, y) -> float:
    return float(torch.get_num_threads())


def _pid(estimator, X, y) -> float:
    return float(os.getpid())


SCORING = {"loss": "neg_log_loss", "threads": _torch_threads, "pid": _pid}


def _search(data, n_jobs: int) -> GridSearchCV:
    pipe = make_pipeline(RandomOverSampler(random_state=0), LesionClassifier(**FAST))
    search = GridSearchCV(pipe, GRID, cv=StratifiedGroupKFold(2), scoring=SCORING,
                          refit="loss", n_jobs=n_jobs)
    return search.fit(data.data, data.target, groups=data.groups)


def _recorded(search: GridSearchCV, key: str) -> np.ndarray:
    results = search.cv_results_
    return np.concatenate([results[f"split{i}_test_{key}"] for i in range(search.n_splits_)])


@pytest.fixture(scope="module")
def sequential(tiny_lesions):
    """The reference: the same search in this process, one torch thread."""
    return _search(tiny_lesions, n_jobs=1)


@pytest.fixture
def no_thread_limits(monkeypatch):
    """The parent environment of a user who set no thread limits (conftest sets one)."""
    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)


# ----------------------------------------------------------------------
# joblib's loky workers
# ----------------------------------------------------------------------
def test_the_reference_search_learns_something(sequential):
    # otherwise "the same scores" below would compare constants
    loss = sequential.cv_results_["mean_test_loss"]
    assert np.all(np.isfinite(loss))
    assert loss[0] != loss[1]


def test_grid_search_on_loky_workers_matches_the_sequential_search(tiny_lesions, sequential,
                                                                   no_thread_limits):
    # one torch thread per worker, as in the reference, so the floating-point
    # work is the same and the scores must be identical
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        search = _search(tiny_lesions, n_jobs=2)
    assert set(_recorded(search, "pid")).isdisjoint({os.getpid()}), "ran in this process"
    np.testing.assert_array_equal(_recorded(search, "threads"), 1)
    np.testing.assert_allclose(search.cv_results_["mean_test_loss"],
                               sequential.cv_results_["mean_test_loss"], rtol=0, atol=1e-7)
    assert search.best_params_ == sequential.best_params_
    assert search.predict(tiny_lesions.data[:5]).shape == (5,)


def test_loky_workers_share_the_cores_instead_of_oversubscribing(tiny_lesions, no_thread_limits):
    # joblib sets OMP_NUM_THREADS=cpu_count//n_jobs in its workers and torch
    # reads it when it is imported there; nothing in skderm may undo that
    search = _search(tiny_lesions, n_jobs=2)
    expected = max(joblib.cpu_count() // 2, 1)
    np.testing.assert_array_equal(_recorded(search, "threads"), expected)
    assert expected * 2 <= max(joblib.cpu_count(), 2)


# ----------------------------------------------------------------------
# dask
# ----------------------------------------------------------------------
@needs_dask
def test_grid_search_on_a_dask_cluster_matches_the_sequential_search(tiny_lesions, sequential):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        workers = set(client.run(os.getpid).values())
        with joblib.parallel_backend("dask"):
            search = _search(tiny_lesions, n_jobs=-1)
    fitted_in = set(_recorded(search, "pid").astype(int))
    assert fitted_in <= workers, f"fitted in {fitted_in}, dask workers are {workers}"
    # dask's nanny starts each worker with OMP_NUM_THREADS=1
    np.testing.assert_array_equal(_recorded(search, "threads"), 1)
    np.testing.assert_allclose(search.cv_results_["mean_test_loss"],
                               sequential.cv_results_["mean_test_loss"], rtol=0, atol=1e-7)
    assert search.best_params_ == sequential.best_params_


# ----------------------------------------------------------------------
# Hugging Face Accelerate
# ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def plain(tiny_lesions):
    return LesionClassifier(**FAST).fit(tiny_lesions.data, tiny_lesions.target)


@needs_accelerate
def test_accelerated_classifier_on_cpu_matches_the_plain_one(tiny_lesions, plain):
    from accelerate import Accelerator

    clf = AcceleratedLesionClassifier(accelerator=Accelerator(cpu=True), **FAST)
    clf.fit(tiny_lesions.data, tiny_lesions.target)
    proba = clf.predict_proba(tiny_lesions.data)
    assert proba.shape == (60, 7)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    # same seed, same batches, same arithmetic: Accelerate on one CPU process
    # changes where things run, not what is computed
    np.testing.assert_allclose(proba, plain.predict_proba(tiny_lesions.data), rtol=0, atol=1e-6)
    assert list(clf.classes_) == list(plain.classes_)
    assert clf.device is None
    assert type(clf.module_).__name__ == "LesionNet", "the network is unwrapped after fit"


@needs_accelerate
def test_accelerated_classifier_mixes_batches_as_the_plain_one(tiny_lesions, plain):
    # Accelerate's train step calls infer and get_loss as skorch's does: the
    # mixed batches and blended labels are the same
    from accelerate import Accelerator

    mix = {**FAST, "mixup": Mixup(0.4, 1.0)}
    X, y = tiny_lesions.data, tiny_lesions.target
    plain_mix = LesionClassifier(**mix).fit(X, y)
    assert not np.allclose(plain_mix.history_[:, "train_loss"], plain.history_[:, "train_loss"])
    clf = AcceleratedLesionClassifier(accelerator=Accelerator(cpu=True), **mix).fit(X, y)
    np.testing.assert_allclose(clf.history_[:, "train_loss"],
                               plain_mix.history_[:, "train_loss"], rtol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(X), plain_mix.predict_proba(X), atol=1e-6)


@needs_accelerate
def test_accelerated_classifier_default_accelerator_clone_and_pickle(tiny_lesions, plain,
                                                                    tmp_path):
    from accelerate import Accelerator

    clf = AcceleratedLesionClassifier(**FAST)  # accelerator=None: Accelerator() at fit
    clf.fit(tiny_lesions.data, tiny_lesions.target)
    assert clf.get_params()["accelerator"] is None
    assert isinstance(clf.accelerator_, Accelerator)
    proba = clf.predict_proba(tiny_lesions.data)
    np.testing.assert_allclose(proba, plain.predict_proba(tiny_lesions.data), rtol=0, atol=1e-6)

    twin = pickle.loads(pickle.dumps(clf))
    assert twin.device is None
    np.testing.assert_allclose(twin.predict_proba(tiny_lesions.data), proba, rtol=0, atol=1e-7)

    # a model file of it loads as a plain LesionClassifier with the same probabilities
    from skderm.persistence import load_model, save_model

    path = save_model(clf, tmp_path / "accelerated.skderm")
    loaded = load_model(path)
    assert type(loaded) is LesionClassifier and loaded.get_params()["device"] == "auto"
    np.testing.assert_allclose(loaded.predict_proba(tiny_lesions.data), proba, rtol=0, atol=1e-6)

    shared = Accelerator(cpu=True)
    with_acc = AcceleratedLesionClassifier(accelerator=shared, **FAST)
    copy = clone(with_acc)
    assert copy.accelerator is shared, "a deep-copied Accelerator loses its GradientState"
    assert "_wrapped_with_accelerator" not in copy.get_params()


@needs_accelerate
def test_accelerated_classifier_keeps_no_references_to_its_data(tiny_lesions):
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    clf = AcceleratedLesionClassifier(accelerator=acc, **{**FAST, "valid_size": 0.3})
    clf.fit(tiny_lesions.data, tiny_lesions.target)
    clf.predict_proba(tiny_lesions.data)
    # Accelerator.prepare keeps what it prepares; a shared one would keep every
    # network and dataset of a grid search alive
    assert (acc._models, acc._optimizers, acc._dataloaders) == ([], [], [])


def test_accelerated_classifier_without_accelerate_says_what_to_install(tiny_lesions,
                                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)  # import accelerate -> ImportError
    clf = AcceleratedLesionClassifier(**FAST)
    with pytest.raises(ImportError, match="pip install accelerate"):
        clf.fit(tiny_lesions.data, tiny_lesions.target)


@pytest.mark.parametrize("params, match", [
    ({"random_state": None, "valid_size": 0.2}, "random_state=None with 2 processes"),
    ({"freeze": 1}, "freeze=1 with 2 processes"),
    ({"callbacks__checkpoint__dirname": "ckpt"},
     "callbacks__checkpoint__dirname='ckpt' with 2 processes"),
])
def test_accelerated_classifier_refuses_settings_processes_would_disagree_on(
        tiny_lesions, params, match):
    # read before anything is prepared (device_placement: by skorch's own check)
    two = types.SimpleNamespace(num_processes=2, device_placement=True)
    clf = AcceleratedLesionClassifier(accelerator=two, **{**FAST, **params})
    with pytest.raises(ValueError, match=match):
        clf.fit(tiny_lesions.data, tiny_lesions.target)


class AcceleratedNumericAsImages(NumericAsImagesMixin, AcceleratedLesionClassifier):
    """Reads sklearn's numeric test data as tiny images (as in test_sklearn_compat)."""


@needs_accelerate
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@parametrize_with_checks([AcceleratedNumericAsImages(**CHECK_PARAMS)],
                         expected_failed_checks=lambda estimator: CANNOT_APPLY,
                         xfail_strict=True)
def test_sklearn_checks_accelerated(estimator, check):
    # accelerator=None: every check's clone creates its own CPU Accelerator
    check(estimator)


_DDP_SCRIPT = """
import sys
import numpy as np
from accelerate import Accelerator
from skderm import make_lesions
from skderm.accelerate import AcceleratedLesionClassifier

acc = Accelerator(cpu=True)
data = make_lesions(60, image_size=(48, 64), random_state=0,
                    directory=f"{sys.argv[1]}/data_{acc.process_index}")
clf = AcceleratedLesionClassifier(accelerator=acc, backbone="tiny", weights=None,
                                  image_size=32, max_epochs=3, batch_size=16, lr=1e-2,
                                  augmentation="none", random_state=0, verbose=0)
clf.fit(data.data, data.target)           # early stopping restores the best epoch
bacc = clf.history[:, "valid_bacc"]
restored = int(np.argmax(bacc)) != len(bacc) - 1
first = clf.predict_proba(data.data)
clf.set_params(warm_start=True, max_epochs=2)
clf.fit(data.data, data.target)           # continues, wrapped again for DDP
np.savez(f"{sys.argv[1]}/rank{acc.process_index}.npz", first=first,
         second=clf.predict_proba(data.data), n=acc.num_processes,
         kind=str(acc.distributed_type), epochs=len(clf.history), restored=restored)
"""


@needs_accelerate
@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is missing")
def test_two_processes_train_one_model(tmp_path):
    # distributed data parallel on two CPU processes (gloo), as `accelerate
    # launch` starts it on GPUs: both processes must end with the same network
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(_DDP_SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", str(script), str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    assert all(int(r["n"]) == 2 and "MULTI_CPU" in str(r["kind"]) for r in ranks)
    # the best epoch was not the last, so its weights were loaded into the
    # still-wrapped network (loading them after unwrapping fails on "module." keys)
    assert bool(ranks[0]["restored"])
    assert ranks[0]["first"].shape == (60, 7), "every process predicts every row"
    np.testing.assert_array_equal(ranks[0]["first"], ranks[1]["first"])
    # without re-wrapping on warm start the processes silently diverge
    np.testing.assert_array_equal(ranks[0]["second"], ranks[1]["second"])
    assert int(ranks[0]["epochs"]) == 5
