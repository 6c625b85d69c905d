"""The fitted metadata encoder as plain arrays, and back to a fitted sklearn encoder.

A model file holds no pickled scikit-learn object. It holds what the fitted
:func:`skderm.metadata.metadata_encoder` learned (imputer medians, missing-value
indicator columns, scaler means and scales, one-hot categories, column lists
and output feature names); loading builds the same ColumnTransformer with
:func:`~skderm.metadata.metadata_encoder`, fits it on a few synthetic rows that
reproduce its structure, sets the learned arrays and checks that the structure
matches the file. ``transform`` is then scikit-learn's own.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from skderm.persistence._format import plain, refused

_KEYS = {"columns", "numeric", "categorical", "feature_names_out"}
_NUMERIC_KEYS = {"columns", "statistics", "missing_features", "mean", "var", "scale",
                 "n_samples_seen"}
_CATEGORICAL_KEYS = {"columns", "categories"}


def encoder_state(encoder) -> dict | None:
    """What a fitted metadata ColumnTransformer learned, as plain values."""
    if encoder is None:
        return None
    parts = {name: (pipe, list(cols)) for name, pipe, cols in encoder.transformers_
             if name != "remainder" and pipe != "drop"}
    if set(parts) - {"num", "cat"}:
        raise TypeError(f"cannot save a metadata encoder with parts {sorted(parts)}; "
                        "save_model saves the 'num' and 'cat' parts of "
                        "skderm.metadata.metadata_encoder")
    state = {"columns": plain(list(encoder.feature_names_in_)), "numeric": None,
             "categorical": None,
             "feature_names_out": plain(list(encoder.get_feature_names_out()))}
    if "num" in parts:
        pipe, cols = parts["num"]
        imputer, scaler = pipe[0], pipe[-1]
        state["numeric"] = {
            "columns": plain(cols),
            "statistics": [None if math.isnan(s) else float(s) for s in imputer.statistics_],
            "missing_features": plain(imputer.indicator_.features_),
            "mean": plain(scaler.mean_), "var": plain(scaler.var_),
            "scale": plain(scaler.scale_), "n_samples_seen": plain(scaler.n_samples_seen_),
        }
    if "cat" in parts:
        pipe, cols = parts["cat"]
        state["categorical"] = {"columns": plain(cols),
                                "categories": [plain(c) for c in pipe[-1].categories_]}
    return state


def _names(value, where: str, what: str) -> list[str]:
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)
            and len(set(value)) == len(value)):
        raise refused(where, f"the metadata encoder's {what} is not a list of distinct names")
    return value


def _finite(value, n: int | None, where: str, what: str) -> np.ndarray:
    ok = isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    array = np.asarray(value, dtype=np.float64) if ok else None
    if array is None or not np.isfinite(array).all() or (n is not None and len(array) != n):
        raise refused(where, f"the metadata encoder's {what} is not a list of "
                      f"{n if n is not None else 'finite'} finite numbers")
    return array


def _synthetic_rows(columns, num, cat) -> pd.DataFrame:
    """Rows on which the encoder learns the file's indicator columns and categories."""
    categories = cat["categories"] if cat else []
    n = max([2] + [len(c) for c in categories])
    data = {}
    for j, name in enumerate(num["columns"] if num else []):
        stat = num["statistics"][j]
        data[name] = np.full(n, np.nan if stat is None else float(stat))
        if j in num["missing_features"]:
            data[name][0] = np.nan
    for name, cats in zip(cat["columns"] if cat else [], categories, strict=True):
        data[name] = np.array([cats[i % len(cats)] for i in range(n)], dtype=object)
    return pd.DataFrame(data)[columns]


def rebuild_encoder(state, where: str):
    """A fitted ColumnTransformer equal to the one :func:`encoder_state` described."""
    from skderm.metadata import metadata_encoder

    if not (isinstance(state, dict) and set(state) == _KEYS):
        raise refused(where, f"the metadata encoder's fields are not {sorted(_KEYS)}")
    columns = _names(state["columns"], where, "column list")
    num, cat = state["numeric"], state["categorical"]
    if num is not None and not (isinstance(num, dict) and set(num) == _NUMERIC_KEYS):
        raise refused(where, f"the numeric encoder's fields are not {sorted(_NUMERIC_KEYS)}")
    if cat is not None and not (isinstance(cat, dict) and set(cat) == _CATEGORICAL_KEYS):
        raise refused(where, f"the categorical encoder's fields are not "
                      f"{sorted(_CATEGORICAL_KEYS)}")
    numeric = _names(num["columns"], where, "numeric columns") if num else []
    other = _names(cat["columns"], where, "categorical columns") if cat else []
    if sorted(numeric + other) != sorted(columns) or not columns:
        raise refused(where, "the metadata encoder's columns do not add up to its column list")
    if num:
        stats = num["statistics"]
        if not (isinstance(stats, list) and len(stats) == len(numeric) and all(
                s is None or (isinstance(s, (int, float)) and not isinstance(s, bool)
                              and math.isfinite(s)) for s in stats)):
            raise refused(where, "the numeric encoder's medians are not one finite number "
                          "(or None) per column")
        missing = num["missing_features"]
        if not (isinstance(missing, list) and all(type(i) is int for i in missing)):
            raise refused(where, "the numeric encoder's missing_features is not a list of ints")
    if cat and not (isinstance(cat["categories"], list)
                    and len(cat["categories"]) == len(other)
                    and all(isinstance(c, list) and c for c in cat["categories"])):
        raise refused(where, "the categorical encoder's categories are not one non-empty "
                      "list per column")

    empty = pd.DataFrame({c: pd.Series(dtype=float if c in numeric else object)
                          for c in columns})
    encoder = metadata_encoder(empty)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # columns empty at fit time, as in the original
            encoder.fit(_synthetic_rows(columns, num, cat))
    except (TypeError, ValueError) as exc:
        raise refused(where, f"the metadata encoder cannot be rebuilt ({exc})") from exc
    parts = {name: pipe for name, pipe, _ in encoder.transformers_ if name != "remainder"}
    if num:
        imputer, scaler = parts["num"][0], parts["num"][-1]
        if plain(imputer.indicator_.features_) != num["missing_features"]:
            raise refused(where, "the numeric encoder's missing_features do not fit its medians")
        width = len(scaler.mean_)
        imputer.statistics_ = np.array([np.nan if s is None else s for s in num["statistics"]],
                                       dtype=np.float64)
        scaler.mean_ = _finite(num["mean"], width, where, "means")
        scaler.var_ = _finite(num["var"], width, where, "variances")
        scaler.scale_ = _finite(num["scale"], width, where, "scales")
        if (scaler.scale_ <= 0).any():
            raise refused(where, "the metadata encoder has a scale <= 0")
        seen = num["n_samples_seen"]  # informative: transform does not read it
        if not (isinstance(seen, (int, float)) and not isinstance(seen, bool) and seen >= 0):
            raise refused(where, "the numeric encoder's n_samples_seen is not a count")
        scaler.n_samples_seen_ = np.float64(seen) if isinstance(seen, float) else seen
    if cat and [plain(c) for c in parts["cat"][-1].categories_] != cat["categories"]:
        raise refused(where, "the categorical encoder's categories are not distinct, sorted "
                      "values of one type")
    if plain(list(encoder.get_feature_names_out())) != state["feature_names_out"]:
        raise refused(where, "the metadata encoder's feature names do not match its columns")
    return encoder
