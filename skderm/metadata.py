"""Metadata columns (age, sex, localization) fused into the network's head.

:func:`check_metadata` names the column and rows a model cannot use;
:func:`metadata_encoder` is the sklearn transformer (imputer and scaler for
numbers, one-hot for categories) that turns them into the head's inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skderm._utils.values import PLACEHOLDERS, describe_kinds, is_missing, number_like, value_kinds
from skderm.exceptions import DatasetError

__all__ = ["check_metadata", "check_metadata_at_predict", "metadata_encoder",
           "normalise_metadata", "single_column"]


def single_column(X: pd.DataFrame, name) -> pd.Series:
    """``X[name]`` as one Series, refusing a name that several columns share."""
    if not isinstance(X.columns.get_loc(name), (int, np.integer)):
        raise DatasetError(f"X has several columns named {name!r}; rename or drop all but "
                           f"one (columns: {list(X.columns)})")
    return X[name]


def _metadata_problem(series: pd.Series) -> str | None:
    """Why the encoder cannot take ``series`` as it is, or None."""
    dtype = series.dtype
    if pd.api.types.is_complex_dtype(dtype):
        return "holds complex numbers; metadata must be real numbers or text"
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_numeric_dtype(dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        infinite = np.flatnonzero(np.isinf(values))
        if len(infinite):
            return (f"holds infinite values (first rows {infinite[:5].tolist()}); replace "
                    "them with NaN, which is imputed, or with a number")
        return None
    if isinstance(dtype, pd.CategoricalDtype):
        # a categorical dtype is a deliberate choice, so text categories that
        # look like numbers ("1", "2") are fine; other types break the imputer
        if not value_kinds(dtype.categories) <= {"text"}:
            return (f"has categories that are not text: {describe_kinds(dtype.categories)}; "
                    "one-hot encoding needs text categories: use "
                    "column.astype(str).astype('category')")
        return None
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        return (f"has dtype {dtype}, which is neither numbers nor text; convert it to a "
                "number (e.g. an age in years) or to text")
    values = series.to_numpy(dtype=object)
    kinds = value_kinds(values)
    if not kinds <= {"text", "number", "bool"}:
        return (f"holds {describe_kinds(values)} values; each value must be one number or "
                "one piece of text")
    if len(kinds) > 1:
        return (f"mixes {describe_kinds(values)}; make it all numbers "
                "(pd.to_numeric(column, errors='coerce') turns text into NaN, which is "
                "imputed) or all text (column.astype(str))")
    if kinds == {"number"}:
        return ("holds numbers stored with dtype object; convert it with "
                "pd.to_numeric(column) to use it as a number, or .astype('category') to "
                "one-hot encode it")
    if kinds == {"text"}:
        present = [v for v in pd.unique(values) if isinstance(v, str)]
        numeric = [v for v in present if number_like(v)]
        if numeric and all(v in numeric or v.strip().lower() in PLACEHOLDERS
                           for v in present):
            shown = sorted(present, key=lambda v: (v not in numeric, v))[:3]
            other = [v for v in present if v not in numeric][:2]
            return (f"holds numbers written as text (e.g. {shown + other}); convert it with "
                    "pd.to_numeric(column, errors='coerce') so it is used as a number "
                    "(missing values are imputed), or .astype('category') to one-hot "
                    "encode it")
    return None


def check_metadata(frame: pd.DataFrame, columns: list[str] | None = None) -> None:
    """Refuse metadata columns the encoder would misread or fail on.

    Numeric columns are used as numbers (missing values imputed) and must be
    finite; boolean, categorical and text columns are one-hot encoded and
    must hold values of one type (categorical columns: text categories).
    Columns of dates, complex numbers, lists or dicts, text and numbers
    mixed, numbers stored as ``object`` and numbers written as text (``"45"``,
    ``"unknown"``) are refused: each would be silently one-hot encoded as
    categories or fail deep inside scikit-learn. To one-hot encode numbers on
    purpose, make the column categorical with text categories.

    Parameters
    ----------
    frame : DataFrame
        The table holding the columns.
    columns : list of str or None, default=None
        Columns to check; ``None`` checks all.

    Raises
    ------
    DatasetError
        Naming the first column refused, what it holds and how to fix it.
    """
    columns = list(frame.columns) if columns is None else list(columns)
    for name in columns:
        if not isinstance(name, str):
            raise DatasetError(f"metadata column names must be text, got {name!r} "
                               f"({type(name).__name__}); rename the column")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise DatasetError(f"metadata_columns lists {twice} more than once")
    for name in columns:
        problem = _metadata_problem(single_column(frame, name))
        if problem:
            raise DatasetError(f"metadata column {name!r} {problem}")


def check_metadata_at_predict(frame: pd.DataFrame, encoder) -> None:
    """Refuse text in a column that a fitted encoder learned as numbers.

    :func:`check_metadata` judges one table alone; only the fitted encoder
    knows that ``age`` was numeric at fit time, so that ``"unknown"`` in it
    now is an error rather than a category.

    Parameters
    ----------
    frame : DataFrame
        Metadata columns at predict time, as :func:`parse_X` returns them.
    encoder : fitted metadata encoder
        The ``ColumnTransformer`` of :func:`metadata_encoder`, or a loaded
        model's plain encoder (``parts`` with ``kind="numeric"``).

    Raises
    ------
    DatasetError
        Naming the column and the text values found in it.
    """
    for name in _numeric_columns(encoder):
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype) and \
                not pd.api.types.is_bool_dtype(column.dtype):
            continue
        values = column.to_numpy(dtype=object)
        present = [v for v in values if not is_missing(v)]
        if present:
            raise DatasetError(
                f"metadata column {name!r} held numbers when the model was fitted but now "
                f"holds {describe_kinds(present)}; pass numbers, or NaN where the value is "
                "unknown (it is imputed as at fit time)")


def _numeric_columns(encoder) -> list[str]:
    if hasattr(encoder, "transformers_"):  # a fitted ColumnTransformer
        return [c for name, _, cols in encoder.transformers_ if name == "num" for c in cols]
    return [c for part in getattr(encoder, "parts", []) if part.get("kind") == "numeric"
            for c in part["columns"]]


def normalise_metadata(frame: pd.DataFrame, columns: list[str]) -> dict[str, pd.Series]:
    """Checked metadata columns in the two forms :func:`metadata_encoder` reads.

    Numeric columns become ``float64`` (NaN for missing); categorical columns
    (text categories) stay as they are, unless they have no category at all
    (their empty category index is float, which scikit-learn's imputer would
    take for numbers); all others become ``object`` text
    (booleans as ``"True"``/``"False"``) with every missing value (None, NaN,
    ``pd.NA``) as NaN, so ``None`` and NaN fall into the same "missing"
    category at fit and at predict time, and the one-hot encoder never sees
    text and booleans mixed. The rule depends on the dtype only, never on the
    values.
    """
    check_metadata(frame, columns)
    out = {}
    for name in columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype) and len(col.cat.categories):
            out[name] = col  # text categories (checked), even ones that look like numbers
        elif (not isinstance(col.dtype, pd.CategoricalDtype)
                and pd.api.types.is_numeric_dtype(col.dtype)
              and not pd.api.types.is_bool_dtype(col.dtype)):
            out[name] = pd.Series(col.to_numpy(dtype=float, na_value=np.nan),
                                  index=col.index, name=name)
        else:
            values = col.to_numpy(dtype=object, copy=True)
            missing = pd.isna(values)
            values[~missing] = [str(v) for v in values[~missing]]
            values[missing] = np.nan
            out[name] = pd.Series(values, index=col.index, name=name, dtype=object)
    return out


def metadata_encoder(frame: pd.DataFrame):
    """An unfitted encoder of metadata columns into numbers for the network's head.

    Numeric columns are imputed (median, plus a missing-value indicator) and
    standardised; all others (text, boolean, categorical) are imputed with the
    category ``"missing"`` and one-hot encoded, categories unseen at fit time
    encoding as all zeros.

    Parameters
    ----------
    frame : DataFrame
        The metadata columns, as :func:`parse_X` returns them in ``frame``
        (numeric columns ``float64``, the others ``object``); checked with
        :func:`check_metadata`.

    Returns
    -------
    sklearn.compose.ColumnTransformer

    Raises
    ------
    DatasetError
        A column :func:`check_metadata` refuses.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    check_metadata(frame)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    other = [c for c in frame.columns if c not in numeric]
    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                           StandardScaler()), numeric))
    if other:
        parts.append(("cat", make_pipeline(
            # keep a column that is empty at fit time (as the category "missing"):
            # dropped, it would leave the one-hot encoder with no column at all,
            # or out of step with the column list a saved model records
            SimpleImputer(strategy="constant", fill_value="missing", keep_empty_features=True),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)), other))
    return ColumnTransformer(parts, sparse_threshold=0.0)
