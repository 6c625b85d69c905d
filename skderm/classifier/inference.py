"""The prediction side of LesionClassifier: the view the network sees, TTA, probabilities.

Validation and prediction show the network one :class:`~skderm.transforms.InferenceView`
(colour constancy, the test crop, the flips), built from the parameters at every
call, so a setting changed on a fitted model takes effect.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
from skorch.utils import is_dataset

from skderm.exceptions import TrainingDivergedError
from skderm.images import cache_mode, iter_chunks
from skderm.transforms import InferenceView, resolve_augmentation, resolve_colour_constancy

__all__ = ["InferenceMixin"]


class InferenceMixin:
    """skorch's validation, evaluation and inference steps, and chunked ``predict_proba``."""

    def inference_view(self) -> InferenceView:
        """What validation, prediction, saliency and export see: colour constancy, the
        test crop and the flips, read from the parameters at every call (so a setting
        changed on a fitted model takes effect)."""
        self._check_params(("test_crop", "tta"))
        area = self.test_crop
        if isinstance(area, str):  # "auto": the training crops' mean area
            aug = resolve_augmentation(self.augmentation)
            area = None if aug is None or aug.crop_scale is None else sum(aug.crop_scale) / 2
        power = resolve_colour_constancy(self.colour_constancy, owner=type(self).__name__)
        return InferenceView(colour_power=power, crop_area=None if area is None or area >= 1
                             else float(area), flips=self.tta)

    def validation_step(self, batch, **fit_params):
        x, y = batch
        x = self._to_device(x)
        x["images"] = self.inference_view().prepare(x["images"])
        return super().validation_step((x, y), **fit_params)

    def evaluation_step(self, batch, training=False):
        if training:
            return super().evaluation_step(batch, training=True)
        self.check_is_fitted()
        x = self._to_device(batch[0])
        view = self.inference_view()
        self._set_training(False)
        with torch.no_grad():
            if not view.flips:
                return self.infer({**x, "images": view.prepare(x["images"])})
            probs = sum(torch.softmax(self.infer({**x, "images": v}), dim=1)
                        for v in view.views(x["images"]))
        return torch.log(probs / 4)  # predict_proba's softmax maps it back to the mean

    def infer(self, x, **fit_params):
        x = self._to_device(x)
        if self._use_channels_last():
            x["images"] = x["images"].contiguous(memory_format=torch.channels_last)
        amp = (torch.autocast(self._device_type(), dtype=torch.bfloat16)
               if self._use_amp() else contextlib.nullcontext())
        with amp:
            return self.module_(**x, **fit_params).float()

    def _get_predict_nonlinearity(self):
        if self.predict_nonlinearity == "auto":
            return functools.partial(torch.softmax, dim=1)
        return super()._get_predict_nonlinearity()

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``, decoded and
        predicted a chunk at a time (:func:`skderm.images.iter_chunks`)."""
        self.check_is_fitted()
        if is_dataset(X):
            return super().predict_proba(X)
        chunks, predict_part = list(iter_chunks(X)), super().predict_proba
        with cache_mode(True if len(chunks) == 1 else "read"):
            proba = np.concatenate([predict_part(part) for _, part in chunks])
        if not np.isfinite(proba).all():
            raise TrainingDivergedError(
                "this model predicts non-finite probabilities: its weights are not finite "
                "(training diverged); refit it with a lower lr")
        return proba

    def predict(self, X):
        """Predicted labels (values of ``classes_``)."""
        proba = self.predict_proba(X)  # raises NotFittedError first when unfitted
        return self.classes_[proba.argmax(axis=1)]

