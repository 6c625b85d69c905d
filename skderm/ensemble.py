"""A soft vote of LesionClassifiers whose members train on the labels themselves."""

from __future__ import annotations

from sklearn.ensemble import VotingClassifier
from sklearn.preprocessing import LabelEncoder

from skderm.inputs import check_labels

__all__ = ["LesionVotingClassifier"]


class LesionVotingClassifier(VotingClassifier):
    """sklearn's soft ``VotingClassifier``, its members fitted on the labels, not codes.

    sklearn's encodes ``y`` as ``0 .. k-1`` before the members see it, so a
    member's warnings and errors would name classes by those codes ("class 3
    has only 2 lesions"). Here every member trains on ``y`` itself. Labels and
    codes sort alike, so each member's probability columns still line up with
    ``classes_``, and prediction is sklearn's: the (weighted) mean probability.
    Voting is always ``"soft"``: members output probabilities.

    Parameters
    ----------
    estimators : list of (str, estimator)
    weights : array-like of shape (n_estimators,) or None, default=None
    n_jobs, flatten_transform, verbose
        As for :class:`sklearn.ensemble.VotingClassifier`.

    Examples
    --------
    >>> from skderm import LesionClassifier
    >>> from skderm.ensemble import LesionVotingClassifier
    >>> vote = LesionVotingClassifier([("a", LesionClassifier(backbone="tiny")),
    ...                                ("b", LesionClassifier(backbone="tiny", random_state=1))])
    >>> vote.voting
    'soft'
    """

    def __init__(self, estimators, *, weights=None, n_jobs=None, flatten_transform=True,
                 verbose=False):
        super().__init__(estimators, voting="soft", weights=weights, n_jobs=n_jobs,
                         flatten_transform=flatten_transform, verbose=verbose)

    def fit(self, X, y, **fit_params):
        """Fit every member on ``X`` and the labels ``y``."""
        y = check_labels(y, owner=type(self).__name__)
        self.le_ = LabelEncoder().fit(y)
        self.classes_ = self.le_.classes_
        # VotingClassifier.fit would pass the members codes; its base class fits them as given
        return super(VotingClassifier, self).fit(X, y, **fit_params)
