"""LesionClassifier on several GPUs or machines, through Hugging Face Accelerate.

:class:`AcceleratedLesionClassifier` is :class:`~skderm.LesionClassifier` with
skorch's :class:`skorch.hf.AccelerateMixin`: an :class:`accelerate.Accelerator`
places the network, wraps it for distributed data parallel training when the
script runs under ``accelerate launch`` (or ``torchrun``) and shards the
training batches across the processes. Run on one device it trains exactly as
:class:`~skderm.LesionClassifier` does.

Accelerate is optional: importing this module works without it, fitting with
the default ``accelerator=None`` raises an :class:`ImportError` that says what
to install.
"""

from skderm.accelerate._classifier import AcceleratedLesionClassifier

__all__ = ["AcceleratedLesionClassifier"]
