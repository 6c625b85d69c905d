"""Temperature scaling: one number that makes a classifier's probabilities honest.

A network trained with cross-entropy is usually over-confident. Dividing its
logits by a temperature ``T`` learned on data it did not train on fixes most
of that (Guo et al., 2017) without changing a single decision: the argmax is
the same for every ``T``. Here the logits are the log-probabilities, so any
classifier with ``predict_proba`` can be tempered.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.sparse import issparse
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from skderm.decision import DelegatedInputMixin

__all__ = ["TemperatureScaledClassifier", "fit_temperature", "apply_temperature"]

_LOG_T_BOUNDS = (math.log(1e-2), math.log(1e2))


def _logits(proba) -> np.ndarray:
    return np.log(np.clip(np.asarray(proba, dtype=float), 1e-12, None))


def apply_temperature(proba, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / temperature)``: sharper for T < 1, softer for T > 1."""
    return softmax(_logits(proba) / temperature, axis=1)


def fit_temperature(proba, y_codes) -> float:
    """The temperature that minimises the negative log-likelihood of ``y_codes``.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Probabilities on held-out data (not the data the model trained on).
    y_codes : array-like of int, shape (n_samples,)
        Column of the true class of each row.

    Returns
    -------
    temperature : float
        In [0.01, 100]; 1 leaves the probabilities as they are.
    """
    logits = _logits(proba)
    rows = np.arange(len(logits))
    codes = np.asarray(y_codes)

    def nll(log_t: float) -> float:
        return -log_softmax(logits / math.exp(log_t), axis=1)[rows, codes].mean()

    best = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded",
                           options={"xatol": 1e-4})
    return float(math.exp(best.x))


def _take(X, rows):
    if hasattr(X, "iloc"):
        return X.iloc[rows]
    if issparse(X):
        return X.tocsr()[rows]
    return np.asarray(X)[rows] if not hasattr(X, "shape") else X[rows]


def _per_sample(value, n: int) -> bool:
    """Whether a fit parameter holds one value per sample (to be cut with X)."""
    if issparse(value) or isinstance(value, np.ndarray | pd.Series):
        return value.shape[0] == n
    return isinstance(value, list | tuple) and len(value) == n


