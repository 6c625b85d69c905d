"""Tests for skderm.losses: CrossEntropy, FocalLoss and LogitAdjustedLoss, on hard
and soft (mixed) targets."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score

from skderm.losses import LOSSES, CrossEntropy, FocalLoss, LogitAdjustedLoss

REDUCTIONS = ["mean", "sum", "none"]
# HAM10000's class counts (akiec, bcc, bkl, df, mel, nv, vasc)
COUNTS = torch.tensor([327.0, 514, 1099, 115, 1113, 6705, 142])


def _loss_batch():
    """16 random 7-class logits, their targets and random class weights in [0.5, 1.5)."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 7, generator=gen)
    target = torch.randint(0, 7, (16,), generator=gen)
    return logits, target, torch.rand(7, generator=gen) + 0.5


def _every_loss(weight, reduction):
    return {
        "cross_entropy": CrossEntropy(weight=weight, reduction=reduction),
        "smoothed": CrossEntropy(0.1, weight=weight, reduction=reduction),
        "focal": FocalLoss(1.5, weight=weight, reduction=reduction),
        "logit_adjusted": LogitAdjustedLoss(COUNTS, tau=0.7, weight=weight, reduction=reduction),
    }


def test_the_registry_names_each_loss_class():
    assert LOSSES == {"cross_entropy": CrossEntropy, "focal": FocalLoss,
                      "logit_adjusted": LogitAdjustedLoss}


# ---------------------------------------------------------------------------
# soft targets: what Mixup hands the loss
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["cross_entropy", "smoothed", "focal", "logit_adjusted"])
def test_one_hot_soft_targets_give_the_hard_target_loss(name, reduction):
    logits, target, weight = _loss_batch()
    for w in (None, weight):
        loss = _every_loss(w, reduction)[name]
        torch.testing.assert_close(loss(logits, F.one_hot(target, 7).float()),
                                   loss(logits, target))


def _mixed(lam):
    """The batch's targets mixed with a permutation of themselves, as Mixup mixes them."""
    logits, target, weight = _loss_batch()
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(target[perm], target)
    one_hot = F.one_hot(target, 7).float()
    soft = lam * one_hot + (1 - lam) * one_hot[perm]
    return logits, target, target[perm], soft, weight


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["cross_entropy", "smoothed", "focal", "logit_adjusted"])
@pytest.mark.parametrize("lam", [0.3, 0.8])
def test_soft_targets_give_the_lam_blend_of_the_two_hard_losses(name, reduction, lam):
    logits, a, b, soft, _ = _mixed(lam)
    loss = _every_loss(None, reduction)[name]
    torch.testing.assert_close(loss(logits, soft),
                               lam * loss(logits, a) + (1 - lam) * loss(logits, b))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["cross_entropy", "smoothed", "focal", "logit_adjusted"])
@pytest.mark.parametrize("lam", [0.3, 0.8])
def test_weighted_soft_targets_give_the_lam_blend_of_the_two_hard_losses(name, reduction, lam):
    # the class weights of a mixed pair weight each label's share of its loss;
    # the two hard batches hold the same labels, so "mean" divides both by one sum
    logits, a, b, soft, weight = _mixed(lam)
    loss = _every_loss(weight, reduction)[name]
    torch.testing.assert_close(loss(logits, soft),
                               lam * loss(logits, a) + (1 - lam) * loss(logits, b))


# ---------------------------------------------------------------------------
# CrossEntropy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_cross_entropy_matches_torch_where_torch_is_right(reduction, eps):
    logits, target, weight = _loss_batch()
    # unweighted: torch's label smoothing
    torch.testing.assert_close(
        CrossEntropy(eps, reduction=reduction)(logits, target),
        nn.CrossEntropyLoss(label_smoothing=eps, reduction=reduction)(logits, target))
    # no smoothing: torch's class weights
    torch.testing.assert_close(
        CrossEntropy(0.0, weight=weight, reduction=reduction)(logits, target),
        nn.CrossEntropyLoss(weight=weight, reduction=reduction)(logits, target))


