"""How an AcceleratedLesionClassifier's network meets the Accelerator: prepared, wrapped
for distributed data parallel training, unwrapped after it, and forgotten.
"""

from __future__ import annotations

import torch
from skorch.callbacks import LRScheduler

__all__ = ["NetworkPlacementMixin", "forget"]


def forget(accelerator, *objects) -> None:
    """Drop ``accelerator``'s own references to ``objects`` (compared by identity).

    ``Accelerator.prepare`` keeps every network, optimizer and DataLoader it
    prepares, for its own ``save_state`` (which skderm does not use). Every fit
    prepares new ones: without this, an Accelerator shared by the clones of a
    search would keep every network of the search, and its data, alive.
    """
    for attr in ("_models", "_optimizers", "_dataloaders"):
        kept = getattr(accelerator, attr, None)
        if isinstance(kept, list):
            kept[:] = [o for o in kept if not any(o is x for x in objects)]


class NetworkPlacementMixin:
    """Prepare, wrap, unwrap and place the network and its optimizer with ``self.accelerator``."""

    def _initialize_accelerator(self):
        # the mixin's version, except for the criterion (see _prepare_network)
        if self._wrapped_with_accelerator:
            return self
        self._prepare_network()
        with self._current_init_context("optimizer"):
            for name in self._optimizers:
                optimizer = getattr(self, name + "_")
                if isinstance(optimizer, torch.optim.Optimizer):
                    setattr(self, name + "_", self.accelerator.prepare(optimizer))
        for _, cb in self.callbacks_:
            if isinstance(cb, LRScheduler):
                cb.policy_ = self.accelerator.prepare(cb.policy_)
        self._wrapped_with_accelerator = True
        return self

    def _prepare_network(self) -> None:
        for name in self._criteria:
            criterion = getattr(self, name + "_", None)
            if not isinstance(criterion, torch.nn.Module):
                continue
            if any(p.requires_grad for p in criterion.parameters()):
                setattr(self, name + "_", self.accelerator.prepare(criterion))
            elif self.accelerator.device_placement:
                # a loss has nothing to train, and distributed data parallel
                # refuses such a module: it only needs its class weights on
                # the device
                setattr(self, name + "_", criterion.to(self.accelerator.device))
        for name in self._modules:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module):
                setattr(self, name + "_", self.accelerator.prepare(module))

    def _wrap_network(self) -> None:
        # A warm start (or partial_fit) after an unwrapping fit would train
        # the bare network: without its distributed data parallel wrapper the
        # processes would silently stop averaging their gradients. The
        # optimizer stays prepared from the first fit.
        if not self.initialized_ or self._wrapped_with_accelerator:
            return
        self._place_network()
        self._prepare_network()
        self._wrapped_with_accelerator = True

    def _unwrap_network(self) -> None:
        prepared = [getattr(self, name + "_", None)
                    for name in self._modules + self._criteria + self._optimizers]
        self._unwrap_accelerator()
        forget(self.accelerator, *[p for p in prepared if p is not None])

    def _place_network(self) -> None:
        # an unpickled model sits on the CPU, and the Accelerator sends
        # batches to its own device
        if getattr(self, "_wrapped_with_accelerator", False) or \
                not getattr(self.accelerator, "device_placement", True):
            return
        device = self.accelerator.device
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module):
                setattr(self, name + "_", module.to(device))
