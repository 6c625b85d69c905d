"""Where LesionClassifier computes: ``device="auto"``, bfloat16 autocast and NHWC.

skorch reads ``self.device`` as a torch device name. ``"auto"`` stays the
parameter's value (so ``get_params`` and ``clone`` keep it) and is resolved,
for the length of each public call, by :func:`with_resolved_device`.
"""

from __future__ import annotations

import functools

import torch
from skorch.utils import to_tensor

from skderm.classifier.network import resolve_device

__all__ = ["DeviceMixin", "with_resolved_device"]


def with_resolved_device(method):
    """Run ``method`` with ``device="auto"`` resolved; ``get_params`` keeps ``"auto"``."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        requested = self.__dict__.get("device")
        if requested != "auto":
            return method(self, *args, **kwargs)
        self.__dict__["device"] = resolve_device("auto")
        try:
            return method(self, *args, **kwargs)
        finally:
            self.__dict__["device"] = requested
    return wrapper


class DeviceMixin:
    """The device, precision and memory-format policy of ``device``,
    ``mixed_precision`` and ``channels_last``."""

    def _to_device(self, x) -> dict:
        x = to_tensor(x, device=resolve_device(self.device))
        return dict(x) if isinstance(x, dict) else {"images": x}

    def _device_type(self) -> str:
        return torch.device(resolve_device(self.device)).type

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
        if requested == "auto":
            state["device"] = resolve_device("auto")
        super().__setstate__(state)
        if requested == "auto":  # skorch may have fallen back from a missing CUDA: keep that
            self.__dict__["device"] = "auto"
