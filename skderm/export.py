"""Export a fitted LesionClassifier's whole prediction path to ONNX or TorchScript.

:class:`InferenceModule` is what ``predict_proba`` does after decoding, as one
``torch.nn.Module``: ``uint8`` images (N, H, W, 3) at the model's
``image_size_`` -> colour constancy (if set) -> the centred test crop (if
set) -> the network (which normalises with its backbone's mean and std) ->
softmax, averaged over the four flips when ``tta`` is on. A model with
metadata columns takes a second input: the *encoded* metadata, float32
(N, n_metadata), i.e. ``clf.metadata_encoder_.transform(frame)`` of the saved
model; the encoder stays in Python, so the columns it needs are recorded with
the export rather than re-implemented in the graph.

:func:`export_model` writes the module with ``torch.onnx.export`` (the
TorchScript-based exporter, which needs no extra package; ``grid_sample`` of
the crop needs opset >= 16) or ``torch.jit``, recording the class names,
image size and metadata columns in the ONNX ``metadata_props`` or the
TorchScript extra file ``skderm.json``. onnx and onnxruntime are optional:
``pip install 'skderm[export]'``.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from skderm._utils.files import atomic_write
from skderm._utils.paths import check_output_path
from skderm.exceptions import SkdermError
from skderm.transforms import colour_constancy

__all__ = ["ExportError", "InferenceModule", "export_file", "export_model", "FORMATS",
           "EXTRA_FILE", "MIN_OPSET"]

FORMATS = ("onnx", "torchscript")
# GridSample, which the centred test crop resamples with, entered ONNX in opset 16
MIN_OPSET = 16
# the TorchScript extra file holding what metadata_props holds in ONNX
EXTRA_FILE = "skderm.json"
_INSTALL = "pip install 'skderm[export]'"


class ExportError(SkdermError, TypeError):
    """The object given cannot be exported (only a fitted LesionClassifier can)."""


class InferenceModule(nn.Module):
    """``uint8`` images (N, H, W, 3) (+ encoded metadata) -> class probabilities (N, n_classes).

    Build it with :meth:`from_classifier`; its output equals the classifier's
    ``predict_proba`` on the same decoded images.

    Parameters
    ----------
    network : LesionNet
        Copied, moved to the CPU in float32 and put in eval mode.
    image_size : (height, width)
    colour_power : float or None, default=None
        Minkowski norm of colour constancy; ``None`` is off.
    crop_area : float in (0, 1) or None, default=None
        The centred test crop; ``None`` is the whole image.
    flips : bool, default=False
        Average the probabilities over the four flips.
    """

    def __init__(self, network: nn.Module, image_size, *, colour_power: float | None = None,
                 crop_area: float | None = None, flips: bool = False):
        super().__init__()
        self.network = copy.deepcopy(network).float().cpu().eval()
        self.network.to(memory_format=torch.contiguous_format)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.colour_power = None if colour_power is None else float(colour_power)
        self.flips = bool(flips)
        self.n_metadata = int(getattr(network, "n_metadata", 0))
        self.crop_area = None if crop_area is None else float(crop_area)
        if self.crop_area is not None:
            # the same grid skderm.transforms.centre_crop builds for every batch, built once:
            # the image size is fixed, and ONNX then needs no AffineGrid (opset 20)
            s = math.sqrt(self.crop_area)
            theta = torch.tensor([[[s, 0.0, 0.0], [0.0, s, 0.0]]])
            grid = F.affine_grid(theta, [1, 3, *self.image_size], align_corners=False)
            self.register_buffer("grid", grid)

    @classmethod
    def from_classifier(cls, clf) -> InferenceModule:
        """The prediction path of a fitted :class:`~skderm.LesionClassifier`."""
        _check_exportable(clf)
        # the classifier's own view of its settings (test_crop="auto" resolved, checked)
        view = clf.inference_view()
        return cls(clf.module_, clf.image_size_, colour_power=view.colour_power,
                   crop_area=view.crop_area, flips=view.flips)

    def forward(self, images: torch.Tensor, metadata: torch.Tensor | None = None):
        n = images.shape[0]
        x = images.permute(0, 3, 1, 2).float() / 255.0
        if self.colour_power is not None:
            x = colour_constancy(x, self.colour_power)
        if self.crop_area is not None:
            x = F.grid_sample(x, self.grid.expand(n, -1, -1, -1), mode="bilinear",
                              padding_mode="zeros", align_corners=False)
        if self.flips:  # the four views as one batch: one pass through the network
            x = torch.cat([x, x.flip(3), x.flip(2), x.flip(2).flip(3)])
            if metadata is not None:
                metadata = torch.cat([metadata] * 4)
        logits = self.network(x, metadata) if self.n_metadata else self.network(x)
        proba = torch.softmax(logits.float(), dim=1)
        if self.flips:
            proba = proba.reshape(4, n, proba.shape[1]).mean(dim=0)
        return proba

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        """Zero inputs of the right shapes and dtypes, for tracing."""
        images = torch.zeros((batch, *self.image_size, 3), dtype=torch.uint8)
        if self.n_metadata:
            return images, torch.zeros((batch, self.n_metadata), dtype=torch.float32)
        return (images,)


def _check_exportable(clf) -> None:
    """Refuse anything but a fitted LesionClassifier, naming what is supported."""
    from skderm.classifier import LesionClassifier

    if not isinstance(clf, LesionClassifier):
        inner = getattr(clf, "estimator_", None) or getattr(clf, "estimator", None)
        hint = ""
        if isinstance(inner, LesionClassifier):
            hint = (f"; export the LesionClassifier it wraps ({type(clf).__name__}.estimator_), "
                    "whose per-image probabilities it pools")
        elif hasattr(clf, "estimators_"):
            hint = ("; export each member (.estimators_) and average their probabilities "
                    "in the server")
        raise ExportError(f"export supports a fitted skderm LesionClassifier only, got "
                          f"{type(clf).__name__}{hint}")
    clf.check_is_fitted()


def _describe(clf) -> dict:
    """What a server needs besides the graph: classes, input size, metadata columns."""
    view = clf.inference_view()
    return {
        "format": "skderm-export",
        "classes": [c.item() if hasattr(c, "item") else c for c in clf.classes_],
        "image_size": list(clf.image_size_),
        "input": "uint8 RGB images (N, height, width, 3)",
        "output": "probabilities (N, n_classes), columns in the order of classes",
        "metadata_columns": list(clf.metadata_columns or []),
        "n_metadata": int(getattr(clf.module_, "n_metadata", 0)),
        "backbone": clf.preprocessing_["backbone"],
        # max-RGB's infinite norm as text: JSON has no infinity
        "colour_power": (view.colour_power if view.colour_power is None
                         or math.isfinite(view.colour_power) else "inf"),
        "crop_area": view.crop_area,
        "tta": view.flips,
    }


def _require_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"ONNX export needs the onnx package: {_INSTALL}") from exc
    return onnx


def _onnx_bytes(module: InferenceModule, info: dict, opset: int) -> bytes:
    onnx = _require_onnx()
    inputs = module.example_inputs()
    names = ["images", "metadata"][:len(inputs)]
    dynamic = {name: {0: "batch"} for name in [*names, "probabilities"]}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript-based exporter announces its deprecation in favour of
        # dynamo, which needs the onnxscript package; this one needs none
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, inputs, buffer, dynamo=False, opset_version=opset,
                          input_names=names, output_names=["probabilities"],
                          dynamic_axes=dynamic)
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in info.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.checker.check_model(model)
    return model.SerializeToString()


class _CheckedImages(nn.Module):
    """Refuses images of another size or type: the traced crop would resample them silently."""

    def __init__(self, inner: nn.Module, height: int, width: int):
        super().__init__()
        self.inner, self.height, self.width = inner, height, width

    def check(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.size(1) != self.height \
                or images.size(2) != self.width or images.size(3) != 3:
            # str.format, not an f-string: TorchScript compiles this method
            raise ValueError("this model takes uint8 images (N, {}, {}, 3), got {} {}; resize "  # noqa: UP032
                             "them to its image size first".format(self.height, self.width,
                                                                   images.dtype, images.shape))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check(images)
        return self.inner(images)


class _CheckedImagesMetadata(_CheckedImages):
    def forward(self, images: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        self.check(images)
        return self.inner(images, metadata.float())


def _torchscript_bytes(module: InferenceModule, info: dict) -> bytes:
    with warnings.catch_warnings():
        # torch.jit announces its deprecation in favour of torch.export; the saved
        # file still loads with torch.jit.load and needs no Python source
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, module.example_inputs(), check_trace=False)
        wrapper = _CheckedImagesMetadata if module.n_metadata else _CheckedImages
        scripted = torch.jit.script(wrapper(traced, *module.image_size))
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer, _extra_files={EXTRA_FILE: json.dumps(info)})
    return buffer.getvalue()


def export_model(clf, path: str | os.PathLike, *, format: str = "onnx",
                 opset: int = 17) -> Path:
    """Write a fitted LesionClassifier's prediction path, pixels to probabilities.

    Parameters
    ----------
    clf : LesionClassifier
        Fitted. A LesionLevelClassifier or an ensemble is refused, naming this.
    path : str or path-like
        The file to write (atomically).
    format : {"onnx", "torchscript"}, default="onnx"
    opset : int, default=17
        ONNX opset, at least 16 (``GridSample``); ignored for TorchScript.

    Returns
    -------
    Path
        The file written. Its inputs: ``images`` uint8 (N, H, W, 3) at
        ``clf.image_size_`` and, with metadata columns, ``metadata`` float32
        (N, n_metadata) from ``clf.metadata_encoder_.transform``; its output
        ``probabilities`` (N, n_classes). ``classes``, ``image_size``,
        ``metadata_columns``, ``n_metadata`` and the preprocessing settings are
        recorded as JSON values in the ONNX ``metadata_props`` or in the
        TorchScript extra file ``skderm.json``.
    """
    return _export(clf, path, format=format, opset=opset, inputs=())


def _export(clf, path, *, format: str, opset: int, inputs) -> Path:
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not valid; use one of {list(FORMATS)}")
    if format == "onnx" and (isinstance(opset, bool) or not isinstance(opset, int)
                             or opset < MIN_OPSET):
        raise ValueError(f"opset={opset!r} is not valid; use an int >= {MIN_OPSET} (the test "
                         "crop's GridSample entered ONNX in opset 16)")
    out = check_output_path(path, inputs=inputs, what="export file")
    if format == "onnx":
        _require_onnx()  # before any work
    _check_exportable(clf)
    module = InferenceModule.from_classifier(clf)
    info = _describe(clf)
    with torch.no_grad():
        data = (_onnx_bytes(module, info, opset) if format == "onnx"
                else _torchscript_bytes(module, info))
    with atomic_write(out) as fh:
        fh.write(data)
    return out


def export_file(model_path: str | os.PathLike, out_path: str | os.PathLike,
                format: str = "onnx", *, opset: int = 17) -> Path:
    """Load a model file written by :func:`skderm.save_model` and export it
    (``skderm export``); ``out_path`` may not be the model file itself."""
    from skderm.persistence import load_model

    check_output_path(out_path, inputs=[model_path], what="export file")
    clf = load_model(model_path)
    return _export(clf, out_path, format=format, opset=opset, inputs=[model_path])
