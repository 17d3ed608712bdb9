"""Request ids: taken from `X-Request-ID` when it is sane, generated otherwise, echoed back.

nginx (or the vendor) may set the id; we accept it only when it is short and plain, so a
client cannot inject newlines or megabytes into every log line of its request.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, g, request
from flask.wrappers import Response

HEADER = "X-Request-ID"
ENVIRON_KEY = "ingestion.request_id"  # read by the gunicorn access log
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _assign_request_id() -> None:
    incoming = request.headers.get(HEADER, "")
    request_id = incoming if _SANE.fullmatch(incoming) else uuid.uuid4().hex
    g.request_id = request_id
    request.environ[ENVIRON_KEY] = request_id


def _echo_request_id(response: Response) -> Response:
    response.headers[HEADER] = g.get("request_id", "")
    return response


def init_app(app: Flask) -> None:
    """Register first, so every later hook and log line of the request sees the id."""
    app.before_request_funcs.setdefault(None, []).insert(0, _assign_request_id)
    app.after_request(_echo_request_id)
