"""skderm.classifier.callbacks: divergence stops training, a clean training score, plain logs."""

import io

import pytest

from skderm import LesionClassifier
from skderm.classifier.callbacks import print_plain_unless_terminal
from skderm.exceptions import TrainingDivergedError
from skderm.transforms import Mixup


def _clf(**kw):
    return LesionClassifier(backbone="tiny", weights=None, image_size=(48, 64), random_state=0,
                            verbose=0, batch_size=16, **kw)


def test_a_diverging_fit_fails_naming_the_rate(tiny_lesions):
    with pytest.raises(TrainingDivergedError, match=r"diverged.*lower lr"):
        _clf(lr=1e8, max_epochs=4, valid_size=None).fit(tiny_lesions.data, tiny_lesions.target)


def test_a_model_with_non_finite_weights_refuses_to_predict(tiny_lesions):
    import torch

    clf = _clf(max_epochs=1, valid_size=None).fit(tiny_lesions.data, tiny_lesions.target)
    with torch.no_grad():
        next(clf.module_.head.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        clf.predict(tiny_lesions.data)


def test_without_validation_the_clean_training_score_is_recorded(tiny_lesions, monkeypatch):
    from skderm.transforms import InferenceView

    clf = _clf(max_epochs=3, valid_size=None, mixup=Mixup(0.4), lr=3e-3, tta=True)
    with monkeypatch.context() as m:  # one view per image: the flips of tta are never made
        m.setattr(InferenceView, "views", lambda *a: pytest.fail("the score made flips"))
        clf.fit(tiny_lesions.data, tiny_lesions.target)
    scores = clf.history[:, "train_bacc"]
    assert len(scores) == 3
    # it is the balanced accuracy of one-view predictions (no flips) on the training images
    from sklearn.metrics import balanced_accuracy_score

    assert scores[-1] == pytest.approx(balanced_accuracy_score(
        tiny_lesions.target, clf.set_params(tta=False).predict(tiny_lesions.data)))


def test_the_clean_training_score_does_not_change_the_fit(tiny_lesions):
    # its predictions must not advance the random draws of the next epoch's augmentation
    import numpy as np

    params = dict(max_epochs=3, valid_size=None, mixup=Mixup(0.4, 1.0))
    watched = _clf(**params).fit(tiny_lesions.data, tiny_lesions.target)
    unwatched = _clf(callbacks__train_bacc=None, **params).fit(tiny_lesions.data,
                                                              tiny_lesions.target)
    assert "train_bacc" in watched.history[-1] and "train_bacc" not in unwatched.history[-1]
    assert np.array_equal(watched.history[:, "train_loss"], unwatched.history[:, "train_loss"])
    assert np.array_equal(watched.predict_proba(tiny_lesions.data),
                          unwatched.predict_proba(tiny_lesions.data))


def test_with_validation_there_is_no_training_score(tiny_lesions):
    clf = _clf(max_epochs=1, valid_size=0.3).fit(tiny_lesions.data, tiny_lesions.target)
    assert "train_bacc" not in clf.history[-1]


def test_colour_codes_only_reach_a_terminal(monkeypatch):
    coloured = "\x1b[32m0.5\x1b[0m"
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    print_plain_unless_terminal(coloured)
    assert out.getvalue() == "0.5\n"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr("sys.stdout", term)
    print_plain_unless_terminal(coloured)
    assert term.getvalue() == coloured + "\n"


def test_a_model_with_non_finite_weights_is_never_saved(tiny_lesions, tmp_path):
    import torch

    from skderm import save_model

    clf = _clf(max_epochs=1, valid_size=None).fit(tiny_lesions.data, tiny_lesions.target)
    with torch.no_grad():
        next(clf.module_.head.parameters())[0, 0] = float("inf")
    with pytest.raises(TrainingDivergedError, match="not finite"):
        save_model(clf, tmp_path / "m.skderm")
    assert not list(tmp_path.iterdir())
