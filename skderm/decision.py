"""Decide per lesion, and choose the point between mean recall and MCC.

:class:`LesionLevelClassifier` wraps any fitted-by-it classifier (a
:class:`~skderm.LesionClassifier`, the soft vote of
:func:`skderm.recipes.make_ensemble`, a pipeline on
:class:`~skderm.BackboneFeatures`) and changes how its probabilities become
labels, never how it is trained:

* **pooling**: HAM10000 photographs many lesions more than once, and a clinic
  knows which images show one lesion. The images of a lesion get its average
  probabilities (:func:`average_by_lesion`), so they are
  classified together, as one lesion seen several ways.
* **prior_shift** ``t``: the label is ``argmax(log p - t * log prior)``, with
  ``prior`` the training labels' class frequencies. ``t = 0`` is the plain
  argmax; ``t < 0`` moves decisions towards the frequent classes (nv), which
  costs some mean recall and buys precision, so MCC rises; ``t > 0`` moves
  them towards the rare classes (``t = 1`` is the post-hoc logit adjustment
  of Menon et al., 2021). Balanced accuracy and MCC trace a frontier as
  ``t`` moves (``benchmarks/operating_points.py``).

Both act at prediction time only, so ``set_params(prior_shift=...)`` on a
fitted wrapper changes its predictions without refitting. Choose ``t`` on
predictions the network has not trained on (a validation split, or the
out-of-fold predictions of a cross-validation), never on the test images:
``benchmarks/decision_rule.py`` shows how, and what it gains on HAM10000.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "DelegatedInputMixin",
    "LesionLevelClassifier",
    "average_by_lesion",
    "shifted_argmax",
]

_POOLINGS = ("mean", "geometric")


def average_by_lesion(proba, groups, *, method: str = "mean") -> np.ndarray:
    """Give every image its lesion's average class probabilities.

    HAM10000 photographs many lesions more than once. When the images of one
    lesion are classified together, averaging their probabilities is a cheap
    ensemble over views. It needs each test image's ``lesion_id``, which a
    clinic has and a single-image benchmark (the ISIC 2018 test set) does
    not: report figures made with it as such.

    Parameters
    ----------
    proba : array-like of shape (n_images, n_classes)
        Class probabilities, e.g. from ``predict_proba``.
    groups : array-like of shape (n_images,)
        The lesion of each image. A missing value (None/NaN) leaves that image
        on its own.
    method : {"mean", "geometric"}, default="mean"
        Arithmetic mean of the probabilities, or the normalised geometric mean
        (mean of log-probabilities).

    Returns
    -------
    ndarray of shape (n_images, n_classes)
        Rows sum to 1; images of a lesion share one row.

    Examples
    --------
    >>> import numpy as np
    >>> from skderm.decision import average_by_lesion
    >>> average_by_lesion(np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]]), ["a", "a", "b"])
    array([[0.6, 0.4],
           [0.6, 0.4],
           [0.2, 0.8]])
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-D (n_images, n_classes), got shape {proba.shape}")
    groups = pd.Series(np.asarray(groups, dtype=object)).reset_index(drop=True)
    if len(groups) != len(proba):
        raise ValueError(f"groups has {len(groups)} entries but proba has {len(proba)} rows; "
                         "pass one lesion id per image, in the same order")
    if method not in ("mean", "geometric"):
        raise ValueError(f"method must be 'mean' or 'geometric', got {method!r}")
    missing = groups.isna().to_numpy()
    # a missing lesion id stands for a lesion of its own
    keys = groups.astype(str).to_numpy(dtype=object)
    keys[missing] = [f"\x00missing{i}" for i in np.flatnonzero(missing)]
    values = np.log(np.clip(proba, 1e-12, None)) if method == "geometric" else proba
    codes, index = np.unique(keys, return_inverse=True)
    sums = np.zeros((len(codes), proba.shape[1]))
    np.add.at(sums, index, values)
    mean = sums[index] / np.bincount(index)[index, None]
    if method == "geometric":
        mean = np.exp(mean - mean.max(axis=1, keepdims=True))
    return mean / mean.sum(axis=1, keepdims=True)


