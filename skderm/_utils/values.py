"""Describing the kinds of values in a column, for error messages that name them."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

__all__ = ["PLACEHOLDERS", "describe_kinds", "is_missing", "kind", "number_like", "value_kinds"]

# Spellings of "not known" in real metadata tables (HAM10000 writes "unknown").
PLACEHOLDERS = frozenset({"", "unknown", "nan", "na", "n/a", "none", "null", "missing",
                          "?", "-"})


def kind(value) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    return type(value).__name__


def value_kinds(values) -> set[str]:
    return {kind(v) for v in values if not is_missing(v)}


def is_missing(value) -> bool:
    # pd.isna on a list or an array answers elementwise: only scalars can be missing
    if value is None or isinstance(value, (float, np.floating)):
        return value is None or math.isnan(value)
    return value is pd.NA or value is pd.NaT


def describe_kinds(values) -> str:
    examples = {}
    for v in values:
        if not is_missing(v):
            examples.setdefault(kind(v), v)
    return " and ".join(f"{kind} ({examples[kind]!r})" for kind in sorted(examples))


def number_like(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
