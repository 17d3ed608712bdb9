"""Logs: one JSON object per line (python-json-logger), for every process.

Every line written while a request is handled carries its `request_id` (the web layer's
filter, web/request_context.py; gunicorn's access line too: web/access_log.py). Nothing here logs headers, bodies or query strings, so
credentials, signatures and secrets cannot leak into logs.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

from pythonjsonlogger.json import JsonFormatter


FORMAT = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}
_MARK = "_ingestion_json"


class Rfc3339JsonFormatter(JsonFormatter):
    """JSON lines whose `time` is RFC 3339 in UTC with milliseconds
    (`2026-11-28T23:07:30.123+00:00`), so lines from hosts in other zones sort together."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")


def json_formatter() -> logging.Formatter:
    """ASCII only: a client's path or header may hold characters that some tools take for
    line breaks (U+2028, U+0085); escaped, every record stays exactly one line."""
    return Rfc3339JsonFormatter(FORMAT, rename_fields=RENAMED, json_ensure_ascii=True)


def configure(level: str = "INFO", *filters: logging.Filter) -> None:
    """Send the root logger to stderr as JSON, through `filters` (the web layer's adds each
    request's id: web/request_context.py). Idempotent: safe in every app factory call, a
    filter of a kind the handler has already is not added twice."""
    root = logging.getLogger()
    root.setLevel(level)
    handler = next((h for h in root.handlers if getattr(h, _MARK, False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(json_formatter())
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    for added in filters:
        if not any(type(present) is type(added) for present in handler.filters):
            handler.addFilter(added)
