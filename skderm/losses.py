"""Losses for imbalanced lesion classification, on hard or soft (mixed) targets.

Each takes logits and either class indices ``(N,)`` or per-class target
probabilities ``(N, C)`` (what :class:`skderm.transforms.Mixup` hands the loss).
Class weights weight samples: a sample's weight is its target's class weight
(the target-weighted mean of them for a soft target), and ``"mean"`` divides by
the summed sample weights, like :class:`torch.nn.CrossEntropyLoss` on hard
targets. So a mixed pair's loss is exactly the ``lam``-blend of the two labels'
losses.
"""

from __future__ import annotations

from numbers import Real

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LOSSES", "CrossEntropy", "FocalLoss", "LogitAdjustedLoss"]


def _real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


class _PerClassLoss(nn.Module):
    """Reduce a per-class loss matrix ``(N, C)`` with hard or soft targets and class weights."""

    def __init__(self, weight: torch.Tensor | None, reduction: str):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight))

    def per_class(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = self.per_class(logits.float())
        weight = None if self.weight is None else self.weight.to(losses.dtype)
        if target.ndim == 1:
            loss = losses.gather(1, target[:, None]).squeeze(1)
            w = None if weight is None else weight[target]
            if w is not None:
                loss = loss * w
        else:  # each class's share of the target weighs its loss by its own weight
            target = target.to(losses.dtype)
            shares = target if weight is None else target * weight
            loss = (shares * losses).sum(1)
            w = None if weight is None else shares.sum(1)
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / (w.sum() if w is not None else loss.new_tensor(len(loss)))


class CrossEntropy(_PerClassLoss):
    """Cross entropy, optionally label-smoothed, whose class weights weight samples.

    ``L = w_y [(1 - eps) (-log p_y) + eps * mean_c(-log p_c)]``. With
    ``eps=0`` it is :class:`torch.nn.CrossEntropyLoss` ``(weight=weight)``.
    ``CrossEntropyLoss(weight=w, label_smoothing=eps)`` differs: it weights the
    smoothing term of every class by that class's weight, so with balanced
    weights a nevus image is penalised for not predicting the rare classes.
    Here a sample's loss never depends on other classes' weights.

    Parameters
    ----------
    label_smoothing : float, default=0.0
        In [0, 1).
    weight : Tensor of shape (n_classes,), default=None
    reduction : {"mean", "sum", "none"}, default="mean"
    """

    def __init__(self, label_smoothing: float = 0.0, weight: torch.Tensor | None = None,
                 reduction: str = "mean"):
        if not (_real(label_smoothing) and 0.0 <= label_smoothing < 1.0):
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        super().__init__(weight, reduction)
        self.label_smoothing = float(label_smoothing)

    def per_class(self, logits):
        logp = F.log_softmax(logits, dim=1)
        eps = self.label_smoothing
        if not eps:
            return -logp
        return -(1 - eps) * logp - eps * logp.mean(dim=1, keepdim=True)


class FocalLoss(_PerClassLoss):
    """Multi-class focal loss (Lin et al., 2017): ``-w_y (1 - p_y)^gamma log p_y``.

    Down-weights easy, confidently classified examples (most nevi in
    HAM10000); ``gamma=0`` is the class-weighted cross entropy.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter, >= 0.
    weight : Tensor of shape (n_classes,), default=None
    reduction : {"mean", "sum", "none"}, default="mean"
    """

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None,
                 reduction: str = "mean"):
        if not (_real(gamma) and gamma >= 0):
            raise ValueError(f"focal loss gamma must be >= 0, got {gamma!r}")
        super().__init__(weight, reduction)
        self.gamma = float(gamma)

    def per_class(self, logits):
        logp = F.log_softmax(logits, dim=1)
        return -((1 - logp.exp()).clamp_min(0) ** self.gamma) * logp


class LogitAdjustedLoss(_PerClassLoss):
    """Logit-adjusted cross entropy (Menon et al., 2021), aimed at balanced error.

    ``L = -log softmax(z + tau * log(prior))_y``: only the loss sees the
    shifted logits, so the model's own logits estimate the class-balanced
    posterior, whose argmax maximises mean recall, without large per-sample
    class weights. :class:`~skderm.LesionClassifier` passes the training
    labels' frequencies as ``prior`` unless ``criterion__prior`` is set.

    Parameters
    ----------
    prior : Tensor of shape (n_classes,)
        Positive class frequencies; normalised here.
    tau : float, default=1.0
        Strength of the adjustment, >= 0; ``0`` is the plain cross entropy.
    weight : Tensor of shape (n_classes,), default=None
    reduction : {"mean", "sum", "none"}, default="mean"
    """

    def __init__(self, prior: torch.Tensor, tau: float = 1.0,
                 weight: torch.Tensor | None = None, reduction: str = "mean"):
        if not (_real(tau) and tau >= 0):
            raise ValueError(f"logit adjustment tau must be >= 0, got {tau!r}")
        prior = torch.as_tensor(prior, dtype=torch.float32)
        if prior.ndim != 1 or not bool((prior > 0).all()):
            raise ValueError("prior must be a 1-d tensor of positive class frequencies, "
                             f"got {prior.tolist()}")
        super().__init__(weight, reduction)
        self.tau = float(tau)
        self.register_buffer("log_prior", (prior / prior.sum()).log())

    def per_class(self, logits):
        if logits.shape[1] != len(self.log_prior):
            raise ValueError(f"logits have {logits.shape[1]} classes, the prior "
                             f"{len(self.log_prior)}")
        return -F.log_softmax(logits + self.tau * self.log_prior, dim=1)


#: skderm's losses by name: ``LesionClassifier(criterion="focal")`` is
#: ``criterion=FocalLoss``; names keep recipes and model files plain data.
LOSSES = {"cross_entropy": CrossEntropy, "focal": FocalLoss, "logit_adjusted": LogitAdjustedLoss}
