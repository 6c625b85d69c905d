"""Losses for imbalanced lesion classification."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FocalLoss", "LogitAdjustedLoss", "SmoothedCrossEntropy"]


class _SampleWeightedLoss(nn.Module):
    """Per-sample losses weighted by their target's class weight, then reduced.

    ``"mean"`` divides by the summed weights of the targets, like
    :class:`torch.nn.CrossEntropyLoss`.
    """

    def __init__(self, weight: torch.Tensor | None, reduction: str):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight))

    def _reduce(self, loss: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.to(loss.dtype)[target]
        if w is not None:
            loss = loss * w
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / (w.sum() if w is not None else loss.new_tensor(len(loss)))


class FocalLoss(_SampleWeightedLoss):
    """Multi-class focal loss (Lin et al., 2017) on logits.

    ``FL = -w_y (1 - p_y)^gamma log p_y``: with ``gamma=0`` it is the
    (class-weighted) cross entropy. Down-weights easy, confidently classified
    examples, the bulk of which are nevi in HAM10000.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter, >= 0.
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights, as in :class:`torch.nn.CrossEntropyLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides by the summed weights of the targets, like
        ``CrossEntropyLoss``.
    """

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None,
                 reduction: str = "mean"):
        if gamma < 0:
            raise ValueError(f"focal loss gamma must be >= 0, got {gamma}")
        super().__init__(weight, reduction)
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        logp_t = logp.gather(1, target[:, None]).squeeze(1)
        loss = -((1 - logp_t.exp()).clamp_min(0) ** self.gamma) * logp_t
        return self._reduce(loss, target)


class SmoothedCrossEntropy(_SampleWeightedLoss):
    """Label-smoothed cross entropy whose class weights weight samples.

    ``L = w_y [(1 - eps) (-log p_y) + eps * mean_c(-log p_c)]``, and the mean
    divides by the summed weights of the targets. With ``weight=None`` it is
    :class:`torch.nn.CrossEntropyLoss` ``(label_smoothing=eps)``; with
    ``eps=0`` it is ``CrossEntropyLoss(weight=weight)``.

    ``CrossEntropyLoss(weight=w, label_smoothing=eps)`` differs: it weights the
    smoothing term of every class by that class's weight, so with balanced
    weights on HAM10000 (about 12 for df, 0.2 for nv) a nevus image is
    penalised for not predicting df, and confident nevus predictions cost more
    than uncertain ones. A model trained with it stops predicting nevi (seen
    on real data: nevus recall 0.52). Here a sample's loss never depends on
    the weights of classes other than its own.

    Parameters
    ----------
    label_smoothing : float, default=0.0
        In [0, 1).
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights of the samples.
    reduction : {"mean", "sum", "none"}, default="mean"
    """

    def __init__(self, label_smoothing: float = 0.0, weight: torch.Tensor | None = None,
                 reduction: str = "mean"):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        super().__init__(weight, reduction)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        nll = -logp.gather(1, target[:, None]).squeeze(1)
        eps = self.label_smoothing
        loss = (1 - eps) * nll - eps * logp.mean(dim=1)
        return self._reduce(loss, target)


class LogitAdjustedLoss(_SampleWeightedLoss):
    """Logit-adjusted cross entropy (Menon et al., 2021) for balanced error.

    ``L = -log softmax(z + tau * log(prior))_y``: the loss sees the logits
    shifted by the log class priors, the model's own logits ``z`` do not.
    Rare classes must then win by a larger margin during training, and at
    prediction the unshifted logits estimate the class-balanced posterior, the
    one whose argmax maximises balanced accuracy (mean recall), without the
    large per-sample weights of ``class_weight="balanced"`` (about 60x
    between a dermatofibroma and a nevus in HAM10000). With uniform priors
    (after oversampling, say) it is the plain cross entropy.

    Parameters
    ----------
    prior : Tensor of shape (n_classes,)
        Class frequencies of the training labels, positive; normalised here.
    tau : float, default=1.0
        Strength of the adjustment, >= 0; ``0`` is the plain cross entropy.
    weight : Tensor of shape (n_classes,), default=None
        Per-class weights of the samples, as in :class:`FocalLoss`.
    reduction : {"mean", "sum", "none"}, default="mean"
    """

    def __init__(self, prior: torch.Tensor, tau: float = 1.0,
                 weight: torch.Tensor | None = None, reduction: str = "mean"):
        if not tau >= 0:
            raise ValueError(f"logit adjustment tau must be >= 0, got {tau}")
        prior = torch.as_tensor(prior, dtype=torch.float32)
        if prior.ndim != 1 or not bool((prior > 0).all()):
            raise ValueError(f"prior must be a 1-d tensor of positive class frequencies, "
                             f"got {prior.tolist()}")
        super().__init__(weight, reduction)
        self.tau = float(tau)
        self.register_buffer("log_prior", (prior / prior.sum()).log())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] != len(self.log_prior):
            raise ValueError(f"logits have {logits.shape[1]} classes, the prior "
                             f"{len(self.log_prior)}")
        z = logits.float() + self.tau * self.log_prior
        loss = F.cross_entropy(z, target, reduction="none")
        return self._reduce(loss, target)