def shifted_argmax(proba, class_prior, prior_shift: float) -> np.ndarray:
    """Column index of ``argmax(log proba - prior_shift * log class_prior)`` per row.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Class probabilities.
    class_prior : array-like of shape (n_classes,)
        Class frequencies of the training labels, all > 0.
    prior_shift : float
        ``t``: 0 is the plain argmax, < 0 favours frequent classes, > 0 rare ones.

    Returns
    -------
    ndarray of int, shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from skderm.decision import shifted_argmax
    >>> p = np.array([[0.55, 0.45]])
    >>> shifted_argmax(p, [0.9, 0.1], 0.0), shifted_argmax(p, [0.9, 0.1], 1.0)
    (array([0]), array([1]))
    """
    proba = np.asarray(proba, dtype=float)
    prior = np.asarray(class_prior, dtype=float)
    if proba.ndim != 2 or prior.shape != (proba.shape[1],):
        raise ValueError(f"proba of shape {proba.shape} needs one class_prior per column, "
                         f"got shape {prior.shape}")
    if not (prior > 0).all():
        raise ValueError(f"class_prior must be > 0 for every class, got {prior.tolist()}")
    scores = np.log(np.clip(proba, 1e-12, None))
    if prior_shift:
        scores = scores - prior_shift * np.log(prior)
    return scores.argmax(axis=1)


class DelegatedInputMixin:
    """What a meta-estimator's fitted ``estimator_`` knows of its input, exposed on it.

    ``n_features_in_`` and ``feature_names_in_`` read through to ``estimator_``
    (as scikit-learn's meta-estimators do) and the input tags are those of
    ``estimator``. List it before ``BaseEstimator`` in the bases.
    """

    @property
    def n_features_in_(self):
        return self._fitted_attribute("n_features_in_")

    @property
    def feature_names_in_(self):
        return self._fitted_attribute("feature_names_in_")

    def _fitted_attribute(self, name: str):
        if "estimator_" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} is not fitted, so it has no {name}")
        return getattr(self.estimator_, name)

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        tags.input_tags = get_tags(self.estimator).input_tags
        return tags


