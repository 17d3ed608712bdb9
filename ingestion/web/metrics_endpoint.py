"""GET /metrics, served by prometheus-flask-exporter.

The exporter serves the registry, and under gunicorn (PROMETHEUS_MULTIPROC_DIR set) it
aggregates every worker's files with prometheus_client's MultiProcessCollector. Its
default request metrics are switched off: their names and labels
(`flask_http_request_total{method,status}`, ...) differ from the ones dashboards rely on,
which web/request_context.py records instead. Before each scrape the outbox backlog and the
quarantine are measured, so they are current even when the relay is down. Access follows web/operator_access.py.

Under gunicorn the scrape is answered here, from metrics.summed_registry, which skips a
metric file a worker is still creating (the exporter's own collector answered 500 on it).
`?name[]=...` (a filter Prometheus federation sends) is answered here too: the exporter
builds a restricted registry and then registers the multiprocess collector on it, which
a restricted registry cannot take (a 500); and a restricted registry finds collectors by
the names they describe, which the multiprocess collector does not. Samples are
filtered by name instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_flask_exporter import PrometheusMetrics

from ..config import Settings
from ..metrics import OUTBOX_BACKLOG, QUARANTINE_ENTRIES, QUARANTINE_OLDEST, summed_registry
from ..storage import Storage
from .operator_access import operator_only

PATH = "/metrics"


class _Only:
    """The samples named in `names`, from every collector of `registry`."""

    def __init__(self, registry: CollectorRegistry, names: list[str]) -> None:
        self.registry, self.names = registry, set(names)

    def collect(self):
        for family in self.registry.collect():
            samples = [sample for sample in family.samples if sample.name in self.names]
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept


def _summed(names: list[str]) -> Response:
    """Every worker's samples (only those in `names`, when given), from files a worker has
    finished creating (metrics.summed_registry)."""
    registry = summed_registry()
    generate, content_type = choose_encoder(request.headers.get("Accept"))
    return Response(generate(_Only(registry, names) if names else registry), headers={"Content-Type": content_type})


def init_app(app: Flask, settings: Settings, storage: Storage) -> None:
    def measure_backlog_first(view: Callable[..., Any]) -> Callable[..., Any]:
        @operator_only(settings)
        @functools.wraps(view)
        def scrape(*args: Any, **kwargs: Any) -> Any:
            backlog = storage.outbox_backlog(timeout=0.5)
            if backlog is not None:
                OUTBOX_BACKLOG.set(backlog)
            waiting = storage.quarantine_stats(timeout=0.5)
            if waiting is not None:
                QUARANTINE_ENTRIES.set(waiting[0])
                QUARANTINE_OLDEST.set(waiting[1])
            names = request.args.getlist("name[]")
            if names or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                return _summed(names)
            return view(*args, **kwargs)

        return scrape

    PrometheusMetrics(app, path=PATH, export_defaults=False, metrics_decorator=measure_backlog_first)
