"""Every error answer is JSON: `{"error": "..."}`, the ApiErrors (ingestion/errors.py) with
their status and headers, Werkzeug's HTTP errors (404, 405, 413, ...), and anything
unexpected as a logged 500. `init_app` installs the three handlers."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException

from ..errors import ApiError, RateLimited

log = logging.getLogger(__name__)


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
        429: RateLimited.default_message,
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
    app.make_default_options_response = lambda: _options(app)  # type: ignore[method-assign]


def _options(app: Flask) -> Response:
    """An OPTIONS request Flask answers for a route: 204 with `Allow`, where Flask's own
    answer was a 200 with an empty HTML body (every answer is JSON or has none)."""
    response = Flask.make_default_options_response(app)
    response.status_code = 204
    response.headers.pop("Content-Type", None)
    return response
