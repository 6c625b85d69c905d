"""The WSGI application: routing, reading an upload within bounds, JSON answers."""

from __future__ import annotations

import json
import sys
import traceback
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qs

from skderm.exceptions import DatasetError
from skderm.serve._page import PAGE
from skderm.serve._predict import Predictor, UploadError

# larger than any dermatoscopic photograph; refused before the body is read
MAX_UPLOAD_BYTES = 20 * 1024 * 1024

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Content Too Large", 500: "Internal Server Error"}


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _json(start_response, status: int, body: dict):
    data = json.dumps(body).encode()
    start_response(f"{status} {_REASONS[status]}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                    ("Cache-Control", "no-store")])
    return [data]


def _body(environ, limit: int) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length < 0:
        raise _Refused(411, "the request has no Content-Length; send the image as a form "
                            "upload (multipart/form-data) or as the raw request body")
    if length > limit:
        raise _Refused(413, f"the upload is {length} bytes, more than the limit of {limit} "
                            f"bytes ({limit // 2**20} MiB); send a smaller image")
    data = environ["wsgi.input"].read(length)
    if len(data) < length:
        raise _Refused(400, f"the upload ended after {len(data)} of {length} bytes")
    return data


def _form(environ, body: bytes) -> tuple[bytes, str, dict[str, str]]:
    """(image bytes, file name, other fields) of a multipart form or a raw body."""
    ctype = environ.get("CONTENT_TYPE", "")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if not ctype.lower().startswith("multipart/form-data"):
        return body, query.get("filename", ""), query
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise _Refused(400, "the multipart/form-data body could not be parsed; post a form "
                            "with the image in a field named 'image'")
    image, filename, fields = None, "", dict(query)
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None or name == "image":
            if image is None:
                image, filename = payload, part.get_filename() or ""
        elif name:
            fields[name] = payload.decode("utf-8", errors="replace")
    if image is None:
        raise _Refused(400, "the form holds no file; put the image in a field named 'image'")
    return image, filename, fields


def make_app(model, *, max_upload_bytes: int = MAX_UPLOAD_BYTES):
    """A WSGI application that predicts uploaded images with a fitted ``model``.

    Routes: ``GET /`` (the page), ``GET /health`` (model kind, classes,
    metadata columns) and ``POST /predict`` (an image as the ``image`` field
    of a multipart form, or as the raw body; metadata as other form fields or
    query parameters). Every answer but the page is JSON; refusals are
    ``{"error": message}`` with status 400, 404, 405, 411 or 413.

    Parameters
    ----------
    model : LesionClassifier, soft VotingClassifier or LesionLevelClassifier
        Fitted, as :func:`skderm.load_model` returns it.
    max_upload_bytes : int, default=MAX_UPLOAD_BYTES
        Larger uploads are refused (413) before they are read.
    """
    predictor = Predictor(model)
    page = PAGE.encode()

    def app(environ, start_response):
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        try:
            if path == "/":
                if method not in ("GET", "HEAD"):
                    raise _Refused(405, f"{method} / is not served; GET the page")
                start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                          ("Content-Length", str(len(page))),
                                          ("Content-Security-Policy", _CSP)])
                return [page]
            if path == "/health":
                if method not in ("GET", "HEAD"):
                    raise _Refused(405, f"{method} /health is not served; use GET")
                return _json(start_response, 200, {**predictor.describe(),
                                                    "max_upload_bytes": max_upload_bytes})
            if path == "/predict":
                if method != "POST":
                    raise _Refused(405, f"{method} /predict is not served; POST an image")
                image, filename, fields = _form(environ, _body(environ, max_upload_bytes))
                return _json(start_response, 200, predictor.predict(image, filename, fields))
            raise _Refused(404, f"no page at {path!r}; the routes are /, /health and /predict")
        except _Refused as exc:
            return _json(start_response, exc.status, {"error": str(exc)})
        except (UploadError, DatasetError) as exc:  # the upload or a form field, named
            return _json(start_response, 400, {"error": str(exc)})
        except Exception as exc:  # the person at the page gets a message, the console the trace
            traceback.print_exc(file=sys.stderr)
            return _json(start_response, 500, {"error": f"prediction failed: "
                                                        f"{type(exc).__name__}: {exc}"})

    return app


# the page loads nothing from elsewhere; the overlay arrives as a data: URL
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; connect-src 'self'; form-action 'none'; base-uri 'none'")
