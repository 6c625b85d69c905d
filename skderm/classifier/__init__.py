"""LesionClassifier and what it is built from: the network, its callbacks, checkpoints."""

from skderm.classifier._classifier import LesionClassifier
from skderm.classifier.network import LesionNet, resolve_device

__all__ = ["LesionClassifier", "LesionNet", "resolve_device"]
