"""The request lifecycle: request id, in-flight gauge, request count and duration.

Request ids are taken from `X-Request-ID` when it is short and plain (nginx or the vendor
may set one), generated otherwise, and echoed back; a client cannot inject newlines or
megabytes into every log line of its request. Metrics label requests by route pattern,
never by raw path, so cardinality stays bounded; /metrics scrapes are not counted, so the
in-flight gauge reads 0 on an idle service.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
import zlib

from flask import Flask, current_app, g, has_request_context, request
from flask.wrappers import Response
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import NotFound

from ..errors import (
    ApiError,
    BadRequest,
    PayloadTooLarge,
    UndecodableBody,
    UnsupportedContentEncoding,
    UnsupportedTransferCoding,
)
from ..metrics import HTTP_DURATION, HTTP_IN_FLIGHT, HTTP_REQUESTS, child

HEADER = "X-Request-ID"
ENVIRON_KEY = "ingestion.request_id"  # read by the gunicorn access log
WEBHOOK_KEY = "ingestion.webhook"  # what happened to a webhook, also on the access line
UNMATCHED = "<unmatched>"
NOT_OBSERVED = frozenset({"/metrics"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
BODY_KEY = "ingestion.body"
BODY_ERROR_KEY = "ingestion.body_error"
SENT_KEY = "ingestion.body_sent"
#: Content-Encoding -> zlib's wbits for it (47: a gzip or zlib header, detected; "deflate"
#: is zlib-wrapped by RFC 9110, and 47 reads both).
_DECODABLE = {"gzip": 31, "x-gzip": 31, "deflate": 47}
_READ_SIZE = 65536
#: Members of one compressed body, at most. `cat a.gz b.gz` makes two; each member costs
#: a pass over what follows it, and a 1 MB body of 125,000 empty zlib streams cost 1.6 s
#: of a worker before the signature was even checked.
MAX_MEMBERS = 16


def raw_body() -> bytes:
    """The request body, read off the connection once (then kept for the request).

    Past MAX_BODY_BYTES the answer is 413 however the body is framed: Werkzeug checks a
    Content-Length itself, but it cut a chunked body at the limit and handed the first
    MiB on as if it were all (an HMAC over it passed). So the body is read here, up to one
    byte past the limit. Reading can also fail on the wire (a broken chunk, a client gone
    mid-body): 400, the client's request is unusable, not a fault of the service.
    """
    environ = request.environ
    if BODY_KEY in environ:
        return environ[BODY_KEY]
    if BODY_ERROR_KEY in environ:  # read once: a second call answers what the first did
        raise environ[BODY_ERROR_KEY]
    try:
        body = _read_body()
    except ApiError as error:
        environ[BODY_ERROR_KEY] = error
        raise
    environ[BODY_KEY] = body
    return body


def sent_body() -> bytes:
    """The body as it came over the wire: raw_body() before its Content-Encoding was
    decoded (the same bytes when it had none). A sender may sign either, so a signature
    that does not hold over the decoded body is checked over these (web/guard.py)."""
    body = raw_body()
    return request.environ.get(SENT_KEY, body)


def _read_body() -> bytes:
    codings = [c.strip().lower() for c in request.headers.get("Transfer-Encoding", "").split(",") if c.strip()]
    if any(coding not in ("chunked", "identity") for coding in codings):
        raise UnsupportedTransferCoding(f"Transfer-Encoding {', '.join(codings)} is not supported; send the body "
                                        "as is (chunked is fine)")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge()  # before reading a byte of it
    try:
        # The server's input stream ends where the body does (Content-Length or the last
        # chunk); Werkzeug's wrappers are skipped so a broken chunk stays a 400.
        body = _read_at_most(request.environ["wsgi.input"], limit + 1)
    except (ParseException, NoMoreData, OSError) as error:
        raise BadRequest(f"Request body could not be read: {error}") from None
    if len(body) > limit:
        raise PayloadTooLarge()
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding and coding != "identity":
        request.environ[SENT_KEY] = body
        body = _decoded(body, coding, limit)
    return body


def _decoded(body: bytes, coding: str, limit: int) -> bytes:
    """A gzip or deflate body, decoded: what the JSON is, and what the quarantine keeps.
    No vendor compresses its webhooks, but a relay or an integration's HTTP client may.
    The decoded body is held to MAX_BODY_BYTES too (a small bomb does not become a big
    body); any other coding is a 415 naming it."""
    if coding not in _DECODABLE:
        raise UnsupportedContentEncoding(f"Content-Encoding {coding} is not supported; send the body uncompressed, "
                                         "or gzip or deflate")
    parts: list[bytes] = []
    size, rest = 0, body
    for _ in range(MAX_MEMBERS):  # a gzip body may be several members, one after the other (RFC 1952)
        decoder = zlib.decompressobj(_DECODABLE[coding])
        try:
            part = decoder.decompress(rest, limit + 1 - size)  # (never 0: unbounded)
        except zlib.error:
            raise UndecodableBody(f"Request body is not valid {coding} (Content-Encoding: {coding})") from None
        parts.append(part)
        size += len(part)
        if size > limit or decoder.unconsumed_tail:
            raise PayloadTooLarge()
        if not decoder.eof:
            raise UndecodableBody(f"Request body is not valid {coding}: it ends before its end (Content-Encoding: "
                                  f"{coding})")
        rest = decoder.unused_data
        if not rest:
            return b"".join(parts)
    raise UndecodableBody(f"Request body is more than {MAX_MEMBERS} {coding} members one after the other "
                          f"(Content-Encoding: {coding}); send it as one")


def _read_at_most(stream, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining > 0:
        piece = stream.read(min(_READ_SIZE, remaining))
        if not piece:
            break
        chunks.append(piece)
        remaining -= len(piece)
    return b"".join(chunks)


def endpoint_label() -> str:
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED


def _begin() -> None:
    environ = request.environ
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    request_id = incoming if _SANE.fullmatch(incoming) else uuid.uuid4().hex
    g.request_id = request_id
    environ[ENVIRON_KEY] = request_id
    path = environ.get("PATH_INFO", "")
    if path not in NOT_OBSERVED:
        g.started = time.perf_counter()
        HTTP_IN_FLIGHT.inc()
    if "//" in path:
        # Not one of our paths: Werkzeug's router would drop leading slashes and match
        # (`//health`), and redirect inner ones with an HTML 308 (merge_slashes is off).
        raise NotFound()


def _finish(response: Response) -> Response:
    response.headers[HEADER] = g.get("request_id", "")
    started = g.get("started")
    if started is not None:
        current = request._get_current_object()  # type: ignore[attr-defined]
        method = current.method if current.method in KNOWN_METHODS else "other"
        endpoint = current.url_rule.rule if current.url_rule is not None else UNMATCHED
        child(HTTP_REQUESTS, method, endpoint, str(response.status_code)).inc()
        child(HTTP_DURATION, method, endpoint).observe(time.perf_counter() - started)
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


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True
