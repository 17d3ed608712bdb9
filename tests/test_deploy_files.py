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


def load_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_the_compose_stack_has_every_piece_with_health_checks_and_order():
    compose = load_yaml(DEPLOY.parent / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "schema", "app1", "app2", "relay", "nginx", "prometheus"}
    for name in ("postgres", "redis", "relay", "nginx"):
        assert services[name]["healthcheck"]["test"], name  # app1/app2: the image's HEALTHCHECK
    assert services["schema"]["command"] == ["python", "-m", "ingestion", "init-db"]
    assert services["relay"]["command"] == ["python", "-m", "ingestion", "relay"]
    for app in ("app1", "app2"):
        assert services[app]["depends_on"]["schema"] == {"condition": "service_completed_successfully"}
        assert services[app]["environment"]["TRUSTED_PROXY_COUNT"] == "1"
        assert "command" not in services[app]  # the image's CMD: gunicorn -c gunicorn.conf.py
        assert services[app]["tmpfs"] == ["/run/ingestion/metrics"]
    assert services["nginx"]["depends_on"]["app1"] == {"condition": "service_healthy"}
    assert "./deploy/nginx/ingestion.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]


def test_nginx_limits_agree_with_the_app():
    conf = (DEPLOY / "nginx" / "ingestion.conf").read_text()
    assert "client_max_body_size 1m;" in conf  # MAX_BODY_BYTES default
    read_timeout = int(re.search(r"proxy_read_timeout\s+(\d+)s;", conf).group(1))
    gunicorn_timeout = int(re.search(r'"GUNICORN_TIMEOUT", (\d+)', (DEPLOY.parent / "gunicorn.conf.py").read_text()).group(1))
    assert read_timeout > gunicorn_timeout
    assert re.search(r"location = /metrics \{ return 404; \}", conf)
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in conf


def test_kubernetes_pods_probe_health_and_are_scraped():
    web = load_yaml(DEPLOY / "k8s" / "deployment.yaml")["spec"]["template"]
    container = web["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert web["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert web["spec"]["securityContext"]["runAsNonRoot"] is True
    assert web["spec"]["initContainers"][0]["command"] == ["python", "-m", "ingestion", "init-db"]
    relay = load_yaml(DEPLOY / "k8s" / "relay.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert relay["command"] == ["python", "-m", "ingestion", "relay"]