def test_smoothed_cross_entropy_ignores_other_classes_weights():
    # HAM10000's balanced weights, roughly: a nevus (class 5) weighs 0.2, df 12
    weight = torch.tensor([3.5, 2.2, 1.05, 12.0, 1.0, 0.2, 8.1])
    target = torch.tensor([5])
    unweighted = CrossEntropy(0.1)
    weighted = CrossEntropy(0.1, weight=weight)
    losses = []
    for confidence in (0.5, 0.9, 0.99):
        p = torch.full((1, 7), (1 - confidence) / 6)
        p[0, 5] = confidence
        torch.testing.assert_close(weighted(p.log(), target), unweighted(p.log(), target))
        losses.append(weighted(p.log(), target).item())
        # torch's version: the nevus image pays for not predicting df, so its loss
        # grows as the prediction gets more right
        torch_ce = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)(p.log(), target)
        assert torch_ce.item() > 2 * losses[-1]
    assert losses[0] > losses[1]  # more confident and right: lower loss


@pytest.mark.parametrize("kwargs, match", [
    ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\), got 1.0"),
    ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\), got -0.1"),
    ({"reduction": "avg"}, "reduction must be 'mean', 'sum' or 'none', got 'avg'"),
])
def test_cross_entropy_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossEntropy(**kwargs)


# ---------------------------------------------------------------------------
# FocalLoss
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_focal_loss_with_gamma_zero_is_cross_entropy(reduction, weighted):
    logits, target, weight = _loss_batch()
    weight = weight if weighted else None
    focal = FocalLoss(gamma=0.0, weight=weight, reduction=reduction)(logits, target)
    ce = nn.CrossEntropyLoss(weight=weight, reduction=reduction)(logits, target)
    torch.testing.assert_close(focal, ce)


def test_focal_loss_down_weights_easy_examples():
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.2, 0.0, 0.0]])
    target = torch.tensor([0, 0])
    ce = nn.CrossEntropyLoss(reduction="none")(logits, target)
    focal = FocalLoss(gamma=2.0, reduction="none")(logits, target)
    assert torch.all(focal < ce)
    # the confident (easy) example loses far more of its weight than the hard one
    assert focal[0] / ce[0] < 0.01 < 0.3 < focal[1] / ce[1]
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1.0"):
        FocalLoss(gamma=-1.0)


# ---------------------------------------------------------------------------
# LogitAdjustedLoss
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_logit_adjusted_loss_is_cross_entropy_of_shifted_logits(reduction, weighted):
    logits, target, weight = _loss_batch()
    weight = weight if weighted else None
    shifted = logits + 0.7 * (COUNTS / COUNTS.sum()).log()
    torch.testing.assert_close(
        LogitAdjustedLoss(COUNTS, tau=0.7, weight=weight, reduction=reduction)(logits, target),
        nn.CrossEntropyLoss(weight=weight, reduction=reduction)(shifted, target))
    # uniform priors or tau=0: the plain cross entropy
    ce = nn.CrossEntropyLoss(weight=weight, reduction=reduction)(logits, target)
    torch.testing.assert_close(
        LogitAdjustedLoss(torch.ones(7), weight=weight, reduction=reduction)(logits, target), ce)
    torch.testing.assert_close(
        LogitAdjustedLoss(COUNTS, tau=0.0, weight=weight, reduction=reduction)(logits, target),
        ce)


def test_logit_adjusted_loss_rejects_bad_priors_and_tau():
    with pytest.raises(ValueError, match="tau must be >= 0, got -0.5"):
        LogitAdjustedLoss(torch.ones(3), tau=-0.5)
    with pytest.raises(ValueError, match=r"\[1.0, 0.0, 2.0\]"):
        LogitAdjustedLoss(torch.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="logits have 4 classes, the prior 3"):
        LogitAdjustedLoss(torch.ones(3))(torch.zeros(2, 4), torch.tensor([0, 1]))


def test_logit_adjusted_loss_buys_balanced_accuracy_that_plain_loss_does_not():
    # two overlapping Gaussian classes, 19:1: the cross entropy's argmax
    # minimises errors and gives up most of the rare class; the logit-adjusted
    # model's argmax aims at mean recall
    gen = torch.Generator().manual_seed(0)
    n_major, n_minor = 1900, 100
    x = torch.cat([torch.randn(n_major, 2, generator=gen),
                   torch.randn(n_minor, 2, generator=gen) + torch.tensor([1.5, 1.5])])
    y = torch.cat([torch.zeros(n_major, dtype=torch.long), torch.ones(n_minor, dtype=torch.long)])

    def fit(loss):
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(300):
            opt.zero_grad()
            loss(model(x), y).backward()
            opt.step()
        pred = model(x).argmax(1).numpy()
        return balanced_accuracy_score(y.numpy(), pred)

    plain = fit(CrossEntropy())
    adjusted = fit(LogitAdjustedLoss(torch.tensor([n_major, n_minor], dtype=torch.float32)))
    assert plain < 0.75 < 0.83 < adjusted
