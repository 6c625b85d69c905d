"""LesionClassifier: an ImageNet-pretrained CNN as a scikit-learn classifier.

A thin :class:`skorch.NeuralNetClassifier`. Its module is built in
``initialize_module`` from a registry backbone and a new head sized from
``y``; training is skorch's loop and callbacks (:mod:`.callbacks`); the
training batch goes through colour constancy, augmentation and
:class:`~skderm.transforms.Mixup` in ``train_step``, and validation and
prediction see one :class:`~skderm.transforms.InferenceView`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
)
from skorch import NeuralNetClassifier
from skorch.utils import is_dataset, to_tensor

from skderm.backbones import build_backbone, get_backbone
from skderm.classifier.callbacks import MONITORS, default_callbacks
from skderm.classifier.checkpoint import checkpoint_path
from skderm.classifier.data import encode_labels, grouped_split
from skderm.classifier.network import LesionNet, resolve_device
from skderm.exceptions import DatasetError, TrainingDivergedError
from skderm.images import cache_mode, iter_chunks
from skderm.inputs import (
    LesionDataset,
    check_labels,
    class_prior,
    class_weights,
    collate,
    decode,
    parse_X,
)
from skderm.losses import LOSSES, CrossEntropy
from skderm.metadata import check_metadata_at_predict, metadata_encoder
from skderm.transforms import (
    Augmentation,
    InferenceView,
    Mixup,
    colour_constancy,
    resolve_augmentation,
    resolve_colour_constancy,
)

__all__ = ["LesionClassifier"]


def _with_device(method):
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


class _Range(Interval):
    """sklearn's Interval, which would take a bool as the number 0 or 1: a bool is not one."""

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


