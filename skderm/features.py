"""BackboneFeatures: frozen ImageNet embeddings as a scikit-learn transformer.

``transform(X)`` returns the pooled feature vector of every image from any
registry backbone, with the same weights resolution and preprocessing as
:class:`~skderm.LesionClassifier`. Downstream, any sklearn model: logistic
regression, SVC, gradient boosting, SMOTE on embeddings, and metadata fused
through a ColumnTransformer. In a ``Pipeline(memory=...)`` the embeddings of a
fold are computed once and reused by every downstream candidate of a grid.

Embeddings of image files with pretrained (not random) weights are also kept
in a process-wide cache keyed by the file's content (the blake2b digest of its
bytes, :func:`skderm.images.file_digest`), backbone, weights, image size and
TTA, so the test fold of every grid candidate, and the next fold, embed nothing
twice, and an edited image is embedded afresh even when its size and
modification time did not change. :func:`embedding_cache_info` counts.

``transform`` streams: it decodes and embeds
:data:`~skderm.images.STREAM_CHUNK_SIZE` images at a time, and a pass longer
than one chunk adds nothing to the decoded-image cache, so its memory is
bounded by the chunk (plus the output and the embedding cache), not by the
number of images.
"""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from skderm import images as _images
from skderm._utils.lru import LRUCache
from skderm.backbones import build_backbone, get_backbone
from skderm.classifier.network import LesionNet, resolve_device
from skderm.exceptions import ImageError
from skderm.images import cache_mode, file_digest, stream_cache_mode
from skderm.inputs import LesionDataset, LesionInput, collate, decode, image_input_tags, parse_X
from skderm.transforms import InferenceView, resolve_colour_constancy

__all__ = ["BackboneFeatures", "embedding_cache_info", "clear_embedding_cache"]

# per-image embeddings, bounded in bytes
_CACHE = LRUCache(1 << 30)


def embedding_cache_info() -> dict:
    """``hits`` (images served from cache), ``misses`` (images embedded), ``entries``, ``nbytes``."""
    info = _CACHE.info()
    return {"hits": info.hits, "misses": info.misses, "entries": info.currsize,
            "nbytes": info.size}


def clear_embedding_cache() -> None:
    """Forget every cached embedding and reset the counters."""
    _CACHE.clear()


def _content_keys(paths: list[str]) -> list[str | None]:
    keys = []
    for p in paths:
        try:
            keys.append(file_digest(p))
        except ImageError:
            keys.append(None)  # decode() reports the missing file with its context
    return keys


def _weights_key(weights) -> str | None:
    """What names the loaded weights in the embedding cache; ``None`` caches nothing.

    A weights file is named by its content, so a file rewritten in place (a
    retrained backbone saved under the same name) never reuses old embeddings.
    """
    if weights is None:
        return None
    name = os.fspath(weights)
    if name == "imagenet":
        return name
    try:
        return "file:" + file_digest(name)
    except ImageError:
        return None  # not a readable file: embed without caching


