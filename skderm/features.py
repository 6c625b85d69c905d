"""BackboneFeatures: frozen ImageNet embeddings as a scikit-learn transformer.

``transform(X)`` returns the pooled feature vector of every image from any
registry backbone, with the same weights resolution and preprocessing as
:class:`~skderm.LesionClassifier`. Downstream, any sklearn model: logistic
regression, SVC, gradient boosting, SMOTE on embeddings, and metadata fused
through a ColumnTransformer. In a ``Pipeline(memory=...)`` the embeddings of a
fold are computed once and reused by every downstream candidate of a grid.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skderm.backbones import build_backbone, get_backbone
from skderm.inputs import LesionDataset, collate, decode, parse_X
from skderm.network import LesionNet, resolve_device

__all__ = ["BackboneFeatures"]

_FLIPS = ((), (3,), (2,), (2, 3))


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
    batch_size : int, default=64
    tta : bool, default=False
        Average the embedding over the four flips of each image.
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

    def __init__(self, *, backbone: str = "tf_efficientnet_lite0", weights="imagenet",
                 image_size=None, batch_size: int = 64, tta: bool = False,
                 path_column: str = "path", device: str = "auto"):
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.batch_size = batch_size
        self.tta = tta
        self.path_column = path_column
        self.device = device

    def fit(self, X=None, y=None):
        """Build the backbone (no training happens); ``X`` and ``y`` are ignored."""
        spec = get_backbone(self.backbone)
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"BackboneFeatures batch_size must be a positive int, got "
                             f"{self.batch_size!r}")
        size = self.image_size if self.image_size is not None else spec.input_size
        self.image_size_ = (int(size), int(size)) if isinstance(size, int) else tuple(
            int(s) for s in size)
        net, n_features, spec = build_backbone(spec, self.weights)
        module = LesionNet(net, n_features, 1, spec.mean, spec.std)
        module.set_backbone_frozen(True)
        self.device_ = resolve_device(self.device)
        self.module_ = module.eval().to(self.device_)
        self.n_features_out_ = n_features
        return self

    def transform(self, X) -> np.ndarray:
        """Embeddings of the images in ``X``, shape (n_images, n_features_out_), float32."""
        check_is_fitted(self, "module_")
        inp = parse_X(X, path_column=self.path_column, group_column=None)
        images = decode(inp, self.image_size_)
        loader = torch.utils.data.DataLoader(LesionDataset(images), batch_size=self.batch_size,
                                             collate_fn=collate)
        out = np.empty((len(images), self.n_features_out_), dtype=np.float32)
        start = 0
        with torch.inference_mode():
            for x, _ in loader:
                x = x.to(self.device_, non_blocking=True)
                flips = _FLIPS if self.tta else _FLIPS[:1]
                feats = sum(self.module_.features(torch.flip(x, d) if d else x).float()
                            for d in flips) / len(flips)
                out[start:start + len(x)] = feats.cpu().numpy()
                start += len(x)
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "module_")
        name = str(self.backbone)
        return np.array([f"{name}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags
