"""The learning-rate range test: an exponential sweep, a suggestion, the estimator untouched."""

import numpy as np
import pytest

from skderm import LesionClassifier
from skderm.classifier.lr_finder import lr_find


@pytest.fixture(scope="module")
def sweep(tiny_lesions):
    clf = LesionClassifier(backbone="tiny", weights=None, image_size=(48, 64), random_state=0,
                           batch_size=16)
    return clf, lr_find(clf, tiny_lesions.data, tiny_lesions.target, start_lr=1e-6,
                        end_lr=100.0, num_it=40)


def test_sweep_is_exponential_and_leaves_the_estimator_unfitted(sweep):
    clf, result = sweep
    assert not clf.initialized_
    assert result.lrs[0] == pytest.approx(1e-6)
    ratios = result.lrs[1:] / result.lrs[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert len(result.losses) == len(result.lrs) <= 40


def test_too_high_rates_diverge_and_stop_the_sweep_early(sweep):
    _, result = sweep
    # up to 100: the loss blows past four times its minimum before the end
    assert len(result.lrs) < 40
    assert result.losses[-1] > 2 * result.losses.min()


def test_suggestion_lies_before_the_loss_minimum(sweep):
    _, result = sweep
    assert result.lrs[0] <= result.suggestion <= result.lrs[np.argmin(result.losses)]


def test_same_seed_same_sweep(sweep, tiny_lesions):
    clf, result = sweep
    again = lr_find(clf, tiny_lesions.data, tiny_lesions.target, start_lr=1e-6, end_lr=100.0,
                    num_it=40)
    np.testing.assert_array_equal(again.losses, result.losses)


def test_plot_marks_the_suggestion(sweep):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    fig = sweep[1].plot()
    assert fig.axes[0].get_xscale() == "log"


@pytest.mark.parametrize("kwargs", [{"start_lr": 1.0, "end_lr": 0.1}, {"num_it": 1}])
def test_bad_sweeps_are_named(tiny_lesions, kwargs):
    with pytest.raises(ValueError, match="lr_find"):
        lr_find(LesionClassifier(backbone="tiny", weights=None), tiny_lesions.data,
                tiny_lesions.target, **kwargs)
