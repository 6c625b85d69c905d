"""Losses for imbalanced lesion classification."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FocalLoss"]


class FocalLoss(nn.Module):
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
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal loss gamma must be >= 0, got {gamma}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.gamma = float(gamma)
        self.reduction = reduction
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        logp_t = logp.gather(1, target[:, None]).squeeze(1)
        loss = -((1 - logp_t.exp()).clamp_min(0) ** self.gamma) * logp_t
        w = None if self.weight is None else self.weight.to(loss.dtype)[target]
        if w is not None:
            loss = loss * w
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / (w.sum() if w is not None else loss.new_tensor(len(loss)))