class LesionLevelClassifier(
    DelegatedInputMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator
):
    """Pool each lesion's images and shift the decision rule of a classifier.

    Parameters
    ----------
    estimator : classifier
        Fitted by :meth:`fit` (a clone of it): a
        :class:`~skderm.LesionClassifier`, a soft ``VotingClassifier`` of them,
        a pipeline... anything with ``fit``, ``predict_proba`` and ``classes_``.
    group_column : str or None, default="lesion_id"
        Column of X naming each image's lesion: images that share a value are
        pooled. X must then be a DataFrame with that column at prediction
        time (a missing value leaves that image on its own). ``None`` predicts
        every image on its own.
    pooling : {"mean", "geometric"} or None, default="mean"
        How a lesion's probabilities are combined
        (:func:`average_by_lesion`); ``None`` turns pooling off.
    prior_shift : float, default=0.0
        ``t`` of the decision rule ``argmax(log p - t * log prior)``; 0 is
        the wrapped classifier's own argmax (see the module docstring).

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone.
    classes_ : ndarray
        The labels, as ``estimator_.classes_``.
    class_prior_ : ndarray of shape (n_classes,)
        Class frequencies of the labels ``fit`` saw (before any resampling
        inside ``estimator``).

    Notes
    -----
    ``predict_proba`` returns the pooled probabilities, unshifted (they stay
    probabilities); ``predict`` applies the shift, so with ``prior_shift != 0``
    it is not the argmax of ``predict_proba``, as with scikit-learn's
    ``FixedThresholdClassifier``. Scorers that use labels (balanced accuracy,
    MCC) see the shift; those that use probabilities (log loss, AUC) see the
    pooling only.

    Pooling uses each test image's lesion id, which a clinic has and a
    single-image benchmark (the ISIC 2018 test set) does not: report scores
    made with it as lesion-level.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skderm.decision import LesionLevelClassifier
    >>> import pandas as pd
    >>> X = pd.DataFrame({"x": [0.0, 0.2, 0.9, 1.0], "lesion_id": ["a", "a", "b", "b"]})
    >>> y = ["bcc", "bcc", "nv", "nv"]
    >>> clf = LesionLevelClassifier(LogisticRegression(), group_column=None)
    >>> clf.fit(X[["x"]], y).predict(X[["x"]]).tolist()
    ['bcc', 'bcc', 'nv', 'nv']
    """

    def __init__(self, estimator, *, group_column: str | None = "lesion_id",
                 pooling: str | None = "mean", prior_shift: float = 0.0):
        self.estimator = estimator
        self.group_column = group_column
        self.pooling = pooling
        self.prior_shift = prior_shift

    def _validate_params(self) -> None:
        name = type(self).__name__
        if self.pooling is not None and self.pooling not in _POOLINGS:
            raise ValueError(f"{name} pooling={self.pooling!r} is not valid; use 'mean', "
                             "'geometric' or None")
        shift = self.prior_shift
        if isinstance(shift, bool) or not isinstance(shift, Real) or not math.isfinite(shift):
            raise ValueError(f"{name} prior_shift={shift!r} is not valid; use a finite number "
                             "(0 is the plain argmax, e.g. -0.1 favours the frequent classes)")
        if self.group_column is not None and not isinstance(self.group_column, str):
            raise ValueError(f"{name} group_column={self.group_column!r} is not valid; use a "
                             "column name or None")

    def fit(self, X, y, **fit_params):
        """Fit a clone of ``estimator`` and record the class frequencies of ``y``.

        ``fit_params`` go to the estimator's ``fit``.
        """
        self._validate_params()
        y_arr = np.asarray(y)
        estimator = clone(self.estimator).fit(X, y, **fit_params)
        classes = np.asarray(estimator.classes_)
        counts = np.array([(y_arr == c).sum() for c in classes], dtype=float)
        if not (counts > 0).all():
            missing = classes[counts == 0].tolist()
            raise ValueError(f"{type(self).__name__}: the estimator predicts classes {missing} "
                             "that y does not hold, so their frequency is unknown; fit it on "
                             "labels with every class it predicts")
        self.estimator_ = estimator
        self.classes_ = classes
        self.class_prior_ = counts / counts.sum()
        return self

    def _groups(self, X):
        if self.pooling is None or self.group_column is None:
            return None
        if not isinstance(X, pd.DataFrame) or self.group_column not in X.columns:
            have = list(X.columns) if isinstance(X, pd.DataFrame) else type(X).__name__
            raise ValueError(f"{type(self).__name__} pools images by column "
                             f"{self.group_column!r}, which X lacks (X: {have}); pass a "
                             "DataFrame with each image's lesion id, or set group_column=None "
                             "(or pooling=None) to predict every image on its own")
        return X[self.group_column].to_numpy()

    def predict_proba(self, X):
        """The estimator's probabilities, averaged over each lesion's images."""
        check_is_fitted(self, "estimator_")
        self._validate_params()
        self._groups(X)  # a missing lesion column fails before the network runs
        return self.pool(self.estimator_.predict_proba(X), X)

    def pool(self, proba, X):
        """Average ``proba``, the estimator's per-image probabilities for ``X``, over each
        lesion's images, as :meth:`predict_proba` does.

        For callers that also need the per-image probabilities (to score both
        decisions) without running the network twice.
        """
        check_is_fitted(self, "estimator_")
        self._validate_params()
        groups = self._groups(X)
        if groups is None:
            return proba
        pooled = average_by_lesion(proba, groups, method=self.pooling)
        # the estimator's precision (LesionClassifier's float32), not average_by_lesion's float64
        return pooled.astype(np.result_type(proba, np.float32), copy=False)

    def predict(self, X):
        """The label of ``argmax(log p - prior_shift * log class_prior_)`` per image."""
        return self.decide(self.predict_proba(X))

    def decide(self, proba):
        """Labels from probabilities :meth:`predict_proba` returned, as :meth:`predict` gives.

        For callers that need both (a report of probabilities and labels)
        without running the network twice.
        """
        check_is_fitted(self, "estimator_")
        self._validate_params()
        return self.classes_[shifted_argmax(proba, self.class_prior_, self.prior_shift)]
