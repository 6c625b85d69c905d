"""LesionClassifier: an ImageNet-pretrained CNN as a scikit-learn classifier.

A thin :class:`skorch.NeuralNetClassifier`. Its module is built in
``initialize_module`` from a registry backbone and a new head sized from
``y``; training is skorch's loop and callbacks (:mod:`.callbacks`). The mixins
hold the rest, one concept each: the parameters (:mod:`.params`), X to a
dataset (:mod:`.data`), the training batch (:mod:`.training`), what
validation and prediction see (:mod:`.inference`) and the device
(:mod:`.device`).
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Options, StrOptions
from skorch import NeuralNetClassifier
from skorch.dataset import Dataset
from skorch.utils import is_dataset

from skderm.backbones import build_backbone, get_backbone
from skderm.classifier.callbacks import default_callbacks
from skderm.classifier.data import LesionDataMixin
from skderm.classifier.device import DeviceMixin
from skderm.classifier.inference import InferenceMixin
from skderm.classifier.network import LesionNet
from skderm.classifier.params import SklearnParamsMixin, _Range
from skderm.classifier.training import TrainingMixin
from skderm.inputs import check_labels, class_prior, class_weights
from skderm.losses import LOSSES, CrossEntropy
from skderm.transforms import Augmentation, Mixup, resolve_colour_constancy

__all__ = ["LesionClassifier"]


class LesionClassifier(SklearnParamsMixin, LesionDataMixin, TrainingMixin, InferenceMixin,
                       DeviceMixin, NeuralNetClassifier):
    """Fine-tune an ImageNet-pretrained CNN on lesion images, the scikit-learn way.

    Parameters
    ----------
    backbone : str, default="tf_efficientnet_lite0"
        A name from :func:`skderm.list_backbones`.
    weights : "imagenet", path or None, default="imagenet"
        ``"imagenet"`` finds the backbone's ImageNet file offline first; a path
        loads that file; ``None`` starts from random weights.
    image_size : int, (height, width) or None, default=None
        Size images are resized to; ``None`` is the backbone's input size.
    freeze : "none", "backbone" or int, default="none"
        Train the head only (``"backbone"``), or the head only for the first
        ``N`` epochs and then everything: skorch's ``Freezer``/``Unfreezer``.
    freeze_until : str or None, default=None
        A backbone layer (``"blocks.3"``; :func:`skderm.backbones.backbone_layers`):
        every parameter before it keeps its ImageNet weights and BatchNorm
        statistics for good, and backpropagation stops there.
    augmentation : "default", "none", None or Augmentation, default="default"
        Training-time augmentation; an ``Augmentation(...)`` makes its settings
        searchable (``augmentation__rotation``).
    colour_constancy : None, "shades_of_gray", "gray_world", "max_rgb" or float, default=None
        Take each image's illuminant out, in training and prediction
        (:func:`skderm.transforms.colour_constancy`).
    class_weight : None, "balanced" or dict, default=None
        Class weights passed to the criterion as ``weight``.
    mixup : Mixup or None, default=None
        Mix training batches (:class:`skderm.transforms.Mixup`: mixup and
        CutMix, soft targets); searchable as ``mixup__cutmix_alpha``.
    valid_size : float or None, default=0.2
        Fraction of lesions held out (stratified, grouped by ``group_column``)
        for validation scores and skorch's early stopping, which restores the
        best epoch (``callbacks__early_stopping__patience=5``, ``__monitor=
        "valid_bacc"``; see :class:`~skderm.classifier.checkpoint.ResumableEarlyStopping`);
        ``None`` trains on everything for ``max_epochs``.
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"``: skorch's ``LRScheduler`` anneals every parameter group's
        rate over ``max_epochs``.
    tta : bool, default=False
        Average predictions over the four flips.
    test_crop : float, "auto" or None, default="auto"
        Predict on a centred crop of this fraction of the image area, the
        scale the training crops showed lesions at; ``"auto"`` is the training
        crops' mean area; ``None`` the whole image.
    path_column, group_column : str, default="path", "lesion_id"
        Columns of X with image paths and lesion ids (for the internal split).
    metadata_columns : list of str or None, default=None
        Columns of X fused into the head (imputed, scaled, one-hot encoded).
    mixed_precision, channels_last : bool or "auto", default="auto"
        bfloat16 autocast (``"auto"``: on CUDA with bf16) and the NHWC memory
        format (``"auto"``: on CUDA and the CPU).
    random_state : int or None, default=None
        Seeds the head, batch order, augmentation and the internal split.
    device : "auto", str or torch.device, default="auto"
        ``"auto"``: CUDA, else MPS, else the CPU. ``clf.device`` reads the
        device chosen; ``get_params``, ``clone`` and model files keep "auto".
    verbose : int, default=1
        0 is silent, 1 prints skorch's epoch table, 2 adds progress bars
        (decoding, and skorch's ``ProgressBar`` over batches).
    criterion : loss class or name, default=skderm.losses.CrossEntropy
        Any loss taking logits and hard or soft targets, or the name of one of
        skderm's (:data:`skderm.losses.LOSSES`); its settings are
        ``criterion__*`` (``criterion="focal", criterion__gamma=2``).
        :class:`~skderm.losses.LogitAdjustedLoss` gets the training prior.
    optimizer : torch optimizer class, default=torch.optim.AdamW
        ``optimizer__param_groups=[("backbone.*", {"lr": 1e-4})]`` trains the
        backbone more slowly.
    **kwargs
        skorch's prefixed parameters: ``module__hidden_units`` and
        ``module__dropout`` shape the head (:class:`LesionNet`),
        ``optimizer__*``, ``criterion__*``, ``iterator_*__*`` and the default
        callbacks' ``callbacks__<name>__*``: ``callbacks__early_stopping__*``
        (see ``valid_size``) and ``callbacks__checkpoint__dirname=DIR``, which
        saves the training state every epoch, so that a fit with
        ``warm_start=True`` resumes it exactly
        (:class:`~skderm.classifier.checkpoint.EpochCheckpoint`).
        The other named arguments are skorch ``NeuralNet``'s (``lr``,
        ``max_epochs``, ``batch_size``, ``callbacks``, ``warm_start`` ...).

    Attributes
    ----------
    classes_ : ndarray
        The labels, sorted; ``predict`` returns these.
    module_ : LesionNet
    history_ : skorch.History
    preprocessing_ : dict
        Backbone name, mean, std and image size the network was built with.
    metadata_encoder_ : sklearn ColumnTransformer or None

    Examples
    --------
    >>> from skderm import LesionClassifier, make_lesions
    >>> data = make_lesions(120, random_state=0)
    >>> clf = LesionClassifier(backbone="tiny", weights=None, max_epochs=2, verbose=0)
    >>> clf.fit(data.data, data.target).predict(data.data[:3]).shape
    (3,)
    """

    _parameter_constraints = {
        "backbone": [str],
        "weights": [str, os.PathLike, None],
        "image_size": [_Range(Integral, 1, None, closed="left"), tuple, list, None],
        "freeze": [StrOptions({"none", "backbone"}), _Range(Integral, 0, None, closed="left")],
        "freeze_until": [str, None],
        "augmentation": [StrOptions({"default", "none"}), Augmentation, None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "mixup": [Mixup, None],
        "valid_size": [_Range(Real, 0, 1, closed="neither"), None],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "tta": ["boolean"],
        "test_crop": [StrOptions({"auto"}), _Range(Real, 0, 1, closed="right"), None],
        "mixed_precision": [StrOptions({"auto"}), Options(bool, {True, False})],
        "channels_last": [StrOptions({"auto"}), Options(bool, {True, False})],
        "random_state": [_Range(Integral, 0, None, closed="left"), None],
        "max_epochs": [_Range(Integral, 1, None, closed="left")],
        "criterion": [StrOptions(set(LOSSES)), type, callable],
    }

    _nested_params = ("augmentation", "mixup")

    def __init__(self, *, backbone: str = "tf_efficientnet_lite0", weights="imagenet",
                 image_size=None, freeze="none", freeze_until: str | None = None,
                 augmentation="default", colour_constancy=None, class_weight=None,
                 mixup: Mixup | None = None, valid_size: float | None = 0.2,
                 lr_schedule: str = "constant",
                 tta: bool = False, test_crop="auto",
                 path_column: str = "path", group_column: str | None = "lesion_id",
                 metadata_columns: list[str] | None = None, mixed_precision="auto",
                 channels_last="auto", random_state: int | None = None,
                 # skorch's parameters, with LesionClassifier's defaults where they differ
                 module=LesionNet, criterion=CrossEntropy, optimizer=torch.optim.AdamW,
                 lr: float = 1e-3, max_epochs: int = 10, batch_size: int = 32,
                 iterator_train=torch.utils.data.DataLoader,
                 iterator_valid=torch.utils.data.DataLoader, dataset=Dataset,
                 train_split=None, callbacks=None, predict_nonlinearity="auto",
                 warm_start: bool = False, verbose: int = 1, device: str = "auto",
                 compile: bool = False, use_caching="auto", torch_load_kwargs=None,
                 classes=None, **kwargs):
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size,
                         iterator_train=iterator_train, iterator_valid=iterator_valid,
                         dataset=dataset, train_split=train_split, callbacks=callbacks,
                         predict_nonlinearity=predict_nonlinearity, warm_start=warm_start,
                         verbose=verbose, device=device, compile=compile,
                         use_caching=use_caching, torch_load_kwargs=torch_load_kwargs,
                         classes=classes, **kwargs)
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.freeze = freeze
        self.freeze_until = freeze_until
        self.augmentation = augmentation
        self.colour_constancy = colour_constancy
        self.class_weight = class_weight
        self.mixup = mixup
        self.valid_size = valid_size
        self.lr_schedule = lr_schedule
        self.tta = tta
        self.test_crop = test_crop
        self.path_column = path_column
        self.group_column = group_column
        self.metadata_columns = metadata_columns
        self.mixed_precision = mixed_precision
        self.channels_last = channels_last
        self.random_state = random_state

    # -- parameters ---------------------------------------------------------
    def _validate_params(self) -> None:
        self._check_params()
        if getattr(self, "criterion_", None) is not None:
            # skorch's check of unknown or misspelt arguments; it knows the criterion__ and
            # optimizer__ prefixes only once they are built (initialize calls this again)
            super()._validate_params()
        get_backbone(self.backbone)  # unknown names raise with the list of choices
        if self.mixup is not None:
            try:
                self.mixup.check()
            except ValueError as e:
                raise ValueError(f"mixup={self.mixup!r}: {e}") from None
        resolve_colour_constancy(self.colour_constancy, owner=type(self).__name__)

    # -- skorch hooks ---------------------------------------------------------
    @property
    def _default_callbacks(self):
        return default_callbacks(self)

    def initialize_module(self):
        backbone, n_features, spec = build_backbone(self.backbone, self.weights)
        module = self.module(backbone=backbone, n_features=n_features,
                             n_classes=len(self.classes_), mean=spec.mean, std=spec.std,
                             n_metadata=getattr(self, "n_metadata_", 0),
                             **self.get_params_for("module"))
        self.fixed_parameters_ = frozenset()
        if self.freeze_until is not None:
            try:
                self.fixed_parameters_ = frozenset(module.parameters_before(self.freeze_until))
            except ValueError as e:
                raise ValueError(f"LesionClassifier(backbone={self.backbone!r}): {e}") from None
            for name, p in module.named_parameters():
                if name in self.fixed_parameters_:
                    p.requires_grad_(False)
        if self._use_channels_last():
            module = module.to(memory_format=torch.channels_last)
        self.module_ = module.train()
        # plain values only: the spec holds builder functions that cannot be pickled
        self.preprocessing_ = {"backbone": spec.name, "mean": spec.mean, "std": spec.std,
                               "image_size": self.image_size_}
        return self

    def get_all_learnable_params(self):
        # not the layers before freeze_until: they never train, nor enter the optimizer
        fixed = getattr(self, "fixed_parameters_", frozenset())
        for name, p in super().get_all_learnable_params():
            if name not in fixed:
                yield name, p

    def _set_training(self, training=True):
        # skorch calls this before every batch; nn.Module.train walks every submodule
        # (~1 ms for EfficientNet-Lite0), so only switch what needs it
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module) and module.training != bool(training):
                module.train(training)

    # -- public API ------------------------------------------------------------
    def fit(self, X, y, **fit_params):
        """Fine-tune on images ``X`` (DataFrame, paths or uint8 arrays) with labels ``y``."""
        if fit_params:
            raise TypeError(f"LesionClassifier.fit got unexpected fit parameters "
                            f"{sorted(fit_params)}; skorch would pass them to the network")
        self._validate_params()
        y = check_labels(y, owner=type(self).__name__)
        if self.random_state is not None:
            # torch's default generator draws the head, augmentation and mixing (skorch's
            # convention); numpy's global one is the user's, and skderm draws nothing from it
            torch.manual_seed(int(self.random_state))
        continuing = self.warm_start and self.initialized_
        if not continuing:
            self.n_metadata_, self.metadata_encoder_ = 0, None  # nothing from an earlier fit
            self.classes_inferred_ = np.unique(y)
            self.image_size_ = self._image_size()
            self.class_weight_ = class_weights(self.class_weight, y, self.classes_inferred_)
            self.class_prior_ = class_prior(y, self.classes_inferred_)
        y_enc = self._encode_y(y)
        return super().fit(self._dataset(X, y_enc, fit=not continuing), y_enc)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training without re-initialising (see skorch's ``partial_fit``)."""
        if not is_dataset(X):
            if not self.initialized_:
                return self.fit(X, y)
            X = self._dataset(X, self._encode_y(check_labels(y, owner=type(self).__name__)))
            y = X.y
        return super().partial_fit(X, y, classes=classes, **fit_params)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("batch_generator_", None)  # per-fit bookkeeping, not part of the model
        return state