class BackboneFeatures(TransformerMixin, BaseEstimator):
    """Embed lesion images with a frozen pretrained backbone.

    Parameters
    ----------
    backbone : str, default="tf_efficientnet_lite0"
        A name from :func:`skderm.list_backbones`.
    weights : {"imagenet"}, str path or None, default="imagenet"
        As in :class:`~skderm.LesionClassifier`.
    image_size : int, (height, width) or None, default=None
        ``None`` uses the backbone's input size.
    batch_size : int, default=32
        Images per forward pass; 32, as LesionClassifier (larger batches
        page-faulted their buffers in again on a CPU, for the same embeddings).
    tta : bool, default=False
        Average the embedding over the four flips of each image.
    colour_constancy : None, "shades_of_gray", "gray_world", "max_rgb" or float, default=None
        Take each image's illuminant out before embedding it, as
        :class:`~skderm.LesionClassifier` does
        (:func:`skderm.transforms.colour_constancy`).
    path_column : str, default="path"
        Column of a DataFrame X holding image paths.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.

    Attributes
    ----------
    module_ : torch.nn.Module
        The frozen backbone with its normalisation.
    n_features_out_ : int
    image_size_ : (height, width)
    """

    _parameter_constraints = {
        "backbone": [str],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "tta": ["boolean"],
        "path_column": [str],
        "device": [str],
    }

    def __init__(self, *, backbone: str = "tf_efficientnet_lite0", weights="imagenet",
                 image_size=None, batch_size: int = 32, tta: bool = False,
                 colour_constancy: str | float | None = None,
                 path_column: str = "path", device: str = "auto"):
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.batch_size = batch_size
        self.tta = tta
        self.colour_constancy = colour_constancy
        self.path_column = path_column
        self.device = device

    def fit(self, X=None, y=None):
        """Build the backbone (no training happens); ``X`` and ``y`` are ignored."""
        self._validate_params()
        spec = get_backbone(self.backbone)
        self.colour_power_ = resolve_colour_constancy(self.colour_constancy,
                                                      owner="BackboneFeatures")
        size = self.image_size if self.image_size is not None else spec.input_size
        self.image_size_ = (int(size), int(size)) if isinstance(size, int) else tuple(
            int(s) for s in size)
        net, n_features, spec = build_backbone(spec, self.weights)
        module = LesionNet(net, n_features, 1, spec.mean, spec.std)
        self.device_ = resolve_device(self.device)
        # NHWC: oneDNN's CPU convolutions and cuDNN's are faster in it (1.7x for
        # EfficientNet-Lite0 inference on 2 CPU cores)
        self.channels_last_ = torch.device(self.device_).type in ("cpu", "cuda")
        module = module.eval().to(self.device_)
        self.module_ = (module.to(memory_format=torch.channels_last) if self.channels_last_
                        else module)
        self.n_features_out_ = n_features
        self.weights_key_ = _weights_key(self.weights)
        return self

    def transform(self, X) -> np.ndarray:
        """Embeddings of the images in ``X``: shape ``(n_images, n_features_out_)``, float32.

        Images are decoded and embedded in chunks of
        :data:`~skderm.images.STREAM_CHUNK_SIZE`; see the module docstring.
        """
        check_is_fitted(self, "module_")
        inp = parse_X(X, path_column=self.path_column, group_column=None)
        out = np.empty((inp.n, self.n_features_out_), dtype=np.float32)
        chunk = _images.STREAM_CHUNK_SIZE
        with cache_mode(stream_cache_mode(inp.n, chunk_size=chunk)):
            for start in range(0, inp.n, chunk):
                rows = slice(start, min(start + chunk, inp.n))
                out[rows] = self._transform_chunk(_take(inp, rows))
        return out

    def _transform_chunk(self, inp: LesionInput) -> np.ndarray:
        out = np.empty((inp.n, self.n_features_out_), dtype=np.float32)
        keys: list = [None] * inp.n
        if inp.paths is not None and self.weights_key_ is not None:
            # random weights differ at every fit: only pretrained embeddings are cached
            config = (str(self.backbone), self.weights_key_, self.image_size_, bool(self.tta),
                      self.colour_power_)
            keys = [k and (k, config) for k in _content_keys(inp.paths)]
        todo = []
        for i, key in enumerate(keys):
            cached = None if key is None else _CACHE.get(key)
            if cached is None:
                todo.append(i)
            else:
                out[i] = cached
        if todo:
            sub = inp if len(todo) == inp.n else _take(inp, todo)
            out[todo] = self._embed(decode(sub, self.image_size_))
            for i in todo:
                if keys[i] is not None:
                    _CACHE.put(keys[i], out[i].copy())
        return out

    def _embed(self, images) -> np.ndarray:
        loader = torch.utils.data.DataLoader(LesionDataset(images), batch_size=self.batch_size,
                                             collate_fn=collate)
        out = np.empty((len(images), self.n_features_out_), dtype=np.float32)
        view = InferenceView(colour_power=self.colour_power_, flips=self.tta)
        memory = torch.channels_last if self.channels_last_ else torch.contiguous_format
        start = 0
        with torch.inference_mode():
            for x, _ in loader:
                views = list(view.views(x.to(self.device_, non_blocking=True)))
                feats = sum(self.module_.features(v.contiguous(memory_format=memory)).float()
                            for v in views) / len(views)
                out[start:start + len(x)] = feats.cpu().numpy()
                start += len(x)
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "module_")
        name = str(self.backbone)
        return np.array([f"{name}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = image_input_tags(super().__sklearn_tags__())
        tags.requires_fit = True
        return tags


def _take(inp: LesionInput, rows: slice | list[int]) -> LesionInput:
    """Rows of ``inp`` (paths or in-memory images) as a new input."""
    if isinstance(rows, slice):
        start, stop, _ = rows.indices(inp.n)
        if (start, stop) == (0, inp.n):
            return inp
        idx = range(start, stop)
    else:
        idx = rows
    if inp.paths is not None:
        return LesionInput(n=len(idx), paths=[inp.paths[i] for i in idx])
    return LesionInput(n=len(idx), arrays=inp.arrays[np.asarray(idx, dtype=np.intp)])
