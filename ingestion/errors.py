"""One error shape for the whole service: `{"error": "..."}` with the right status.

Every status is a promise to the vendor (README: HTTP interface): 4xx means "this request will never
succeed, do not retry", 503 with Retry-After means "try again soon". Typed errors carry
their status; `init_app` installs the handlers that render them, Werkzeug's HTTP errors
(404, 405, 413, ...) and anything unexpected in the same JSON envelope.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client should see, with its HTTP status."""

    status = 400
    default_message = "Bad request"
    #: Whether an authentic delivery refused with this error is kept in quarantine
    #: (ingestion/quarantine.py): its body was read and authenticated, only not understood.
    quarantined = False
    #: A short label for metrics and the quarantine.
    reason = "bad_request"

    def __init__(self, message: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.headers = headers or {}
        #: More fields of the JSON answer (`quarantine_id`).
        self.extra: dict[str, object] = {}


class BadRequest(ApiError):
    """A request that cannot be used as sent."""

    status = 400


class UnreadableBody(BadRequest):
    """The body is not usable JSON: not UTF-8, not JSON, or not an object."""

    quarantined = True

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PayloadTooLarge(ApiError):
    """A body past MAX_BODY_BYTES, however it is framed (Content-Length or chunked)."""

    status = 413
    default_message = "Request body too large"


class UnsupportedTransferCoding(BadRequest):
    """A transfer coding other than chunked (gzip, deflate...). RFC 9112 suggests 501, but a
    5xx invites a retry and the request can never succeed as sent: 400, as nginx in front
    answers too (deploy/nginx)."""


class Unauthorized(ApiError):
    """Authentication missing or wrong. `reason` is a short label for metrics and logs."""

    status = 401

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidField(ApiError):
    """The JSON parsed but a field the ticket needs is missing or of the wrong type."""

    status = 422
    quarantined = True
    reason = "invalid_field"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"Field '{field}' {problem}")
        self.field = field


class TooDeeplyNested(ApiError):
    """JSON nested past json_body.MAX_NESTING levels: authentic perhaps, but no helpdesk
    sends that, and deeper structures crash recursive readers (the JSON libraries, the
    database's JSON functions). Refused before anything parses it, and quarantined."""

    status = 422
    quarantined = True
    reason = "too_deep"


class UnstorablePayload(ApiError):
    """PostgreSQL refused a value in the payload (for example a \\u0000 escape in JSONB)."""

    status = 422
    quarantined = True
    reason = "unstorable"


class ServiceUnavailable(ApiError):
    """A dependency we cannot work without (the database) is down: retry soon.

    Retry-After stays under 60 s because Zendesk only honours shorter ones.
    """

    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class DatabaseUnavailable(ServiceUnavailable):
    """PostgreSQL cannot be reached in time; nothing was stored, the vendor should retry."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Database unavailable, please retry later", retry_after)


def error_response(status: int, message: str, headers: dict[str, str] | None = None,
                   extra: dict[str, object] | None = None) -> Response:
    response = jsonify(error=message, **(extra or {}))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _render_api_error(error: ApiError) -> Response:
    return error_response(error.status, error.message, error.headers, error.extra)


def _render_http_exception(error: HTTPException) -> Response:
    code = error.code or 500
    message = {
        404: "Not found",
        405: "Method not allowed",
        413: "Request body too large",
    }.get(code, error.description or error.name)
    response = error_response(code, message)
    # Keep the headers Werkzeug computed for the client (Allow on 405).
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def _render_unexpected(error: Exception) -> Response:
    """A bug: log it with its traceback, answer a JSON 500 (tests treat any 500 as a failure)."""
    log.exception("unhandled error", exc_info=error)
    return error_response(500, "Internal server error")


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, _render_api_error)
    app.register_error_handler(HTTPException, _render_http_exception)
    app.register_error_handler(Exception, _render_unexpected)
