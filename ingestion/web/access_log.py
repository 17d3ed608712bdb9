"""gunicorn's logger: JSON lines, and one access line per request.

The access line carries the request's id (from the WSGI environ) and what became of a
webhook (vendor, external id, outcome, ticket id, duration): one line per request, never
the query string, headers or body.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn import glogging

from ..logs import configure, json_formatter
from .request_context import ENVIRON_KEY, WEBHOOK_KEY

# A query string inside a logged request line: `GET /x?token=... HTTP/1.1`, up to the
# next space (a quote inside it, `?a'token=...`, must not end it: the rest was logged).
_QUERY = re.compile(r"(?<=[^\s'\"?])\?\S+")


class QueryStringScrubber(logging.Filter):
    """gunicorn logs the request line of a request it refuses ("Invalid request from
    ip=...: Invalid HTTP request line: 'GET /x?token=... HTTP/1.1'") and the URI of one
    that failed: query strings may carry tokens, so they are cut from its lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = _QUERY.sub("?<query removed>", message), None
        return True


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
