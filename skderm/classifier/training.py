"""The training side of LesionClassifier: the criterion, the batch path, the epoch count.

A training batch goes through colour constancy, augmentation and
:class:`~skderm.transforms.Mixup` (which returns soft targets) before
skorch's own step; the batch order comes from a generator seeded by
``random_state`` and the epochs done, which checkpoints save.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn.functional as F
from skorch.utils import to_tensor

from skderm.classifier.checkpoint import checkpoint_dir
from skderm.losses import LOSSES
from skderm.transforms import colour_constancy, resolve_augmentation, resolve_colour_constancy

__all__ = ["TrainingMixin"]


class TrainingMixin:
    """skorch's ``initialize_criterion``, ``on_train_begin``, ``train_step`` and
    ``fit_loop`` for a LesionClassifier."""

    def initialize_criterion(self):
        kwargs = self.get_params_for("criterion")
        weight = getattr(self, "class_weight_", None)
        if weight is not None:
            kwargs.setdefault("weight", torch.as_tensor(weight, dtype=torch.float32))
        criterion = LOSSES.get(self.criterion, self.criterion)
        if "prior" in inspect.signature(criterion).parameters:
            # LogitAdjustedLoss: the training labels' frequencies (uniform for a loaded model)
            prior = getattr(self, "class_prior_", None)
            kwargs.setdefault("prior", np.ones(len(self.classes_)) if prior is None else prior)
        self.criterion_ = criterion(**kwargs)
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # the batch order: a function of the seed and the epochs done (checkpoints save it)
        self.batch_generator_ = (None if self.random_state is None else torch.Generator()
                                 .manual_seed(int(self.random_state) + len(self.history)))
        aug = resolve_augmentation(self.augmentation)
        self.augment_ = None if aug is None else aug.build()

    def train_step(self, batch, **fit_params):
        """Colour constancy, augmentation and mixing of the batch, then skorch's step."""
        x, y = batch
        x = self._to_device(x)
        images, metadata = x["images"], x.get("metadata")
        power = resolve_colour_constancy(self.colour_constancy, owner=type(self).__name__)
        if power is not None:  # before augmentation: jitter then varies the corrected colours
            images = colour_constancy(images, power)
        if self.augment_ is not None:
            images = self.augment_(images)
        if self.mixup is not None:
            target = F.one_hot(to_tensor(y, self._compute_device()).long(),
                               len(self.classes_)).float()
            images, metadata, y = self.mixup(images, metadata, target)
        x["images"] = images
        if metadata is not None:
            x["metadata"] = metadata
        return super().train_step((x, y), **fit_params)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        if epochs is None and self.warm_start and checkpoint_dir(self) is not None:
            epochs = max(0, self.max_epochs - len(self.history))  # a resumed run: the rest
        return super().fit_loop(X, y, epochs=epochs, **fit_params)
