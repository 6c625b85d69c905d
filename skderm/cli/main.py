"""The parser and the entry point: every failure is one line that names the thing and the fix."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from skderm.cli import (
    backbones,
    cv,
    demo,
    evaluate,
    explain,
    export,
    lr_find,
    predict,
    serve,
    train,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from skderm import __version__

    parser = argparse.ArgumentParser(
        prog="skderm", description="scikit-learn compatible skin-lesion image classifiers")
    parser.add_argument("--version", action="version", version=f"skderm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (demo, backbones, train, predict, evaluate, cv, explain, export, lr_find,
                    serve):
        command.add_parser(sub)
    return parser


def _message(exc: BaseException) -> str:
    """One line for ``exc``, never empty: some errors (MemoryError) carry no text."""
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return ("out of memory" + (f" ({text})" if text else "") + "; use a smaller "
                "--image-size or --param batch_size=8, fewer images, or a machine with more "
                "memory (--debug shows where it happened)")
    if not text:
        return (f"{type(exc).__name__} with no message; run again with --debug for the "
                "traceback, and report it if the cause is not yours")
    return text


def main(argv: list[str] | None = None) -> int:
    """Run ``skderm`` with ``argv``; return the exit status (errors: 1, interrupted: 130)."""
    args = build_parser().parse_args(argv)

    def log(*msg) -> None:
        if not getattr(args, "quiet", False):
            print(*msg, flush=True)

    try:
        with warnings.catch_warnings():
            # each warning once per message (a grid search repeats them per fit); none with
            # --quiet
            warnings.simplefilter("ignore" if getattr(args, "quiet", False) else "once")
            return args.func(args, log)
    except KeyboardInterrupt:
        print("skderm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line unless --debug
        if args.debug or os.environ.get("SKDERM_DEBUG"):
            raise
        print(f"skderm: error: {_message(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
