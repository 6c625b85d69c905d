"""Saliency that explains rather than decorates (issue 36).

On make_lesions images, whose generator knows where each lesion lies: a
trained network's maps put most of their mass on the lesion, far above the
lesion's share of the image; with randomised weights they do not, and the map
changes (the model-randomisation check of Adebayo et al., 2018).
"""

import copy

import numpy as np
import pytest
import torch

from skderm import LesionClassifier, make_lesions
from skderm.explain import grad_cam, occlusion, overlay, target_layer

SIZE = (72, 96)


def _share_inside(maps, masks):
    return float((maps * masks).sum() / maps.sum())


@pytest.fixture(scope="module")
def lesions(tmp_path_factory):
    return make_lesions(150, image_size=SIZE, random_state=0,
                        directory=tmp_path_factory.mktemp("explain"))


@pytest.fixture(scope="module")
def trained(lesions):
    clf = LesionClassifier(backbone="tiny", weights=None, image_size=SIZE, random_state=0,
                           max_epochs=12, valid_size=None, verbose=0, lr=3e-3, test_crop=None)
    return clf.fit(lesions.data, lesions.target)


@pytest.fixture(scope="module")
def randomised(trained):
    clf = copy.deepcopy(trained)
    torch.manual_seed(1)
    for m in clf.module_.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return clf


@pytest.fixture(scope="module")
def sample(lesions):
    return lesions.data[:30], lesions.masks[:30]


def test_trained_grad_cam_lies_on_the_lesion(trained, sample):
    X, masks = sample
    maps = grad_cam(trained, X)
    assert maps.shape == masks.shape and maps.min() >= 0 and maps.max() <= 1
    assert _share_inside(maps, masks) > 2.5 * masks.mean()


def test_trained_occlusion_lies_on_the_lesion(trained, sample):
    X, masks = sample
    assert _share_inside(occlusion(trained, X), masks) > 2 * masks.mean()


def test_randomised_weights_neither_localise_nor_keep_the_map(trained, randomised, sample):
    from scipy.stats import spearmanr

    X, masks = sample
    before, after = grad_cam(trained, X), grad_cam(randomised, X)
    assert _share_inside(after, masks) < 1.5 * masks.mean()
    rho = np.nanmean([spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(before, after, strict=True)])
    assert rho < 0.5


def test_saliency_leaves_the_model_as_it_was(trained, sample):
    state = {k: v.clone() for k, v in trained.module_.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in trained.module_.parameters()]
    training = trained.module_.training
    grad_cam(trained, sample[0][:2])
    occlusion(trained, sample[0][:2])
    assert all(torch.equal(state[k], v) for k, v in trained.module_.state_dict().items())
    assert all((g is None and p.grad is None) or torch.equal(g, p.grad)
               for g, p in zip(grads, trained.module_.parameters(), strict=True))
    assert trained.module_.training == training


def test_a_test_crop_leaves_the_border_at_zero(trained, sample):
    clf = copy.deepcopy(trained).set_params(test_crop=0.5)
    maps = grad_cam(clf, sample[0][:3])
    assert maps[:, 0, :].max() == 0 and maps[:, :, 0].max() == 0


def test_target_class_and_bad_target(trained, sample):
    X = sample[0][:2]
    other = trained.classes_[0]
    assert grad_cam(trained, X, target=other).shape == (2, *SIZE)
    with pytest.raises(ValueError, match="not a class of this model"):
        grad_cam(trained, X, target="no-such-class")


def test_target_layer_is_the_last_spatial_stage():
    from skderm.backbones import build_backbone

    backbone, _, _ = build_backbone("tiny", None)
    assert target_layer(backbone) == "2"


def test_overlay_is_an_image_of_the_same_size(lesions):
    from skderm.images import read_image

    image = read_image(lesions.data["path"][0], SIZE)
    heat = np.zeros(SIZE)
    heat[10:20, 10:20] = 1
    out = overlay(image, heat)
    assert out.shape == (*SIZE, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], image[0, 0])  # no saliency: unchanged
    assert out[15, 15, 0] >= image[15, 15, 0]


def test_saliency_needs_a_lesion_classifier():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="LesionClassifier"):
        grad_cam(LogisticRegression(), None)


@pytest.mark.parametrize("name", ["tiny", "tf_efficientnet_lite0", "resnet18", "mobilenet_v2"])
def test_registry_names_the_last_spatial_stage_as_saliency_layer(name):
    from skderm.backbones import build_backbone, get_backbone

    backbone, _, _ = build_backbone(name, None)
    assert get_backbone(name).saliency_layer == target_layer(backbone)
