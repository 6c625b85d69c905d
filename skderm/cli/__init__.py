"""The ``skderm`` command (also ``python -m skderm``): thin functions over the public API.

One module per command (``demo``, ``backbones``, ``train``, ``predict``,
``evaluate``, ``cv``), each with ``add_parser(sub)`` and ``run(args, log)``;
the concepts they share live beside them: ``options`` (argument types and the
training options), ``outputs`` (where a command may write, checked before any
work), ``models`` (building a recipe, describing and unwrapping models),
``metadata`` (``predict --metadata``) and ``report`` (evaluate's files).

Errors print one line and exit with status 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

from skderm.cli.main import build_parser, main
from skderm.cli.predict import ISIC_COLUMNS

__all__ = ["ISIC_COLUMNS", "build_parser", "main"]
