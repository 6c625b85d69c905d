"""A small local web page for trying a fitted model on one image at a time.

:func:`serve` loads a model file and serves :func:`make_app` with the standard
library's ``wsgiref``: one person at a browser needs no framework, and the
page works on an install with no extra package. ``GET /`` is one
self-contained page (drop an image, see the class probabilities, the decision
and a Grad-CAM overlay), ``POST /predict`` answers JSON, ``GET /health``
describes the model. It listens on 127.0.0.1 unless told otherwise: the page
has no login, so anyone who can reach the port can use the model.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from skderm.exceptions import SkdermError
from skderm.serve._app import MAX_UPLOAD_BYTES, make_app
from skderm.serve._predict import UploadError

__all__ = ["MAX_UPLOAD_BYTES", "ServeError", "UploadError", "make_app", "make_server_for",
           "serve"]


class ServeError(SkdermError, OSError):
    """The server cannot listen where it was asked to."""


class _Handler(WSGIRequestHandler):
    # a client that stops sending mid-upload frees the (single) server after this long
    timeout = 60

    def log_message(self, format, *args):  # one short line per request, no host lookup
        sys.stderr.write(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")


def make_server_for(model, host: str = "127.0.0.1", port: int = 8000) -> WSGIServer:
    """A ``wsgiref`` server for ``model`` bound to ``host:port`` (port 0: a free one).

    Call ``serve_forever()`` on it (and ``shutdown()`` from another thread);
    ``server_port`` is the port it got.

    Raises
    ------
    ServeError
        The address is taken or cannot be bound, naming it and the fix.
    """
    app = make_app(model)
    try:
        return make_server(host, port, app, handler_class=_Handler)
    except OSError as exc:
        hint = ("another program listens there; pass another port"
                if exc.errno == errno.EADDRINUSE else "check the host and port")
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") \
            from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(model_path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000,
          sha256: str | None = None) -> None:
    """Load the model file at ``model_path`` and serve the page until Ctrl-C.

    Parameters
    ----------
    model_path : str or path-like
        A file written by :func:`skderm.save_model`.
    host : str, default="127.0.0.1"
        Address to listen on. Anything but a loopback address lets other
        machines use the model, with no login: a warning says so.
    port : int, default=8000
        Port to listen on; 0 picks a free one (printed).
    sha256 : str or None, default=None
        The digest the model's author published; checked before the file is
        read (:func:`skderm.load_model`).
    """
    from skderm.persistence import load_model

    model = load_model(model_path, sha256=sha256)
    server = make_server_for(model, host, port)
    if not _is_loopback(host):
        print(f"warning: listening on {host}, not a loopback address: anyone who can reach "
              "this machine can use the model (the page has no login)", file=sys.stderr)
    print(f"serving {os.fspath(model_path)} at http://{host}:{server.server_port}/ "
          "(Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
