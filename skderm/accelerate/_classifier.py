"""AcceleratedLesionClassifier: LesionClassifier with skorch's AccelerateMixin."""

from __future__ import annotations

import functools
from numbers import Integral

from sklearn.base import clone
from skorch.callbacks import EarlyStopping, PrintLog
from skorch.hf import AccelerateMixin
from skorch.utils import to_tensor

from skderm.accelerate._placement import NetworkPlacementMixin, forget
from skderm.classifier import LesionClassifier
from skderm.classifier.checkpoint import checkpoint_dir
from skderm.classifier.params import ResolvedParam, forwarding_signature

__all__ = ["AcceleratedLesionClassifier"]

_INSTALL = ("AcceleratedLesionClassifier needs Hugging Face Accelerate, which is not "
            "installed: pip install accelerate (or pip install 'skderm[accelerate]')")


def _default_accelerator():
    """``accelerate.Accelerator()``: configured by ``accelerate launch`` or its config file."""
    try:
        from accelerate import Accelerator
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    return Accelerator()


def _no_print(*args, **kwargs) -> None:
    """The log sink of every process but the main one: print each line once."""


def _with_accelerator(method):
    """Create the default Accelerator (``accelerator_``) before ``method`` if none was given."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        self._ensure_accelerator()
        return method(self, *args, **kwargs)

    return wrapper


def _given_or_default(net, accelerator):
    # accelerator=None stays the parameter (sklearn's clone contract); skorch reads the
    # default Accelerator, created once per estimator by _ensure_accelerator
    return accelerator if accelerator is not None else getattr(net, "accelerator_", None)


class AcceleratedLesionClassifier(NetworkPlacementMixin, AccelerateMixin, LesionClassifier):
    """:class:`~skderm.LesionClassifier` trained through Hugging Face Accelerate.

    The same estimator, parameters and results as ``LesionClassifier``; the
    device, distributed data parallel training over several GPUs or machines,
    gradient accumulation and mixed precision come from an
    :class:`accelerate.Accelerator`. Start the script with ``accelerate launch``
    (see :doc:`/user_guide/scaling`): each process trains on its shard of every
    batch and the gradients are averaged.

    Parameters
    ----------
    accelerator : accelerate.Accelerator or None, default=None
        ``None`` creates ``Accelerator()`` at the first fit, configured by
        ``accelerate launch`` or ``accelerate config``; pass
        ``Accelerator(cpu=True)``, ``Accelerator(mixed_precision="bf16")`` or
        ``Accelerator(gradient_accumulation_steps=4)`` to choose. Clones
        (``GridSearchCV``, ``cross_validate``) share the instance passed here:
        a deep copy of an Accelerator loses track of its batches.
    unwrap_after_train : bool, default=True
        Return the network unwrapped from the Accelerator after ``fit``, so the
        fitted estimator pickles and :func:`~skderm.save_model` saves it. Set
        ``False`` only to continue training with ``partial_fit`` in the same
        distributed run.
    device : None, default=None
        The Accelerator places everything; skorch must not. Any other value
        raises unless the Accelerator was built with ``device_placement=False``.
    **kwargs
        Every :class:`~skderm.LesionClassifier` parameter (``backbone``,
        ``lr``, ``max_epochs``, ``random_state`` ...).

    Attributes
    ----------
    accelerator_ : accelerate.Accelerator
        The Accelerator created for ``accelerator=None`` (not pickled: an
        unpickled model creates a new one when it is used).

    Notes
    -----
    ``mixed_precision="auto"`` follows the Accelerator: when it was built with
    ``mixed_precision="bf16"`` or ``"fp16"`` it does the autocasting (and fp16
    loss scaling), otherwise skderm's own rule applies (bfloat16 on CUDA).

    Only training batches are sharded across processes. Validation and
    prediction run whole on every process: every process records the same
    validation scores (so early stopping and the restored best epoch agree)
    and ``predict_proba`` returns all rows everywhere.

    With more than one process, fitting refuses settings under which the
    processes would disagree: ``valid_size`` without a ``random_state`` (each
    process would draw another internal validation split), ``freeze=N``
    (distributed data parallel fixes the trainable parameters when it wraps
    the network, so the backbone cannot be unfrozen mid-training) and
    checkpoints (every process would write the same file).

    Examples
    --------
    >>> from accelerate import Accelerator
    >>> from skderm import make_lesions
    >>> from skderm.accelerate import AcceleratedLesionClassifier
    >>> data = make_lesions(60, image_size=(48, 64), random_state=0)
    >>> clf = AcceleratedLesionClassifier(accelerator=Accelerator(cpu=True), backbone="tiny",
    ...                                   weights=None, image_size=32, max_epochs=2, verbose=0)
    >>> clf.fit(data.data, data.target).predict_proba(data.data[:3]).shape
    (3, 7)
    """

    def __init__(self, *, accelerator=None, unwrap_after_train: bool = True, device=None,
                 **kwargs):
        super().__init__(accelerator=accelerator, unwrap_after_train=unwrap_after_train,
                         device=device, **kwargs)
        if "callbacks__print_log__sink" not in kwargs:
            # the mixin stores its default, "auto", as a parameter that
            # get_params(deep=True) then contradicts (the PrintLog callback's
            # own sink); _initialize_callbacks picks the sink instead
            del self.__dict__["callbacks__print_log__sink"]
            self._params_to_validate.discard("callbacks__print_log__sink")

    # ------------------------------------------------------------------
    # the accelerator and the device
    # ------------------------------------------------------------------
    accelerator = ResolvedParam(_given_or_default)

    def _ensure_accelerator(self) -> None:
        if self.accelerator is None:
            self.accelerator_ = _default_accelerator()

    def _compute_device(self):
        # device=None: the Accelerator places, and answers where batches, pinned memory,
        # autocast and channels_last go
        return self.device if self.device is not None else str(self.accelerator.device)

    def _use_amp(self) -> bool:
        if getattr(self.accelerator, "mixed_precision", "no") != "no":
            return False  # the Accelerator's own autocast does it
        return super()._use_amp()

    def get_loss(self, y_pred, y_true, *args, **kwargs):
        # validation batches come from unprepared loaders: y to the Accelerator's device
        y_true = to_tensor(y_true, device=self._compute_device())
        return super().get_loss(y_pred, y_true, *args, **kwargs)

    def __sklearn_clone__(self):
        # every clone shares the Accelerator given: a deep copy gets its own GradientState,
        # which the loaders it prepares do not update (skorch issue #944)
        params = self.get_params(deep=False)
        shared = params.pop("accelerator")
        return type(self)(accelerator=shared,
                          **{k: clone(v, safe=False) for k, v in params.items()})

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("accelerator_", None)  # process-bound: a new one is created when needed
        return state

    def __setstate__(self, state):
        if state.get("device") is None:
            # skorch maps tensors to state["device"] and warns for None; the
            # Accelerator places the network again when it is next used
            state["device"] = "cpu"
            super().__setstate__(state)
            self.__dict__["device"] = None
        else:
            super().__setstate__(state)

    # ------------------------------------------------------------------
    # checks
    # ------------------------------------------------------------------
    def _validate_params(self) -> None:
        super()._validate_params()
        n = int(getattr(self.accelerator, "num_processes", 1))
        if n <= 1:
            return
        validating = self.valid_size is not None and self.train_split is None
        if validating and self.random_state is None:
            raise ValueError(
                f"AcceleratedLesionClassifier random_state=None with {n} processes: each "
                "process would draw its own internal validation split and they would stop "
                "at different epochs; pass random_state=<int> (or valid_size=None)")
        if checkpoint_dir(self) is not None:
            raise ValueError(
                f"AcceleratedLesionClassifier callbacks__checkpoint__dirname="
                f"{checkpoint_dir(self)!r} with {n} processes: every process would write the "
                "same checkpoint file; train without checkpoints, or on one process")
        if isinstance(self.freeze, Integral) and not isinstance(self.freeze, bool) \
                and self.freeze > 0:
            raise ValueError(
                f"AcceleratedLesionClassifier freeze={self.freeze!r} with {n} processes: "
                "distributed data parallel fixes the trainable parameters when it wraps the "
                "network, so the backbone cannot be unfrozen during training; use "
                "freeze='backbone' or 'none', or fit the head first and continue with a "
                "second estimator")

    # ------------------------------------------------------------------
    # skorch hooks
    # ------------------------------------------------------------------
    def _initialize_callbacks(self):
        # Not the mixin's version: it stores accelerator.print in the parameter
        # callbacks__print_log__sink (which a clone then deep-copies), and that
        # sink prints even with verbose=0. Here the main process prints as
        # LesionClassifier does and the others print nothing.
        main = bool(getattr(self.accelerator, "is_main_process", True))
        super(AccelerateMixin, self)._initialize_callbacks()
        for _, cb in self.callbacks_:
            if isinstance(cb, PrintLog) and isinstance(cb.sink, str) and cb.sink == "auto":
                cb.sink = print  # skorch's spelling, if passed
            if not main and isinstance(cb, (EarlyStopping, PrintLog)) and cb.sink is print:
                cb.sink = _no_print
        return self

    def get_iterator(self, dataset, training=False):
        loader = super(AccelerateMixin, self).get_iterator(dataset, training=training)
        if not training:
            # Validation and prediction are not sharded: every process runs
            # them whole, so every process records the same validation scores
            # and losses (early stopping and the restored best epoch agree)
            # and predict_proba returns the same rows everywhere.
            return loader
        prepared = self.accelerator.prepare(loader)
        forget(self.accelerator, prepared)
        return prepared

    def evaluation_step(self, batch, training=False):
        # not the mixin's: its gather_for_metrics is for sharded loaders
        return super(AccelerateMixin, self).evaluation_step(batch, training=training)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # The mixin unwraps the network here, before the callbacks' own
        # on_train_end: EarlyStopping would then load the best weights, saved
        # from the wrapped network ("module." keys under distributed data
        # parallel), into the unwrapped one. notify unwraps after them.
        self.accelerator.wait_for_everyone()
        return super(AccelerateMixin, self).on_train_end(net, X=X, y=y, **kwargs)

    def notify(self, method_name, **cb_kwargs):
        # every training run (fit, partial_fit, a resumed fit) starts and ends here
        if method_name == "on_train_begin":
            self._wrap_network()
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_train_end" and self.unwrap_after_train:
            self._unwrap_network()

    # ------------------------------------------------------------------
    # public API
    # ------------------------------------------------------------------
    @_with_accelerator
    def fit(self, X, y, **fit_params):
        """Fine-tune on images ``X`` with labels ``y`` (see :meth:`LesionClassifier.fit`).

        Parameters
        ----------
        X : DataFrame, array of paths, or uint8 images (n, H, W, 3)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        return super().fit(X, y, **fit_params)

    @_with_accelerator
    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training without re-initialising (see skorch's ``partial_fit``)."""
        return super().partial_fit(X, y, classes=classes, **fit_params)

    @_with_accelerator
    def initialize(self):
        """Build the network, optimizer and callbacks and prepare them with the Accelerator."""
        # new network and optimizer: prepare them even when the previous ones
        # were left prepared (unwrap_after_train=False)
        self._wrapped_with_accelerator = False
        return super().initialize()

    @_with_accelerator
    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_`` (all rows, on every process)."""
        return super().predict_proba(X)

    def forward_iter(self, X, training=False, device="cpu"):
        self._ensure_accelerator()
        self._place_network()
        yield from super().forward_iter(X, training=training, device=device)

    @_with_accelerator
    def save_params(self, *args, **kwargs):
        return super().save_params(*args, **kwargs)

    @_with_accelerator
    def load_params(self, *args, **kwargs):
        return super().load_params(*args, **kwargs)


# sklearn's repr reads defaults from the signature: name LesionClassifier's parameters too
AcceleratedLesionClassifier.__init__.__signature__ = forwarding_signature(
    AcceleratedLesionClassifier.__init__, LesionClassifier.__init__)