class TemperatureScaledClassifier(
    DelegatedInputMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator
):
    """Fit a classifier on most lesions and learn its temperature on the others.

    ``fit`` splits the training data by lesion (so no lesion is on both sides:
    images of one lesion would make the held-out part look easy), fits a clone
    of ``estimator`` on one part and learns the temperature that minimises the
    log-loss of its probabilities on the held-out part.

    Parameters
    ----------
    estimator : classifier
        Anything with ``fit``, ``predict_proba`` and ``classes_``: a
        :class:`~skderm.LesionClassifier`, a pipeline on
        :class:`~skderm.BackboneFeatures`, a scikit-learn classifier.
    group_column : str or None, default="lesion_id"
        Column of X naming each image's lesion; the split keeps a lesion's
        images together. ``None`` treats every row as its own lesion.
    holdout_size : float or None, default=0.2
        Share of the lesions held out to learn the temperature: one fold of a
        stratified, lesion-grouped ``round(1 / holdout_size)``-fold split.
        ``None``: ``estimator`` is already fitted (for example on another
        split, or wrapped in ``sklearn.frozen.FrozenEstimator``); it is used
        as it is, not refitted, and all of X learns the temperature.
    random_state : int or None, default=None
        Seed of the split.

    Attributes
    ----------
    estimator_ : classifier
        The fitted classifier (``estimator`` itself when ``holdout_size=None``).
    temperature_ : float
        The learned temperature; > 1 means the estimator was over-confident.
    classes_ : ndarray
        The labels, as ``estimator_.classes_``.

    Notes
    -----
    The estimator is not refitted on all the data after the temperature is
    learned: the temperature belongs to the model it was measured on.
    ``predict`` equals the estimator's argmax; only the probabilities change.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skderm.metrics import TemperatureScaledClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    >>> clf = TemperatureScaledClassifier(LogisticRegression(), group_column=None,
    ...                                   random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (200, 2)
    """

    def __init__(self, estimator, *, group_column: str | None = "lesion_id",
                 holdout_size: float | None = 0.2, random_state: int | None = None):
        self.estimator = estimator
        self.group_column = group_column
        self.holdout_size = holdout_size
        self.random_state = random_state

    def _validate_params(self) -> None:
        name = type(self).__name__
        size = self.holdout_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, Real)
                                 or not 0 < size <= 0.5):
            raise ValueError(f"{name} holdout_size={size!r} is not valid; use a share of the "
                             "lesions in (0, 0.5] (e.g. 0.2), or None for an estimator that "
                             "is already fitted")
        if self.group_column is not None and not isinstance(self.group_column, str):
            raise ValueError(f"{name} group_column={self.group_column!r} is not valid; use a "
                             "column name or None")
        seed = self.random_state
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)):
            raise ValueError(f"{name} random_state={seed!r} is not valid; use an int or None")

    def _groups(self, X, n: int) -> np.ndarray:
        if self.group_column is None:
            return np.arange(n)
        if not isinstance(X, pd.DataFrame) or self.group_column not in X.columns:
            have = list(X.columns) if isinstance(X, pd.DataFrame) else type(X).__name__
            raise ValueError(f"{type(self).__name__} splits by column {self.group_column!r}, "
                             f"which X lacks (X: {have}); pass a DataFrame with each image's "
                             "lesion id, or group_column=None if every row is its own lesion")
        groups = X[self.group_column]
        # a missing lesion id stands for a lesion of its own
        return np.where(groups.isna(), [f"\x00row{i}" for i in range(n)],
                        groups.astype(str)).astype(object)

    def _split(self, X, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        groups = self._groups(X, len(y))
        n_splits = max(2, round(1 / self.holdout_size))
        n_groups = len(np.unique(groups))
        if n_groups < n_splits:
            raise ValueError(f"{type(self).__name__} holds out 1/{n_splits} of the lesions, so "
                             f"it needs at least {n_splits} lesions; got {n_groups} in "
                             f"n_samples = {len(y)}")
        cv = StratifiedGroupKFold(n_splits, shuffle=True, random_state=self.random_state)
        train, held = next(cv.split(np.zeros((len(y), 1)), y, groups))
        absent = np.setdiff1d(np.unique(y), y[train])
        if len(absent):
            raise ValueError(f"{type(self).__name__}: classes {absent.tolist()} are only in the "
                             "held-out lesions, so the estimator could not learn them; give "
                             "each class more lesions or lower holdout_size")
        return train, held

    def fit(self, X, y, **fit_params):
        """Fit a clone of ``estimator`` on the training lesions and learn ``temperature_``.

        ``fit_params`` go to the estimator's ``fit``; those with one value per
        sample (``sample_weight``) are cut to the training part.
        """
        self._validate_params()
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        n_rows = X.shape[0] if hasattr(X, "shape") else len(np.asarray(X))
        if n_rows != len(y):
            raise ValueError(f"{type(self).__name__}: X has {n_rows} rows but y has {len(y)} "
                             "labels; pass one label per row of X")
        if self.holdout_size is None:
            try:
                check_is_fitted(self.estimator)
            except NotFittedError:
                raise NotFittedError(f"{type(self).__name__} holdout_size=None uses the estimator "
                                     "as it is, but it is not fitted; fit it first (on other "
                                     "data), or pass holdout_size=0.2 to fit it here") from None
            estimator, held = self.estimator, np.arange(len(y))
        else:
            train, held = self._split(X, y)
            params = {k: _take(v, train) if _per_sample(v, len(y)) else v
                      for k, v in fit_params.items()}
            estimator = clone(self.estimator).fit(_take(X, train), y[train], **params)
        classes = np.asarray(estimator.classes_)
        unknown = np.setdiff1d(np.unique(y[held]), classes)
        if len(unknown):
            raise ValueError(f"{type(self).__name__}: y holds {unknown.tolist()}, which the "
                             f"estimator does not predict (classes_={classes.tolist()})")
        proba = estimator.predict_proba(_take(X, held))
        codes = np.searchsorted(classes, y[held], sorter=np.argsort(classes))
        codes = np.argsort(classes)[codes]
        self.estimator_ = estimator
        self.classes_ = classes
        self.temperature_ = fit_temperature(proba, codes)
        return self

    def predict_proba(self, X):
        """The estimator's probabilities, tempered by ``temperature_``."""
        check_is_fitted(self, "temperature_")
        proba = self.estimator_.predict_proba(X)
        return apply_temperature(proba, self.temperature_).astype(
            np.result_type(proba, np.float32), copy=False)

    def predict(self, X):
        """The class of largest probability: the estimator's own argmax."""
        proba = self.predict_proba(X)  # checks fitted before classes_ is read
        return self.classes_[proba.argmax(axis=1)]
