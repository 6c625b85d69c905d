"""skderm.decision.average_by_lesion: one probability per lesion.

To be folded into tests/test_decision.py (kept apart while that file has another owner).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skderm.decision import average_by_lesion


def test_average_by_lesion_shares_each_lesions_mean():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=30)
    groups = pd.Series(rng.choice(["a", "b", "c", "d", "e"], size=30),
                       index=np.arange(100, 130))  # positional, whatever the index
    out = average_by_lesion(proba, groups)
    for g in groups.unique():
        rows = (groups == g).to_numpy()
        np.testing.assert_allclose(out[rows], np.tile(proba[rows].mean(0), (rows.sum(), 1)))
    np.testing.assert_allclose(out.sum(1), 1.0)
    perm = rng.permutation(30)  # the order of the images does not matter
    np.testing.assert_allclose(average_by_lesion(proba[perm], groups.to_numpy()[perm]), out[perm])


def test_average_by_lesion_geometric_and_missing_ids():
    proba = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.2, 0.8], [0.7, 0.3]])
    groups = ["x", "x", None, np.nan, "y"]
    out = average_by_lesion(proba, groups, method="geometric")
    np.testing.assert_allclose(out[0], [0.5, 0.5])  # sqrt(.09) each side, normalised
    np.testing.assert_allclose(out[2:], proba[2:])  # missing ids stay on their own
    out = average_by_lesion(proba, groups)
    np.testing.assert_allclose(out[[2, 3]], proba[[2, 3]])


def test_average_by_lesion_errors_name_the_problem():
    with pytest.raises(ValueError, match="groups has 2 entries but proba has 3 rows"):
        average_by_lesion(np.full((3, 2), 0.5), ["a", "b"])
    with pytest.raises(ValueError, match=r"2-D .* shape \(3,\)"):
        average_by_lesion(np.full(3, 0.5), ["a", "b", "c"])
    with pytest.raises(ValueError, match="'median'"):
        average_by_lesion(np.full((1, 2), 0.5), ["a"], method="median")
