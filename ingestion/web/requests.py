"""The request lifecycle: request id, in-flight gauge, request count and duration.

Request ids are taken from `X-Request-ID` when it is short and plain (nginx or the vendor
may set one), generated otherwise, and echoed back; a client cannot inject newlines or
megabytes into every log line of its request. Metrics label requests by route pattern,
never by raw path, so cardinality stays bounded; /metrics scrapes are not counted, so the
in-flight gauge reads 0 on an idle service.
"""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, g, request
from flask.wrappers import Response
from gunicorn.http.errors import NoMoreData, ParseException

from ..errors import BadRequest
from ..metrics import HTTP_DURATION, HTTP_IN_FLIGHT, HTTP_REQUESTS

HEADER = "X-Request-ID"
ENVIRON_KEY = "ingestion.request_id"  # read by the gunicorn access log
WEBHOOK_KEY = "ingestion.webhook"  # what happened to a webhook, also on the access line
UNMATCHED = "<unmatched>"
NOT_OBSERVED = frozenset({"/metrics"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def raw_body() -> bytes:
    """The request body, read off the connection once (then cached for the request).

    Werkzeug answers 413 past MAX_CONTENT_LENGTH. Reading can also fail on the wire: a
    chunked body with a broken chunk, a client gone mid-body. That is the client's
    request being unusable, a 400, not a fault of the service (a 500 would also page
    whoever watches the 5xx rate).
    """
    try:
        return request.get_data(cache=True)
    except (ParseException, NoMoreData, OSError) as error:
        raise BadRequest(f"Request body could not be read: {error}") from None


def endpoint_label() -> str:
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED


def _begin() -> None:
    incoming = request.headers.get(HEADER, "")
    request_id = incoming if _SANE.fullmatch(incoming) else uuid.uuid4().hex
    g.request_id = request_id
    request.environ[ENVIRON_KEY] = request_id
    if request.path not in NOT_OBSERVED:
        g.started = time.perf_counter()
        HTTP_IN_FLIGHT.inc()


def _finish(response: Response) -> Response:
    response.headers[HEADER] = g.get("request_id", "")
    started = g.get("started")
    if started is not None:
        method = request.method if request.method in KNOWN_METHODS else "other"
        endpoint = endpoint_label()
        HTTP_REQUESTS.labels(method, endpoint, str(response.status_code)).inc()
        HTTP_DURATION.labels(method, endpoint).observe(time.perf_counter() - started)
    return response


def _leave(_error: BaseException | None) -> None:
    # teardown runs whatever happened, so the gauge cannot drift upwards.
    if g.pop("started", None) is not None:
        HTTP_IN_FLIGHT.dec()


def init_app(app: Flask) -> None:
    """Register first, so every later hook and log line of the request sees the id."""
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_finish)
    app.teardown_request(_leave)
