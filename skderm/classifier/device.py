"""Where LesionClassifier computes: ``device="auto"``, bfloat16 autocast and NHWC.

skorch reads ``self.device`` as a torch device name: it reads ``"auto"``
resolved (:class:`~skderm.classifier.params.ResolvedParam`), while
``get_params``, ``clone`` and pickles keep ``"auto"``, so a model moved to a
machine with a GPU uses it.
"""

from __future__ import annotations

import torch
from skorch.utils import to_tensor

from skderm.classifier.network import resolve_device
from skderm.classifier.params import ResolvedParam

__all__ = ["DeviceMixin"]


class DeviceMixin:
    """The device, precision and memory-format policy of ``device``,
    ``mixed_precision`` and ``channels_last``."""

    device = ResolvedParam(lambda net, value: resolve_device(value))

    def _compute_device(self):
        """Where batches go (``self.device``; a subclass whose ``device`` is None may differ)."""
        return self.device

    def _to_device(self, x) -> dict:
        x = to_tensor(x, device=self._compute_device())
        return dict(x) if isinstance(x, dict) else {"images": x}

    def _device_type(self) -> str:
        return torch.device(self._compute_device() or "cpu").type

    def _use_amp(self) -> bool:
        if self.mixed_precision == "auto":
            return self._device_type() == "cuda" and torch.cuda.is_bf16_supported()
        return bool(self.mixed_precision) and self._device_type() in ("cuda", "cpu")

    def _use_channels_last(self) -> bool:
        if self.channels_last == "auto":
            return self._device_type() in ("cuda", "cpu")  # oneDNN is faster in NHWC too
        return bool(self.channels_last)

    def __setstate__(self, state):
        requested = state.get("device")
        if requested == "auto":  # skorch maps the tensors to state["device"]
            state["device"] = resolve_device("auto")
        super().__setstate__(state)
        if requested == "auto":  # skorch may have fallen back from a missing CUDA: keep that
            self.__dict__["device"] = "auto"
