"""``skderm serve``: a local web page to try a model on one image at a time."""

from __future__ import annotations

from skderm.cli.options import add_model_file_options

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="a web page on this machine: drop an image, see the "
                                     "probabilities, the decision and the saliency map")
    add_model_file_options(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: this machine only; the page has no "
                        "login)")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.set_defaults(func=run)


def run(args, log) -> int:
    from skderm.serve import serve

    serve(args.model, host=args.host, port=args.port, sha256=args.model_sha256)
    return 0
