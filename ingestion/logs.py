"""Logs: one JSON object per line (python-json-logger), for the app and for gunicorn.

Every line written while a request is handled carries its `request_id`, including
gunicorn's access line (read from the WSGI environ), which also carries what became of a
webhook (vendor, external id, outcome, ticket id, duration): one line per request. Nothing here logs headers, bodies
or query strings, so credentials, signatures and secrets cannot leak into logs.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any

from flask import g, has_request_context
from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

from .web.request_context import ENVIRON_KEY, WEBHOOK_KEY

FORMAT = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}
_MARK = "_ingestion_json"


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


class Rfc3339JsonFormatter(JsonFormatter):
    """JSON lines whose `time` is RFC 3339 in UTC with milliseconds
    (`2026-11-28T23:07:30.123+00:00`), so lines from hosts in other zones sort together."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")


# A query string inside a logged request line: `GET /x?token=... HTTP/1.1`.
_QUERY = re.compile(r"(?<=[^\s'\"?])\?[^\s'\"]+")


class QueryStringScrubber(logging.Filter):
    """gunicorn logs the request line of a request it refuses ("Invalid request from
    ip=...: Invalid HTTP request line: 'GET /x?token=... HTTP/1.1'") and the URI of one
    that failed: query strings may carry tokens, so they are cut from its lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = _QUERY.sub("?<query removed>", message), None
        return True


def json_formatter() -> logging.Formatter:
    """ASCII only: a client's path or header may hold characters that some tools take for
    line breaks (U+2028, U+0085); escaped, every record stays exactly one line."""
    return Rfc3339JsonFormatter(FORMAT, rename_fields=RENAMED, json_ensure_ascii=True)


def configure(level: str = "INFO") -> None:
    """Send the root logger to stderr as JSON. Idempotent: safe in every app factory call."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, _MARK, False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    setattr(handler, _MARK, True)
    root.addHandler(handler)


class GunicornLogger(glogging.Logger):
    """gunicorn's logger with JSON output and a structured access line."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(json_formatter())
        self.error_log.addFilter(QueryStringScrubber())
        configure(logging.getLevelName(self.loglevel))

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info("request", extra={
                **environ.get(WEBHOOK_KEY, {}),
                "request_id": environ.get(ENVIRON_KEY),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),  # never the query string: it may carry tokens
                "status": status_code(resp),
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "user_agent": environ.get("HTTP_USER_AGENT"),
            })
        except Exception:
            # An access line must never take the worker down (gunicorn calls this from
            # its error handler too, where an exception kills the worker process).
            self.error_log.exception("could not write the access line")


def status_code(resp: Any) -> int | None:
    """The response's status. gunicorn's answers to malformed requests (a bad
    Content-Length, a garbage request line) set only the `status` string, never
    `status_code`: reading that attribute blindly killed the worker on such requests."""
    code = getattr(resp, "status_code", None)
    if code is None:
        try:
            code = int(str(resp.status).split(None, 1)[0])
        except (AttributeError, ValueError, IndexError):
            return None
    return code
