"""GET /metrics, served by prometheus-flask-exporter.

The exporter serves the registry, and under gunicorn (PROMETHEUS_MULTIPROC_DIR set) it
aggregates every worker's files with prometheus_client's MultiProcessCollector. Its
default request metrics are switched off: their names and labels
(`flask_http_request_total{method,status}`, ...) differ from the ones dashboards rely on
(SPEC 2.3), which web/requests.py records instead. Before each scrape the outbox backlog
is measured, so it is current even when the relay is down.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask
from prometheus_flask_exporter import PrometheusMetrics

from ..metrics import OUTBOX_BACKLOG
from ..storage import Storage

PATH = "/metrics"


def init_app(app: Flask, storage: Storage) -> None:
    def measure_backlog_first(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def scrape(*args: Any, **kwargs: Any) -> Any:
            backlog = storage.outbox_backlog(timeout=0.5)
            if backlog is not None:
                OUTBOX_BACKLOG.set(backlog)
            return view(*args, **kwargs)

        return scrape

    PrometheusMetrics(app, path=PATH, export_defaults=False, metrics_decorator=measure_backlog_first)