class LesionClassifier(NeuralNetClassifier):
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
    hidden_units : int or None, default=None
        A hidden ReLU layer in the head.
    dropout : float, default=0.0
        Dropout in the head.
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
    mixup_alpha, cutmix_alpha : float, default=0.0
        Mixup / CutMix strength of :class:`skderm.transforms.Mixup`; 0 is off.
    valid_size : float or None, default=0.2
        Fraction of lesions held out (stratified, grouped by ``group_column``)
        for validation scores, early stopping and best-epoch restore; ``None``
        trains on everything for ``max_epochs``.
    monitor : {"bacc", "mcc", "loss"}, default="bacc"
        Validation score early stopping watches.
    patience : int or None, default=5
        Epochs without improvement before stopping; ``None`` never stops.
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"``: skorch's ``LRScheduler`` anneals every parameter group's
        rate over ``max_epochs``.
    checkpoint_dir : path or None, default=None
        Save the training state after every epoch; with ``warm_start=True`` a
        fit resumes from it (:mod:`skderm.classifier.checkpoint`).
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
    progress_bar : bool, default=False
        Per-batch progress bars.
    criterion : loss class or name, default=skderm.losses.CrossEntropy
        Any loss taking logits and hard or soft targets, or the name of one of
        skderm's (:data:`skderm.losses.LOSSES`); its settings are
        ``criterion__*`` (``criterion="focal", criterion__gamma=2``).
        :class:`~skderm.losses.LogitAdjustedLoss` gets the training prior.
    optimizer : torch optimizer class, default=torch.optim.AdamW
        ``optimizer__param_groups=[("backbone.*", {"lr": 1e-4})]`` trains the
        backbone more slowly.
    **kwargs
        Any other skorch ``NeuralNet`` parameter (``lr``, ``max_epochs``,
        ``batch_size``, ``callbacks``, ``verbose``, ``warm_start`` ...).

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
        "hidden_units": [_Range(Integral, 1, None, closed="left"), None],
        "dropout": [_Range(Real, 0, 1, closed="left")],
        "freeze": [StrOptions({"none", "backbone"}), _Range(Integral, 0, None, closed="left")],
        "freeze_until": [str, None],
        "augmentation": [StrOptions({"default", "none"}), Augmentation, None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "mixup_alpha": [_Range(Real, 0, None, closed="left")],
        "cutmix_alpha": [_Range(Real, 0, None, closed="left")],
        "valid_size": [_Range(Real, 0, 1, closed="neither"), None],
        "monitor": [StrOptions(set(MONITORS))],
        "patience": [_Range(Integral, 1, None, closed="left"), None],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "checkpoint_dir": [str, os.PathLike, None],
        "tta": ["boolean"],
        "test_crop": [StrOptions({"auto"}), _Range(Real, 0, 1, closed="right"), None],
        "mixed_precision": [StrOptions({"auto"}), Options(bool, {True, False})],
        "channels_last": [StrOptions({"auto"}), Options(bool, {True, False})],
        "random_state": [_Range(Integral, 0, None, closed="left"), None],
        "max_epochs": [_Range(Integral, 1, None, closed="left")],
        "criterion": [StrOptions(set(LOSSES)), type, callable],
    }

    def __init__(self, *, backbone: str = "tf_efficientnet_lite0", weights="imagenet",
                 image_size=None, hidden_units: int | None = None, dropout: float = 0.0,
                 freeze="none", freeze_until: str | None = None, augmentation="default",
                 colour_constancy=None, class_weight=None, mixup_alpha: float = 0.0,
                 cutmix_alpha: float = 0.0, valid_size: float | None = 0.2,
                 monitor: str = "bacc", patience: int | None = 5, lr_schedule: str = "constant",
                 checkpoint_dir=None, tta: bool = False, test_crop="auto",
                 path_column: str = "path", group_column: str | None = "lesion_id",
                 metadata_columns: list[str] | None = None, mixed_precision="auto",
                 channels_last="auto", random_state: int | None = None,
                 progress_bar: bool = False, lr: float = 1e-3, max_epochs: int = 10,
                 batch_size: int = 32, optimizer=torch.optim.AdamW, device: str = "auto",
                 module=LesionNet, criterion=CrossEntropy, train_split=None, **kwargs):
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size, train_split=train_split,
                         device=device, **kwargs)
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.freeze = freeze
        self.freeze_until = freeze_until
        self.augmentation = augmentation
        self.colour_constancy = colour_constancy
        self.class_weight = class_weight
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.valid_size = valid_size
        self.monitor = monitor
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.checkpoint_dir = checkpoint_dir
        self.tta = tta
        self.test_crop = test_crop
        self.path_column = path_column
        self.group_column = group_column
        self.metadata_columns = metadata_columns
        self.mixed_precision = mixed_precision
        self.channels_last = channels_last
        self.random_state = random_state
        self.progress_bar = progress_bar

    # -- parameters ---------------------------------------------------------
    def _validate_params(self) -> None:
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k in self._parameter_constraints}
        validate_parameter_constraints(self._parameter_constraints, params,
                                       caller_name=type(self).__name__)
        if getattr(self, "criterion_", None) is not None:
            # skorch's check of unknown or misspelt arguments; it knows the criterion__ and
            # optimizer__ prefixes only once they are built (initialize calls this again)
            super()._validate_params()
        get_backbone(self.backbone)  # unknown names raise with the list of choices
        resolve_colour_constancy(self.colour_constancy, owner=type(self).__name__)

    def _image_size(self) -> tuple[int, int]:
        size = self.image_size
        if size is None:
            return tuple(get_backbone(self.backbone).input_size)
        if isinstance(size, Integral):
            return int(size), int(size)
        h, w = size
        return int(h), int(w)

    def inference_view(self) -> InferenceView:
        """What validation, prediction, saliency and export see: colour constancy, the
        test crop and the flips, read from the parameters at every call (so a setting
        changed on a fitted model takes effect)."""
        validate_parameter_constraints(
            {k: self._parameter_constraints[k] for k in ("test_crop", "tta")},
            {"test_crop": self.test_crop, "tta": self.tta}, caller_name=type(self).__name__)
        area = self.test_crop
        if isinstance(area, str):  # "auto": the training crops' mean area
            aug = resolve_augmentation(self.augmentation)
            area = None if aug is None or aug.crop_scale is None else sum(aug.crop_scale) / 2
        power = resolve_colour_constancy(self.colour_constancy, owner=type(self).__name__)
        return InferenceView(colour_power=power, crop_area=None if area is None or area >= 1
                             else float(area), flips=self.tta)

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

    # -- skorch hooks ---------------------------------------------------------
    @property
    def _default_callbacks(self):
        return default_callbacks(self)

    def initialize_module(self):
        backbone, n_features, spec = build_backbone(self.backbone, self.weights)
        module = self.module(backbone=backbone, n_features=n_features,
                             n_classes=len(self.classes_), mean=spec.mean, std=spec.std,
                             hidden_units=self.hidden_units, dropout=self.dropout,
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

    def check_data(self, X, y=None):
        return None  # classes_ come from the labels in fit, not skorch's encoded ones

    def get_iterator(self, dataset, training=False):
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = {"batch_size": self.batch_size, "collate_fn": collate,
                  **self.get_params_for(prefix)}
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        if training:
            kwargs.setdefault("shuffle", True)
            if self.batch_generator_ is not None:
                kwargs.setdefault("generator", self.batch_generator_)
        if self._device_type() == "cuda":
            kwargs.setdefault("pin_memory", True)
        iterator = self.iterator_train if training else self.iterator_valid
        return iterator(dataset, **kwargs)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # the batch order: a function of the seed and the epochs done (checkpoints save it)
        self.batch_generator_ = (None if self.random_state is None else torch.Generator()
                                 .manual_seed(int(self.random_state) + len(self.history)))
        aug = resolve_augmentation(self.augmentation)
        self.augment_ = None if aug is None else aug.build()
        self.mixup_ = (Mixup(self.mixup_alpha, self.cutmix_alpha, n_classes=len(self.classes_))
                       if self.mixup_alpha or self.cutmix_alpha else None)

    def _to_device(self, x) -> dict:
        x = to_tensor(x, device=resolve_device(self.device))
        return dict(x) if isinstance(x, dict) else {"images": x}

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
        if self.mixup_ is not None:
            images, metadata, y = self.mixup_(images, metadata,
                                              to_tensor(y, resolve_device(self.device)))
        x["images"] = images
        if metadata is not None:
            x["metadata"] = metadata
        return super().train_step((x, y), **fit_params)

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

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        if epochs is None and self.checkpoint_dir is not None and self.warm_start:
            epochs = max(0, self.max_epochs - len(self.history))  # a resumed run: the rest
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    # -- data -------------------------------------------------------------------
    def _encode_y(self, y) -> np.ndarray:
        return encode_labels(self.classes_, y)

    def _metadata(self, inp, fit: bool):
        if not self.metadata_columns:
            return None
        frame = inp.frame[list(self.metadata_columns)]
        if fit:
            self.metadata_encoder_ = metadata_encoder(frame)
            enc = self.metadata_encoder_.fit_transform(frame)
            self.n_metadata_ = enc.shape[1]
        else:
            check_metadata_at_predict(frame, self.metadata_encoder_)
            enc = self.metadata_encoder_.transform(frame)
        return np.asarray(enc, dtype=np.float32)

    def _dataset(self, X, y=None, *, fit: bool = False) -> LesionDataset:
        # lesion ids serve the internal split only: images to predict may lack them
        inp = parse_X(X, path_column=self.path_column,
                      group_column=self.group_column if y is not None else None,
                      require_metadata=list(self.metadata_columns or []))
        if inp.n == 0:
            raise DatasetError("X is empty: it holds no images; pass at least one row")
        if y is not None and len(y) != inp.n:
            raise ValueError(f"X has {inp.n} rows but y has {len(y)} labels")
        images = decode(inp, self._image_size() if fit else self.image_size_,
                        progress=self.progress_bar is True or self.verbose > 1)
        return LesionDataset(images, y, self._metadata(inp, fit=fit), inp.groups)

    def get_dataset(self, X, y=None):
        if is_dataset(X):
            return X
        return self._dataset(X, None if y is None else self._encode_y(y))

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset = self.get_dataset(X, y)
        if self.train_split is not None:
            return self.train_split(dataset, y, **fit_params)  # a user-supplied skorch split
        if self.valid_size is None:
            return dataset, None
        train, valid = grouped_split(dataset, self.classes_, self.valid_size, self.random_state)
        return dataset.subset(train), dataset.subset(valid)

    # -- public API ------------------------------------------------------------
    @_with_device
    def fit(self, X, y, **fit_params):
        """Fine-tune on images ``X`` (DataFrame, paths or uint8 arrays) with labels ``y``."""
        if fit_params:
            raise TypeError(f"LesionClassifier.fit got unexpected fit parameters "
                            f"{sorted(fit_params)}; skorch would pass them to the network")
        self._validate_params()
        y = check_labels(y)
        if self.random_state is not None:
            torch.manual_seed(int(self.random_state))
            np.random.seed(int(self.random_state) % 2**32)
        continuing = self.warm_start and self.initialized_
        if not continuing:
            self.n_metadata_, self.metadata_encoder_ = 0, None  # nothing from an earlier fit
            self.classes_inferred_ = np.unique(y)
            self.image_size_ = self._image_size()
            self.class_weight_ = class_weights(self.class_weight, y, self.classes_inferred_)
            self.class_prior_ = class_prior(y, self.classes_inferred_)
        y_enc = self._encode_y(y)
        dataset = self._dataset(X, y_enc, fit=not continuing)
        self.checkpoint_path_ = (None if self.checkpoint_dir is None
                                 else checkpoint_path(self, dataset))
        return super().fit(dataset, y_enc)

    @_with_device
    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training without re-initialising (see skorch's ``partial_fit``)."""
        if not is_dataset(X):
            if not self.initialized_:
                return self.fit(X, y)
            X = self._dataset(X, self._encode_y(check_labels(y)))
            y = X.y
        return super().partial_fit(X, y, classes=classes, **fit_params)

    @_with_device
    def initialize(self):
        return super().initialize()

    @_with_device
    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``, decoded and
        predicted a chunk at a time (:func:`skderm.images.iter_chunks`)."""
        self.check_is_fitted()
        if is_dataset(X):
            return super().predict_proba(X)
        chunks = list(iter_chunks(X))
        with cache_mode(True if len(chunks) == 1 else "read"):
            proba = np.concatenate([super(LesionClassifier, self).predict_proba(part)
                                    for _, part in chunks])
        if not np.isfinite(proba).all():
            raise TrainingDivergedError(
                "this model predicts non-finite probabilities: its weights are not finite "
                "(training diverged); refit it with a lower lr")
        return proba

    def predict(self, X):
        """Predicted labels (values of ``classes_``)."""
        proba = self.predict_proba(X)  # raises NotFittedError first when unfitted
        return self.classes_[proba.argmax(axis=1)]

    @_with_device
    def get_loss(self, y_pred, y_true, X=None, training=False):
        return super().get_loss(y_pred, y_true, X=X, training=training)

    @_with_device
    def load_params(self, *args, **kwargs):
        return super().load_params(*args, **kwargs)

    def set_params(self, **params):
        """Set parameters, including nested ``augmentation__<name>`` ones."""
        nested = {k.split("__", 1)[1]: params.pop(k) for k in list(params)
                  if k.startswith("augmentation__")}
        if "augmentation" in params:
            self.augmentation = params.pop("augmentation")
        super().set_params(**params)
        if nested:
            if not isinstance(self.augmentation, Augmentation):
                raise ValueError(
                    f"cannot set {sorted('augmentation__' + k for k in nested)}: augmentation "
                    f"is {self.augmentation!r}; pass augmentation=Augmentation() first")
            self.augmentation.set_params(**nested)
        return self

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_", private ones included
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    def __repr__(self):
        # like any sklearn estimator: the parameters that differ from the defaults
        defaults = type(self)().get_params(deep=False)
        changed = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                   if k not in defaults or repr(v) != repr(defaults[k])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("batch_generator_", None)  # per-fit bookkeeping, not part of the model
        return state

    def __setstate__(self, state):
        requested = state.get("device")
        if requested == "auto":
            state["device"] = resolve_device("auto")
        super().__setstate__(state)
        if requested == "auto":  # skorch may have fallen back from a missing CUDA: keep that
            self.__dict__["device"] = "auto"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags
