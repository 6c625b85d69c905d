"""Shared argument handling for the examples: real data with --data, else synthetic lesions."""

from __future__ import annotations

import argparse
import tempfile

from skderm import load_ham10000, make_lesions


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", help="a HAM10000 folder; default: synthetic lesions")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings that finish in seconds (used by the tests)")
    return parser.parse_args()


def load(args: argparse.Namespace, n_synthetic: int = 300):
    """The data as (X, y, groups): HAM10000 from --data, else make_lesions."""
    if args.data:
        data = load_ham10000(args.data)
    else:
        directory = tempfile.mkdtemp(prefix="skderm_example_")
        data = make_lesions(140 if args.quick else n_synthetic, random_state=0,
                            directory=directory)
    return data.data, data.target, data.groups
