"""Argument types and the options train and cv share: bad values fail at parse time."""

from __future__ import annotations

import argparse
import ast
import difflib
import re

from skderm.recipes import RECIPES

__all__ = ["NESTED_PREFIXES", "add_model_file_options", "add_training_options", "at_least",
           "check_param_names", "freeze_value", "parse_params", "sha256_hex"]

# skorch routes these prefixes to nested objects (optimizer__weight_decay ...)
NESTED_PREFIXES = ("module", "criterion", "optimizer", "iterator_train", "iterator_valid",
                   "callbacks", "dataset", "compile", "augmentation")


def at_least(minimum: int, hint: str = ""):
    """An argparse type: an integer >= ``minimum``, else a usage error that says so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small: use {minimum} or more"
                                             + (f" ({hint})" if hint else ""))
        return value
    parse.__name__ = "integer"
    return parse


def sha256_hex(text: str) -> str:
    """An argparse type: 64 hexadecimal digits (``sha256sum MODEL`` prints them)."""
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a SHA-256 digest: give the 64 hexadecimal digits that "
            "`sha256sum MODEL` prints for the file you were given")
    return value


def freeze_value(text: str):
    """``--freeze``: a number of epochs, or a word such as 'backbone' or 'none'."""
    return int(text) if text.isdigit() else text


def parse_params(items: list[str] | None) -> dict:
    """``["k=v", ...]`` -> dict; values are Python literals, else plain strings."""
    params = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--param {item!r} is not of the form name=value "
                             "(e.g. --param module__hidden_units=256)")
        try:
            params[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[key] = text  # freeze=backbone: a bare word is a string
    return params


def check_param_names(params: dict) -> None:
    """Refuse a --param that is no LesionClassifier parameter, suggesting the near one."""
    from skderm import LesionClassifier

    valid = set(LesionClassifier().get_params(deep=False))
    unknown = [k for k in params
               if k not in valid and k.split("__", 1)[0] not in NESTED_PREFIXES]
    if unknown:
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, valid, 1))
                 else repr(k) for k in unknown]
        raise ValueError(f"unknown --param name {', '.join(hints)}: not a LesionClassifier "
                         "parameter; see help(skderm.LesionClassifier), or use a skorch "
                         "prefix such as optimizer__weight_decay")


def _recipe_help() -> str:
    lines = [f"'{r.name}': {r.purpose}" for r in RECIPES.values()]
    return ("starting settings (skderm.recipes; scores on the docs' benchmarks pages). "
            "'auto' (default): 'vote' where a CUDA GPU trains, else 'cpu'. "
            + " ".join(lines) + " The options below override the recipe (every member's).")


def add_model_file_options(p: argparse.ArgumentParser) -> None:
    """--model and --model-sha256, for the commands that read a saved model."""
    p.add_argument("--model", required=True, help="a file from `skderm train`")
    p.add_argument("--model-sha256", type=sha256_hex, metavar="HEX",
                   help="refuse the model file unless its SHA-256 is HEX: the digest of the "
                        "whole file, published by whoever gave it to you")


def add_training_options(p: argparse.ArgumentParser) -> None:
    """The options of train and cv: data, recipe, overrides, checkpoints."""
    p.add_argument("--data", metavar="DIR", required=True,
                   help="a HAM10000 folder (metadata CSV + images)")
    p.add_argument("--recipe", choices=("auto", *RECIPES), default="auto", help=_recipe_help())
    p.add_argument("--decision", choices=("lesion", "image"), default="lesion",
                   help="'lesion' (default): recipes with a per-lesion decision rule pool "
                        "each lesion_id's images and shift the decision towards the frequent "
                        "classes; 'image': every image by the model's argmax")
    p.add_argument("--backbone", default=None,
                   help="a name from `skderm backbones` (default: the recipe's)")
    p.add_argument("--weights", default=None,
                   help="'imagenet' (default), a weights file, or 'none' (random start)")
    p.add_argument("--epochs", type=at_least(1), default=None,
                   help="training epochs, 1 or more (default: the recipe's)")
    p.add_argument("--image-size", type=at_least(1), nargs=2, default=None, metavar=("H", "W"),
                   help="resize images to H x W (default: the recipe's, else the "
                        "backbone's input size)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="any LesionClassifier parameter, repeatable "
                        "(module__hidden_units=256, freeze=backbone, optimizer__weight_decay=0.01)")
    p.add_argument("--seed", type=int, default=0, help="random_state of the classifier")
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="write a checkpoint here after every epoch (train: default "
                        "OUT.checkpoints; cv: none unless given)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its checkpoint (same options and data)")
    p.add_argument("--quiet", action="store_true", help="print only the results")
