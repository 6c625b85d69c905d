"""LesionClassifier: an ImageNet-pretrained CNN as a scikit-learn classifier.

A :class:`skorch.NeuralNetClassifier` whose module is built, in
``initialize_module``, from a registry backbone (:mod:`skderm.backbones`) and a
new head sized from ``y``. It reads image paths (and optionally metadata) from
the DataFrame :func:`skderm.load_ham10000` returns, decodes each image once
(:mod:`skderm.images`), augments only while training, and validates on a
lesion-grouped internal split.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef
from skorch import NeuralNetClassifier
from skorch.callbacks import (
    EpochScoring,
    EpochTimer,
    PassthroughScoring,
    PrintLog,
    ProgressBar,
)
from skorch.utils import is_dataset, to_tensor

from skderm._checkpoint import (
    EpochCheckpoint,
    ResumableEarlyStopping,
    checkpoint_path,
    load_checkpoint,
    restore_checkpoint,
)
from skderm.backbones import build_backbone, get_backbone
from skderm.exceptions import DatasetError
from skderm.images import cache_mode, iter_chunks
from skderm.inputs import (
    LesionDataset,
    check_labels,
    check_metadata_at_predict,
    class_prior,
    class_weights,
    collate,
    decode,
    metadata_encoder,
    parse_X,
)
from skderm.losses import FocalLoss, LogitAdjustedLoss, SmoothedCrossEntropy
from skderm.network import LesionNet, resolve_device
from skderm.transforms import (
    centre_crop,
    colour_constancy,
    mix_batch,
    resolve_augmentation,
    resolve_colour_constancy,
    valid_alpha,
)

__all__ = ["LesionClassifier", "LesionNet", "resolve_device"]



def _with_device(method):
    """Run ``method`` with ``self.device`` resolved from ``"auto"``.

    skorch reads ``self.device`` everywhere; the user's ``"auto"`` must stay
    what ``get_params`` returns (sklearn's clone contract), so it is swapped
    for the concrete device only for the duration of the call.
    """
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._device_resolved():
            return method(self, *args, **kwargs)

    return wrapper


def _bacc(net, X, y):
    return balanced_accuracy_score(y, net.predict_proba(X).argmax(1))


def _mcc(net, X, y):
    return matthews_corrcoef(y, net.predict_proba(X).argmax(1))


_MONITORS = {"bacc": "valid_bacc", "mcc": "valid_mcc", "loss": "valid_loss"}
_LOSSES = ("cross_entropy", "focal", "logit_adjusted")
_SCHEDULES = ("constant", "cosine")


class LesionClassifier(NeuralNetClassifier):
    """Fine-tune an ImageNet-pretrained CNN on lesion images, the scikit-learn way.

    Parameters
    ----------
    backbone : str, default="tf_efficientnet_lite0"
        A name from :func:`skderm.list_backbones`.
    weights : {"imagenet"}, str path or None, default="imagenet"
        ``"imagenet"`` finds the backbone's ImageNet file (installed package,
        then ``$TORCH_HOME/hub/checkpoints``, then a download); a path loads
        that file; ``None`` starts from random weights.
    image_size : int, (height, width) or None, default=None
        Size images are resized to (aspect ratio not kept); ``None`` uses the
        backbone's input size. Use e.g. ``(150, 200)`` to keep HAM10000's 4:3.
    hidden_units : int or None, default=None
        Hidden layer of the head (``256`` reproduces the VGG16 write-up).
    dropout : float, default=0.0
        Dropout in the head.
    freeze : {"none", "backbone"} or int, default="none"
        ``"none"`` fine-tunes everything; ``"backbone"`` trains the head only;
        an int ``N`` trains the head only for ``N`` epochs, then everything.
    freeze_until : str or None, default=None
        Name of a backbone layer (``"blocks.3"`` of ``tf_efficientnet_lite0``,
        ``"layer2"`` of a ResNet; :func:`skderm.backbones.backbone_layers` lists
        them): every layer before it keeps its ImageNet weights and BatchNorm
        statistics for the whole fit, and backpropagation stops there.
        ``"blocks.3"`` trains EfficientNet-Lite0 about 1.9x faster on a CPU.
        ``None`` fine-tunes every layer (after ``freeze``, if set).
    backbone_lr : float or None, default=None
        Learning rate of the backbone's parameters; ``None`` uses ``lr``.
    augmentation : "default", "none", None or Augmentation, default="default"
        Training-time augmentation (:class:`skderm.transforms.Augmentation`).
        Pass an ``Augmentation(...)`` to tune its settings by grid search
        (``augmentation__rotation``).
    colour_constancy : None, "shades_of_gray", "gray_world", "max_rgb" or float, default=None
        Take each image's illuminant out before augmentation, in training and
        prediction alike (:func:`skderm.transforms.colour_constancy`): a number
        is the Minkowski norm ``p >= 1``; ``"shades_of_gray"`` is ``p = 6``, as
        in Barata et al. (2015) and ISIC 2018/2019 entries. ``None`` leaves
        the colours as they are.
    class_weight : None, "balanced" or dict, default=None
        Class weights of the loss; ``"balanced"`` is ``n / (k * count)``.
    loss : {"cross_entropy", "focal", "logit_adjusted"}, default="cross_entropy"
        ``"logit_adjusted"`` (:class:`skderm.losses.LogitAdjustedLoss`) adds
        ``logit_tau * log(class frequency)`` to the logits inside the loss
        only: predictions then aim at balanced accuracy without class
        weights (use it with ``class_weight=None``).
    focal_gamma : float, default=2.0
        Focusing parameter of the focal loss.
    logit_tau : float, default=1.0
        Strength of the logit adjustment (``loss="logit_adjusted"``), >= 0.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss
        (:class:`skderm.losses.SmoothedCrossEntropy`: class weights weight
        samples, not the smoothing term of each class).
    mixup_alpha : float, default=0.0
        Mixup: each augmented training image is blended with another of its
        batch, ``lam ~ Beta(mixup_alpha, mixup_alpha)``, and the loss with
        their two labels by ``lam`` and ``1 - lam``
        (:func:`skderm.transforms.mix_batch`). ``0`` turns it off; 0.2-0.4
        are common.
    cutmix_alpha : float, default=0.0
        CutMix: a box of another image of the batch is pasted in instead. With
        both alphas > 0 each batch uses one of the two at random.
    valid_size : float or None, default=0.2
        Fraction of lesions held out (stratified by class, grouped by
        ``group_column``) for validation scores, early stopping and
        best-epoch restore; ``None`` trains on everything for ``max_epochs``.
    monitor : {"bacc", "mcc", "loss"}, default="bacc"
        Validation metric for early stopping and restoring the best epoch.
    patience : int or None, default=5
        Epochs without improvement before stopping; ``None`` never stops early
        (the best epoch is still restored).
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` anneals every learning rate epoch by epoch, from its
        value in epoch 1 towards 0 after ``max_epochs`` (half a cosine).
    checkpoint_dir : str, path or None, default=None
        Write a checkpoint here after every epoch; with ``warm_start=True`` a
        new fit of the same estimator on the same data resumes from it (an
        interrupted run ends as an uninterrupted one would). See
        :mod:`skderm._checkpoint`. Never put it inside your image folder.
    tta : bool, default=False
        Test-time augmentation: average probabilities over the four flips.
    test_crop : float, "auto" or None, default="auto"
        The view of each image that validation scores and predictions are
        made on: a centred crop of this fraction of its area, resized back to
        the image size. The training augmentation's random crops
        (``crop_scale``: 75-100% of the area by default) show every lesion
        zoomed in, so a model shown whole frames at prediction time sees
        lesions smaller than in training (the train/test object-size
        discrepancy of FixRes, Touvron et al., 2019). ``"auto"`` uses the
        mean training crop area (0.875 with the default augmentation; the
        whole image when the augmentation has no crops); ``None`` or ``1.0``
        the whole image (models saved before this parameter existed load with
        ``None`` and predict as they did).
    path_column : str, default="path"
        Column of X holding image paths.
    group_column : str or None, default="lesion_id"
        Column of X holding lesion ids (used for the internal split only).
    metadata_columns : list of str or None, default=None
        Columns of X fused into the head: numeric ones imputed (median) and
        scaled, the others one-hot encoded (unknown categories ignored).
    mixed_precision : bool or "auto", default="auto"
        bfloat16 autocast; ``"auto"`` enables it on CUDA devices that support it.
    channels_last : bool or "auto", default="auto"
        channels_last memory format; ``"auto"`` enables it on CUDA and the CPU
        (1.6x faster training of EfficientNet-Lite0 on a 2-core CPU).
    random_state : int or None, default=None
        Seeds weights of the head, batch order, augmentation and the internal
        split: the same seed gives the same model on CPU.
    progress_bar : bool, default=False
        A per-batch progress bar in addition to the epoch table, and a count
        of images decoded.
    lr : float, default=1e-3
    max_epochs : int, default=10
    batch_size : int, default=32
    optimizer : torch optimizer class, default=torch.optim.AdamW
        Its settings are reachable as ``optimizer__weight_decay`` etc.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.
    **kwargs
        Any other skorch ``NeuralNet`` parameter (``callbacks``, ``verbose``,
        ``iterator_train__num_workers``, ``warm_start`` ...).

    Attributes
    ----------
    classes_ : ndarray of str
        The labels, sorted; ``predict`` returns these.
    module_ : LesionNet
    history_ : skorch.History
        Per-epoch train/valid loss, valid balanced accuracy and MCC.
    preprocessing_ : dict
        Backbone name, mean, std and image size the network was built with.
    image_size_ : (height, width)
    metadata_encoder_ : sklearn ColumnTransformer or None

    Examples
    --------
    >>> from skderm import LesionClassifier, make_lesions
    >>> data = make_lesions(120, random_state=0)
    >>> clf = LesionClassifier(backbone="tiny", weights=None, max_epochs=2, verbose=0)
    >>> clf.fit(data.data, data.target).predict(data.data[:3]).shape
    (3,)
    """

    # models saved before these parameters existed load with these values, which
    # reproduce what they did then (test_crop: the whole image, not "auto")
    freeze_until = None
    mixup_alpha = 0.0
    cutmix_alpha = 0.0
    test_crop = None
    colour_constancy = None

    def __init__(
        self,
        *,
        backbone: str = "tf_efficientnet_lite0",
        weights: str | None = "imagenet",
        image_size: int | tuple[int, int] | None = None,
        hidden_units: int | None = None,
        dropout: float = 0.0,
        freeze: str | int = "none",
        freeze_until: str | None = None,
        backbone_lr: float | None = None,
        augmentation="default",
        colour_constancy: str | float | None = None,
        class_weight: str | dict | None = None,
        loss: str = "cross_entropy",
        focal_gamma: float = 2.0,
        logit_tau: float = 1.0,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        valid_size: float | None = 0.2,
        monitor: str = "bacc",
        patience: int | None = 5,
        lr_schedule: str = "constant",
        checkpoint_dir: str | None = None,
        tta: bool = False,
        test_crop: float | str | None = "auto",
        path_column: str = "path",
        group_column: str | None = "lesion_id",
        metadata_columns: list[str] | None = None,
        mixed_precision: bool | str = "auto",
        channels_last: bool | str = "auto",
        random_state: int | None = None,
        progress_bar: bool = False,
        lr: float = 1e-3,
        max_epochs: int = 10,
        batch_size: int = 32,
        optimizer=torch.optim.AdamW,
        device: str = "auto",
        module=LesionNet,
        criterion=nn.CrossEntropyLoss,
        train_split=None,
        **kwargs,
    ):
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
        self.backbone_lr = backbone_lr
        self.augmentation = augmentation
        self.colour_constancy = colour_constancy
        self.class_weight = class_weight
        self.loss = loss
        self.focal_gamma = focal_gamma
        self.logit_tau = logit_tau
        self.label_smoothing = label_smoothing
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

    # ------------------------------------------------------------------
    # parameters
    # ------------------------------------------------------------------
    def _check_params(self) -> None:
        def bad(name, allowed):
            return ValueError(f"LesionClassifier {name}={getattr(self, name)!r} is not valid; "
                              f"{allowed}")

        get_backbone(self.backbone)  # unknown names raise with the list of choices
        f = self.freeze
        if isinstance(f, bool) or not (f in ("none", "backbone") or
                                       (isinstance(f, Integral) and f >= 0)):
            raise bad("freeze", "use 'none', 'backbone' or an int N >= 0 (head only for N epochs)")
        if not (self.freeze_until is None or isinstance(self.freeze_until, str)):
            raise bad("freeze_until", "use a backbone layer name such as 'blocks.3' "
                      "(skderm.backbones.backbone_layers lists them) or None")
        if self.loss not in _LOSSES:
            raise bad("loss", f"choose one of {_LOSSES}")
        if isinstance(self.logit_tau, bool) or not (isinstance(self.logit_tau, Real)
                                                    and self.logit_tau >= 0):
            raise bad("logit_tau", "use a float >= 0 (1.0 is the Bayes-consistent adjustment)")
        for name in ("mixup_alpha", "cutmix_alpha"):
            if not valid_alpha(getattr(self, name)):
                raise bad(name, "use a float >= 0 (0 turns it off; 0.2-1.0 are common)")
        self._check_test_crop()
        self._colour_power()
        if self.monitor not in _MONITORS:
            raise bad("monitor", f"choose one of {tuple(_MONITORS)}")
        if self.lr_schedule not in _SCHEDULES:
            raise bad("lr_schedule", f"choose one of {_SCHEDULES}")
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir,
                                                              (str, os.PathLike)):
            raise bad("checkpoint_dir", "use a folder path or None")
        vs = self.valid_size
        if vs is not None and not (isinstance(vs, Real) and 0 < vs < 1):
            raise bad("valid_size", "use a fraction in (0, 1) or None")
        if self.patience is not None and not (isinstance(self.patience, Integral)
                                              and self.patience >= 1):
            raise bad("patience", "use an int >= 1 or None")
        if not (isinstance(self.dropout, Real) and 0 <= self.dropout < 1):
            raise bad("dropout", "use a float in [0, 1)")
        if self.hidden_units is not None and not (isinstance(self.hidden_units, Integral)
                                                  and self.hidden_units >= 1):
            raise bad("hidden_units", "use a positive int or None")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise bad("class_weight", "use None, 'balanced' or a dict {label: weight}")
        if self.mixed_precision not in ("auto", True, False):
            raise bad("mixed_precision", "use 'auto', True or False")
        if self.channels_last not in ("auto", True, False):
            raise bad("channels_last", "use 'auto', True or False")
        resolve_augmentation(self.augmentation)

    def _check_test_crop(self) -> None:
        tc = self.test_crop
        if not (tc is None or (isinstance(tc, str) and tc == "auto") or
                (isinstance(tc, Real) and not isinstance(tc, bool) and 0 < tc <= 1)):
            raise ValueError(f"LesionClassifier test_crop={tc!r} is not valid; use 'auto' "
                             "(the mean training crop area), a fraction of the image area "
                             "in (0, 1], or None (the whole image)")

    def _colour_power(self) -> float | None:
        """The Minkowski norm of ``colour_constancy``; None: off (checked when read, so
        a bad value set on a fitted model fails at prediction, naming it)."""
        return resolve_colour_constancy(self.colour_constancy, owner="LesionClassifier")

    def _test_crop_area(self) -> float | None:
        """The area fraction of the centred prediction-time crop; None: the whole image."""
        self._check_test_crop()  # also when set on a fitted model
        tc = self.test_crop
        if tc is None:
            return None
        if isinstance(tc, str):  # "auto": the training crops' mean area
            aug = resolve_augmentation(self.augmentation)
            if aug is None or aug.crop_scale is None:
                return None
            tc = (aug.crop_scale[0] + aug.crop_scale[1]) / 2
        return None if tc >= 1 else float(tc)

    def _image_size(self) -> tuple[int, int]:
        size = self.image_size
        if size is None:
            return tuple(get_backbone(self.backbone).input_size)
        if isinstance(size, Integral):
            return int(size), int(size)
        h, w = size
        return int(h), int(w)

    # ------------------------------------------------------------------
    # device handling
    # ------------------------------------------------------------------
    @contextlib.contextmanager
    def _device_resolved(self):
        requested = self.__dict__.get("device")
        if requested != "auto":
            yield
            return
        self.__dict__["device"] = resolve_device("auto")
        try:
            yield
        finally:
            self.__dict__["device"] = requested

    def _use_amp(self) -> bool:
        dev = torch.device(resolve_device(self.device))
        if self.mixed_precision == "auto":
            return dev.type == "cuda" and torch.cuda.is_bf16_supported()
        return bool(self.mixed_precision) and dev.type in ("cuda", "cpu")

    def _use_channels_last(self) -> bool:
        if self.channels_last == "auto":
            # oneDNN's CPU convolutions are faster in NHWC too (benchmarks/README.md)
            return torch.device(resolve_device(self.device)).type in ("cuda", "cpu")
        return bool(self.channels_last)

    # ------------------------------------------------------------------
    # skorch hooks
    # ------------------------------------------------------------------
    @property
    def _default_callbacks(self):
        cbs = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("valid_bacc", EpochScoring(_bacc, name="valid_bacc", lower_is_better=False)),
            ("valid_mcc", EpochScoring(_mcc, name="valid_mcc", lower_is_better=False)),
        ]
        if self.valid_size is not None or self.train_split is not None:
            # an invalid monitor is reported by fit; get_params must still work
            monitor = self.monitor if isinstance(self.monitor, str) else "bacc"
            key = _MONITORS.get(monitor, "valid_bacc")
            if self.checkpoint_dir is not None:
                # before early stopping, which ends the fit by raising
                cbs.append(("checkpoint", EpochCheckpoint()))
            cbs.append(("early_stopping", ResumableEarlyStopping(
                monitor=key, lower_is_better=(key == "valid_loss"),
                # absolute threshold: a relative one never "improves" on a negative MCC
                threshold=1e-4, threshold_mode="abs",
                patience=self.patience if self.patience is not None else 10**9,
                load_best=True, sink=print)))
        elif self.checkpoint_dir is not None:
            cbs.append(("checkpoint", EpochCheckpoint()))
        if self.progress_bar is True:
            cbs.append(("progress_bar", ProgressBar()))
        cbs.append(("print_log", PrintLog()))
        return cbs

    def initialize_module(self):
        backbone, n_features, spec = build_backbone(self.backbone, self.weights)
        kwargs = self.get_params_for("module")
        module = self.module(backbone=backbone, n_features=n_features,
                             n_classes=len(self.classes_), mean=spec.mean, std=spec.std,
                             hidden_units=self.hidden_units, dropout=self.dropout,
                             n_metadata=getattr(self, "n_metadata_", 0), **kwargs)
        module.set_backbone_frozen(self.freeze != "none" and self.freeze != 0)
        try:
            module.freeze_until(self.freeze_until)
        except ValueError as e:
            raise ValueError(f"LesionClassifier(backbone={self.backbone!r}): {e}") from None
        if self._use_channels_last():
            module = module.to(memory_format=torch.channels_last)
        self.module_ = module
        # plain values only: the spec holds builder functions that cannot be pickled
        self.preprocessing_ = {"backbone": spec.name, "mean": spec.mean, "std": spec.std,
                               "image_size": self.image_size_}
        return self

    def initialize_criterion(self):
        kwargs = self.get_params_for("criterion")
        weight = getattr(self, "class_weight_", None)
        if weight is not None:
            kwargs.setdefault("weight", torch.as_tensor(weight, dtype=torch.float32))
        if self.loss == "focal":
            self.criterion_ = FocalLoss(gamma=self.focal_gamma, **kwargs)
        elif self.loss == "logit_adjusted":
            prior = getattr(self, "class_prior_", None)
            if prior is None:
                # a model from skderm.load_model keeps no label frequencies: uniform
                prior = np.ones(len(self.classes_inferred_))
            self.criterion_ = LogitAdjustedLoss(prior, tau=self.logit_tau, **kwargs)
        elif self.label_smoothing and self.criterion is nn.CrossEntropyLoss:
            # torch's CrossEntropyLoss would weight the smoothing term of every
            # class by that class's weight (see SmoothedCrossEntropy)
            self.criterion_ = SmoothedCrossEntropy(label_smoothing=self.label_smoothing,
                                                   **kwargs)
        else:
            if self.label_smoothing:
                kwargs.setdefault("label_smoothing", self.label_smoothing)
            self.criterion_ = self.criterion(**kwargs)
        return self

    def initialize_optimizer(self, triggered_directly=None):
        # two parameter groups, so the backbone can learn more slowly than the
        # new head; both are always present, so unfreezing needs no new optimizer
        args, kwargs = self.get_params_for_optimizer("optimizer",
                                                     self.get_all_learnable_params())
        kwargs.pop("params", None)
        backbone_ids = {id(p) for p in self.module_.backbone.parameters()}
        head = [p for p in self.module_.parameters() if id(p) not in backbone_ids]
        base = [p for p in self.module_.backbone.parameters()]
        groups = [{"params": head}]
        if base:
            group = {"params": base}
            if self.backbone_lr is not None:
                group["lr"] = self.backbone_lr
            groups.append(group)
        self.optimizer_ = self.optimizer(groups, **kwargs)
        return self

    def _set_training(self, training=True):
        # skorch calls this before every batch, and nn.Module.train walks every
        # submodule (~1 ms for EfficientNet-Lite0): only switch what needs it
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_", None)
            if isinstance(module, nn.Module) and module.training != bool(training):
                module.train(training)

    def get_all_learnable_params(self):
        # all module parameters, trainable now or after unfreezing
        yield from self.module_.named_parameters()

    def check_data(self, X, y=None):
        # classes_ are set from the original labels in fit; skorch would
        # overwrite them with the encoded integers here
        return None

    def get_iterator(self, dataset, training=False):
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        kwargs.setdefault("collate_fn", collate)
        if training:
            kwargs.setdefault("shuffle", True)
            if self.random_state is not None and "generator" not in kwargs:
                gen = torch.Generator().manual_seed(
                    int(self.random_state) + len(self.history_ or []))
                resumed = self.__dict__.pop("_resume_generator_state", None)
                if resumed is not None:
                    gen.set_state(resumed)  # the batch order an uninterrupted run would see
                # skorch makes this iterator once per fit: a checkpoint saves its state
                kwargs["generator"] = self.__dict__["_train_generator"] = gen
        if torch.device(self.device).type == "cuda":
            kwargs.setdefault("pin_memory", True)
        iterator = self.iterator_train if training else self.iterator_valid
        return iterator(dataset, **kwargs)

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        power = self._colour_power()
        if power is not None:  # before augmentation: jitter then varies the corrected colours
            if isinstance(x, dict):
                x = dict(x, images=colour_constancy(x["images"], power))
            else:
                x = colour_constancy(x, power)
        augment = getattr(self, "augment_", None)
        if augment is not None and self.module_.training:
            # training batches only: validation and prediction stay deterministic
            if isinstance(x, dict):
                x = dict(x, images=augment(x["images"]))
            else:
                x = augment(x)
        if self.module_.training and (self.mixup_alpha or self.cutmix_alpha):
            x = self._mix(x)
        if not self.module_.training:
            area = self._test_crop_area()
            if area is not None:  # the scale the training crops showed lesions at
                if isinstance(x, dict):
                    x = dict(x, images=centre_crop(x["images"], area))
                else:
                    x = centre_crop(x, area)
        if self._use_channels_last():
            if isinstance(x, dict):
                x["images"] = x["images"].contiguous(memory_format=torch.channels_last)
            else:
                x = x.contiguous(memory_format=torch.channels_last)
        dev = torch.device(self.device)
        ctx = (torch.autocast(dev.type, dtype=torch.bfloat16) if self._use_amp()
               else contextlib.nullcontext())
        with ctx:
            if isinstance(x, dict):
                out = self.module_(**x, **fit_params)
            else:
                out = self.module_(x, **fit_params)
        return out.float()

    def _mix(self, x):
        """Mixup/CutMix a training batch; get_loss blends the labels to match."""
        images, metadata = (x["images"], x.get("metadata")) if isinstance(x, dict) else (x, None)
        images, metadata, perm, lam = mix_batch(images, metadata, mixup_alpha=self.mixup_alpha,
                                                cutmix_alpha=self.cutmix_alpha)
        # skorch's train step (and the AccelerateMixin's) calls get_loss right after infer
        self.__dict__["_batch_mix"] = (perm, lam)
        if isinstance(x, dict):
            return dict(x, images=images, metadata=metadata)
        return images

    def get_loss(self, y_pred, y_true, X=None, training=False):
        mix = self.__dict__.pop("_batch_mix", None)
        if mix is None or not training:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        perm, lam = mix
        y_true = to_tensor(y_true, device=self.device)
        own = super().get_loss(y_pred, y_true, X=X, training=training)
        other = super().get_loss(y_pred, y_true[perm.to(y_true.device)], X=X, training=training)
        return lam * own + (1.0 - lam) * other

    def evaluation_step(self, batch, training=False):
        if training or not self.tta:
            return super().evaluation_step(batch, training=training)
        self.check_is_fitted()
        x, _ = batch
        self._set_training(False)
        probs = 0
        with torch.no_grad():
            for dims in ((), (3,), (2,), (2, 3)):
                xi = x
                if dims:
                    if isinstance(x, dict):
                        xi = dict(x, images=torch.flip(x["images"], dims))
                    else:
                        xi = torch.flip(x, dims)
                probs = probs + torch.softmax(self.infer(xi), dim=1)
        # log of the mean probability: the softmax in predict_proba maps it back
        return torch.log(probs / 4)

    def _get_predict_nonlinearity(self):
        if self.predict_nonlinearity == "auto":
            return functools.partial(torch.softmax, dim=1)
        return super()._get_predict_nonlinearity()

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                               **kwargs)
        epoch = len(self.history)
        if self.lr_schedule == "cosine":
            # a function of the epoch and max_epochs alone, so a resumed fit needs no
            # scheduler state (checkpoints fingerprint max_epochs under this schedule)
            factor = 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max(self.max_epochs, 1)))
            groups = self.optimizer_.param_groups
            groups[0]["lr"] = self.lr * factor
            if len(groups) > 1:
                groups[1]["lr"] = (self.backbone_lr if self.backbone_lr is not None
                                   else self.lr) * factor
            self.history.record("lr", groups[0]["lr"])
        # freeze=N: head only for epochs 1..N, then everything
        if isinstance(self.freeze, Integral) and self.freeze > 0:
            frozen = epoch <= self.freeze
            if self.module_.backbone_frozen != frozen:
                self.module_.set_backbone_frozen(frozen)
                # (a fit resumed later than that unfreezes silently: nothing changes then)
                if not frozen and self.verbose and epoch == self.freeze + 1:
                    print(f"Unfreezing the backbone at epoch {epoch}.")

    # ------------------------------------------------------------------
    # data
    # ------------------------------------------------------------------
    def _encode_y(self, y) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per image), got shape {y.shape}")
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if unknown.any():
            raise ValueError(f"y holds labels unseen at fit time: {sorted(set(y[unknown]))[:5]}; "
                             f"known classes are {list(self.classes_)}")
        return codes.astype(np.int64)

    def _metadata(self, inp, fit: bool):
        if not self.metadata_columns:
            return None
        cols = list(self.metadata_columns)
        frame = inp.frame[cols]
        if fit:
            self.metadata_encoder_ = metadata_encoder(frame)
            enc = self.metadata_encoder_.fit_transform(frame)
            self.n_metadata_ = enc.shape[1]
        else:
            check_metadata_at_predict(frame, self.metadata_encoder_)
            enc = self.metadata_encoder_.transform(frame)
        return np.asarray(enc, dtype=np.float32)

    def _dataset(self, X, y=None, *, fit: bool = False) -> LesionDataset:
        # lesion ids serve the internal split only: images to predict (no y) may lack them
        inp = parse_X(X, path_column=self.path_column,
                      group_column=self.group_column if y is not None else None,
                      require_metadata=list(self.metadata_columns or []))
        if inp.n == 0:
            raise DatasetError("X is empty: it holds no images; pass at least one row")
        if y is not None and len(y) != inp.n:
            raise ValueError(f"X has {inp.n} rows but y has {len(y)} labels")
        size = self._image_size() if fit else self.image_size_
        images = decode(inp, size, progress=self.progress_bar is True or (
            bool(self.verbose) and self.verbose > 1))
        metadata = self._metadata(inp, fit=fit)
        return LesionDataset(images, y, metadata, inp.groups)

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
        train_idx, valid_idx = _grouped_split(dataset, self.classes_, self.valid_size,
                                              self.random_state)
        return dataset.subset(train_idx), dataset.subset(valid_idx)

    # ------------------------------------------------------------------
    # public API
    # ------------------------------------------------------------------
    @_with_device
    def fit(self, X, y, **fit_params):
        """Fine-tune on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : DataFrame, array of paths, or uint8 images (n, H, W, 3)
            See :mod:`skderm.inputs`. With a DataFrame, ``path_column`` holds
            image paths and ``group_column`` lesion ids.
        y : array-like of shape (n_samples,)
            Labels (strings such as ``"mel"``, or any sortable labels).

        Returns
        -------
        self
        """
        if fit_params:
            raise TypeError(f"LesionClassifier.fit got unexpected fit parameters "
                            f"{sorted(fit_params)}; skorch would pass them to the network")
        self._check_params()
        y = check_labels(y)
        if self.random_state is not None:
            torch.manual_seed(int(self.random_state))
            np.random.seed(int(self.random_state) % 2**32)
        if not (self.warm_start and self.initialized_):
            self.classes_inferred_ = np.unique(y)
            self.image_size_ = self._image_size()
            self.class_weight_ = class_weights(self.class_weight, y, self.classes_inferred_)
            self.class_prior_ = class_prior(y, self.classes_inferred_)
        aug = resolve_augmentation(self.augmentation)
        self.augment_ = None if aug is None else aug.build()
        y_enc = self._encode_y(y)
        dataset = self._dataset(X, y_enc, fit=not (self.warm_start and self.initialized_))
        self.checkpoint_path_ = (None if self.checkpoint_dir is None
                                 else checkpoint_path(self, dataset))
        if self.warm_start and not self.initialized_ and self.checkpoint_path_ is not None:
            state = load_checkpoint(self.checkpoint_path_)
            if state is not None:
                return self._resume(dataset, y_enc, state)
            if self.verbose:
                print(f"No checkpoint of this run in {os.fspath(self.checkpoint_dir)!r}: "
                      "training from the start.")
        return super().fit(dataset, y_enc)

    def _resume(self, dataset, y_enc, state: dict):
        self.initialize()
        restore_checkpoint(self, state)
        done = len(self.history_)
        if self.verbose:
            print(f"Resuming from {self.checkpoint_path_!r} after epoch {done}.")
        return super().partial_fit(dataset, y_enc, epochs=max(0, self.max_epochs - done))

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        if self.__dict__.pop("_resume_stopped", False):
            epochs = 0  # the interrupted run had already stopped early
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

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
        """Class probabilities, columns in the order of ``classes_``.

        Images are decoded and predicted :data:`skderm.images.STREAM_CHUNK_SIZE`
        (1,024) at a time, so memory is bounded by the chunk, not by ``len(X)``;
        a pass longer than one chunk adds nothing to the decoded-image cache.
        """
        self.check_is_fitted()
        if is_dataset(X):
            return super().predict_proba(X)
        chunks = list(iter_chunks(X))
        parts = []
        with cache_mode(True if len(chunks) == 1 else "read"):
            for _, X_chunk in chunks:
                parts.append(super().predict_proba(X_chunk))
        return np.concatenate(parts)

    def predict(self, X):
        """Predicted labels (values of ``classes_``)."""
        proba = self.predict_proba(X)  # raises NotFittedError first when unfitted
        return self.classes_[proba.argmax(axis=1)]

    @_with_device
    def forward_iter(self, X, training=False, device="cpu"):
        yield from super().forward_iter(X, training=training, device=device)

    def set_params(self, **params):
        """Set parameters, including nested ``augmentation__<name>`` ones."""
        nested = {k.split("__", 1)[1]: params.pop(k) for k in list(params)
                  if k.startswith("augmentation__")}
        if "augmentation" in params:
            self.augmentation = params.pop("augmentation")
        super().set_params(**params)
        if nested:
            from skderm.transforms import Augmentation

            if not isinstance(self.augmentation, Augmentation):
                raise ValueError(
                    f"cannot set {sorted('augmentation__' + k for k in nested)}: augmentation "
                    f"is {self.augmentation!r}; pass augmentation=Augmentation() first")
            self.augmentation.set_params(**nested)
        return self

    def __getstate__(self):
        state = super().__getstate__()
        for key in ("_train_generator", "_batch_mix"):
            state.pop(key, None)  # per-fit bookkeeping, not part of the model
        return state

    def __setstate__(self, state):
        requested = state.get("device")
        if requested == "auto":
            state["device"] = resolve_device("auto")
        super().__setstate__(state)
        if requested == "auto":
            self.__dict__["device"] = "auto"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags


def _grouped_split(dataset: LesionDataset, classes, valid_size: float, random_state):
    from skderm.model_selection import grouped_split_indices

    groups = dataset.groups
    if groups is None:
        warnings.warn("X has no lesion-id column, so the internal validation split is by "
                      "image and may put images of one lesion on both sides; pass a DataFrame "
                      "with a lesion_id column (or set group_column)", UserWarning, stacklevel=4)
        groups = np.arange(len(dataset))
    labels = classes[dataset.y]  # class names, so messages read "df", not 3
    try:
        return grouped_split_indices(labels, groups, test_size=valid_size,
                                     random_state=random_state)
    except ValueError as exc:
        # too few lesions of some class to stratify: still group, drop stratification
        from sklearn.model_selection import GroupShuffleSplit

        reason = str(exc).split(";")[0].replace("test_size", "valid_size")
        warnings.warn(f"the internal validation split (valid_size={valid_size}) is grouped by "
                      f"lesion but not stratified: {reason}; raise valid_size, or pass "
                      "valid_size=None to train on everything", UserWarning, stacklevel=4)
        splitter = GroupShuffleSplit(n_splits=1, test_size=valid_size,
                                     random_state=random_state)
        return next(splitter.split(np.zeros(len(dataset)), dataset.y, groups))
