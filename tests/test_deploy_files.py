"""The Grafana dashboard and the alert rules only use metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from ingestion import metrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
EXPORTED = {m._name + suffix for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)
            for suffix in SUFFIXES[m._type]}
METRIC = re.compile(r"\b(ingestion_[a-z_]+)")


def referenced(text: str) -> set[str]:
    return set(METRIC.findall(text))


def test_the_dashboard_is_valid_json_and_queries_only_exported_metrics():
    dashboard = json.loads((DEPLOY / "grafana" / "ingestion-dashboard.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(expressions) >= 10
    names = set().union(*(referenced(e) for e in expressions))
    assert names and names <= EXPORTED, names - EXPORTED


def test_the_alert_rules_use_only_exported_metrics():
    names = referenced((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert {"ingestion_http_requests_total", "ingestion_circuit_breaker_state",
            "ingestion_rate_limit_exceeded_total", "ingestion_db_operations_total",
            "ingestion_outbox_backlog"} <= names
    assert names <= EXPORTED, names - EXPORTED
