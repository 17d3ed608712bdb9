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
    assert set(services) == {"postgres", "redis", "schema", "app1", "app2", "relay", "reconciler", "nginx",
                             "prometheus"}
    for name in ("postgres", "redis", "relay", "reconciler", "nginx"):
        assert services[name]["healthcheck"]["test"], name  # app1/app2: the image's HEALTHCHECK
    assert services["schema"]["command"] == ["python", "-m", "ingestion", "migrate"]
    assert services["relay"]["command"] == ["python", "-m", "ingestion", "relay"]
    assert services["reconciler"]["command"] == ["python", "-m", "ingestion", "reconcile"]
    assert services["reconciler"]["environment"]["RECONCILE_METRICS_PORT"] in \
        services["reconciler"]["healthcheck"]["test"][-1]
    for app in ("app1", "app2"):
        assert services[app]["depends_on"]["schema"] == {"condition": "service_completed_successfully"}
        assert services[app]["environment"]["TRUSTED_PROXY_COUNT"] == "1"
        assert "command" not in services[app]  # the image's CMD: gunicorn -c gunicorn.conf.py
        [tmpfs] = services[app]["tmpfs"]
        path, _, options = tmpfs.partition(":")
        assert path == "/run/ingestion/metrics"
        assert {"uid=10001", "gid=10001"} <= set(options.split(","))  # the image's USER: a bare tmpfs is root's
    assert "PROMETHEUS_MULTIPROC_DIR" not in services["relay"]["environment"]  # unset, never an empty value
    assert services["nginx"]["depends_on"]["app1"] == {"condition": "service_healthy"}
    assert "./deploy/nginx/ingestion.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]


def test_compose_publishes_only_nginx_and_keeps_prometheus_on_loopback():
    """gunicorn is never published (a sync worker is held by a slow client as long as it
    sends; nginx reads whole requests), and Prometheus, which has no authentication,
    answers on the host's loopback only."""
    services = load_yaml(DEPLOY.parent / "docker-compose.yml")["services"]
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert published == {"nginx": ["80:80", "443:443"], "prometheus": ["127.0.0.1:9090:9090"]}


def test_compose_refuses_to_start_without_a_database_password():
    """It defaulted to `ingestion`: `${VAR:?message}` makes compose stop with the message."""
    text = (DEPLOY.parent / "docker-compose.yml").read_text()
    uses = re.findall(r"\$\{POSTGRES_PASSWORD([^}]*)\}", text)
    assert len(uses) >= 5 and all(use.startswith(":?") and len(use) > 10 for use in uses), uses


def test_the_documented_docker_run_never_publishes_gunicorn():
    """The Dockerfile's and the README's `docker run` recipes publish nginx only."""
    for path in ("Dockerfile", "README.md"):
        runs = [line for line in (DEPLOY.parent / path).read_text().splitlines()
                if "docker run" in line and "helpdesk-ingestion" in line]
        assert runs, path
        assert not [run for run in runs if re.search(r"(-p|--publish)[ =]\S*8080", run)], (path, runs)


def directives(conf: str, name: str) -> list[str]:
    """The arguments of every `name ...;` in an nginx config (comments skipped)."""
    return re.findall(rf"^[ \t]*{name}[ \t]+([^;{{}}]*);", conf, re.MULTILINE)


def server_blocks(conf: str) -> list[str]:
    """The text of each top-level-looking `server {` block (up to the next one)."""
    return re.split(r"\n\s*server \{", conf)[1:]


# Statuses nginx itself answers that must come out as {"error": ...} JSON.
NGINX_OWN_ERRORS = {"400", "404", "405", "408", "411", "413", "414", "429", "494", "500", "501", "502", "503", "504",
                    "505"}


def assert_hardened_like_the_edge(conf: str, servers: list[str]) -> None:
    """What the edge nginx and the Kubernetes sidecar both do about slow clients, floods
    from one address, and their own errors (the multi-instance tests run both files)."""
    for server in servers:
        for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout"):
            [value] = directives(server, timeout)
            assert 1 <= int(value.removesuffix("s")) <= 15, (timeout, value)  # seconds, not nginx's 60
        assert int(directives(server, "keepalive_timeout")[0].removesuffix("s")) <= 30
        assert directives(server, "reset_timedout_connection") == ["on"]
        assert directives(server, "limit_conn") == ["ingestion_per_ip 32"]  # per address, in flight
        assert directives(server, "limit_conn_status") == ["429"]
        handled = {code for page in directives(server, "error_page") for code in page.split()[:-1] if code.isdigit()}
        assert NGINX_OWN_ERRORS <= handled, NGINX_OWN_ERRORS - handled
        assert "=503 /_ingestion_error" in " ".join(directives(server, "error_page"))  # 502/504 too: retried
        # A transfer coding nginx does not decode is refused for good (4xx), never "retry" (5xx).
        assert "501 =400 /_ingestion_error" in directives(server, "error_page")
        assert directives(server, "default_type") == ["application/json"]
        assert re.search(r"location = /_ingestion_error \{\s*internal;", server)
    assert directives(conf, "limit_conn_zone") == ["$binary_remote_addr zone=ingestion_per_ip:10m"]
    # The app rate-limits per client itself (configurable, global through Redis); an nginx
    # limit_req could only refuse vendor traffic the app accepts.
    assert not directives(conf, "limit_req") and not directives(conf, "limit_req_zone")
    # The app's own 503 + Retry-After, 429 and 413 must reach the vendor unchanged.
    assert directives(conf, "proxy_intercept_errors") in ([], ["off"])
    retry_after = dict(re.findall(r"^\s*(\d{3})\s+(\d+);", conf.split("$ingestion_error_retry_after")[1].split("}")[0], re.M))
    assert set(retry_after) == {"429", "503"} and all(1 <= int(v) < 60 for v in retry_after.values())  # Zendesk: < 60
    # The body limit is MAX_BODY_BYTES' default everywhere but in the error page's location,
    # which lifts it (over HTTP/2 a 413 redirected there met the limit again: nginx's HTML).
    outside_errors = re.sub(r"location = /_ingestion_error \{[^}]*\}", "", conf)
    assert set(directives(outside_errors, "client_max_body_size")) == {"1m"}  # MAX_BODY_BYTES default
    assert set(directives(conf, "client_max_body_size")) - {"1m"} <= {"0"}
    # Header limits as gunicorn's (limit_request_line, limit_request_field_size: 8190).
    assert set(directives(conf, "large_client_header_buffers")) == {"4 8k"}
    assert set(directives(conf, "proxy_request_buffering")) == {"on"}  # gunicorn sees whole requests
    gunicorn_timeout = int(re.search(r'"GUNICORN_TIMEOUT", (\d+)', (DEPLOY.parent / "gunicorn.conf.py").read_text()).group(1))
    assert [int(v.removesuffix("s")) for v in directives(conf, "proxy_read_timeout")] == [35]
    assert 35 > gunicorn_timeout
    assert "proxy_set_header X-Forwarded-For " in conf  # (which entries: each file's own test)
    assert re.search(r"location = /metrics \{ return 404; \}", conf)


def test_nginx_limits_agree_with_the_app():
    conf = (DEPLOY / "nginx" / "ingestion.conf").read_text()
    servers = server_blocks(conf)
    assert len(servers) == 2  # :80 (redirect and /health) and :443
    assert_hardened_like_the_edge(conf, servers)
    assert all(directives(server, "server_tokens") == ["off"] for server in servers)
    # The peer appended (TRUSTED_PROXY_COUNT=1), in both servers: port 80's /health passed
    # the client's own header on, and the app logged whatever address it wrote.
    assert all("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in server for server in servers)
    # nginx's own access lines name the path, never the query string (its default logs $request).
    assert all(directives(server, "access_log") == ["/var/log/nginx/access.log ingestion"] for server in servers)
    log_format = re.search(r"^log_format ingestion (.*?);$", conf, re.M | re.S).group(1)
    assert "$uri" in log_format and "$request\"" not in log_format
    # HTTP/2 with nginx >= 1.25.1's directive (compose runs nginx:1.27-alpine), not
    # `listen ... http2` (tests/test_multi_instance.py rewrites it for an older nginx).
    assert directives(conf, "http2") == ["on"]
    assert not any("http2" in listen for listen in directives(conf, "listen"))
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
    # The app runs with TRUSTED_PROXY_COUNT=1: only the entry this nginx appends is trusted.
    assert "proxy_set_header X-Request-ID $ingestion_request_id;" in conf


def test_kubernetes_pods_probe_health_and_are_scraped():
    deployment = load_yaml(DEPLOY / "k8s" / "deployment.yaml")
    web = deployment["spec"]["template"]
    containers = {c["name"]: c for c in web["spec"]["containers"]}
    assert set(containers) == {"web", "nginx"}
    app, sidecar = containers["web"], containers["nginx"]
    sidecar_ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}

    # gunicorn on loopback only, reachable through the sidecar alone.
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["BIND"] == "127.0.0.1:8081"
    assert "ports" not in app
    service = load_yaml(DEPLOY / "k8s" / "service.yaml")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert sidecar_ports["http"] == 8080 and sidecar_ports["metrics"] == 9102  # unprivileged ports
    assert web["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert web["metadata"]["annotations"]["prometheus.io/port"] == str(sidecar_ports["metrics"])

    # Probes through the sidecar on /health/live: a database outage (the pods answer 503 +
    # Retry-After themselves) takes no pod out of the Service and restarts none.
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert app[probe]["httpGet"] == {"path": "/health/live", "port": sidecar_ports["http"]}, probe
    liveness = app["livenessProbe"]
    gunicorn_timeout = int(re.search(r'"GUNICORN_TIMEOUT", (\d+)', (DEPLOY.parent / "gunicorn.conf.py").read_text()).group(1))
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > gunicorn_timeout  # generous
    assert sidecar["livenessProbe"] == {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "failureThreshold": 3}
    # nginx stops accepting before gunicorn stops, so what nginx took still reaches gunicorn.
    sidecar_stop = int(sidecar["lifecycle"]["preStop"]["exec"]["command"][-1])
    app_stop = int(re.search(r"sleep\((\d+)\)", app["lifecycle"]["preStop"]["exec"]["command"][-1]).group(1))
    assert sidecar_stop < app_stop < web["spec"]["terminationGracePeriodSeconds"]

    # Two proxies append to X-Forwarded-For: the ingress controller and the sidecar.
    configmap = load_yaml(DEPLOY / "k8s" / "configmap.yaml")
    assert configmap["data"]["TRUSTED_PROXY_COUNT"] == "2"

    # The sidecar: non-root, read-only root filesystem, its config from the generated
    # ConfigMap, and every path it writes on an emptyDir of its own.
    assert web["spec"]["securityContext"]["runAsNonRoot"] is True
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["securityContext"]["allowPrivilegeEscalation"] is False
    assert sidecar["securityContext"]["runAsUser"] != 0
    volumes = {v["name"]: v for v in web["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    [conf_dir] = [path for path, name in mounts.items() if "configMap" in volumes[name]]
    assert sidecar["command"][:3] == ["nginx", "-c", f"{conf_dir}/nginx.conf"]
    kustomization = load_yaml(DEPLOY / "k8s" / "kustomization.yaml")
    [generated] = kustomization["configMapGenerator"]
    assert volumes[mounts[conf_dir]]["configMap"]["name"] == generated["name"]
    assert generated["files"] == ["nginx.conf=nginx-sidecar.conf"]
    conf = (DEPLOY / "k8s" / generated["files"][0].split("=")[1]).read_text()
    written = directives(conf, "pid") + [v.split()[0] for v in directives(conf, r"\w+_temp_path")]
    assert len(written) == 6
    scratch = [path for path, name in mounts.items() if "emptyDir" in volumes[name]]
    assert all(any(w.startswith(path.rstrip("/") + "/") for path in scratch) for w in written), written
    assert directives(conf, "listen") == [str(sidecar_ports["http"]), str(sidecar_ports["metrics"])]
    assert directives(conf, "server") == [env["BIND"]]  # the upstream

    assert web["spec"]["initContainers"][0]["command"] == ["python", "-m", "ingestion", "migrate"]
    relay = load_yaml(DEPLOY / "k8s" / "relay.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert relay["command"] == ["python", "-m", "ingestion", "relay"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in {e["name"] for e in relay.get("env", [])}  # unset, never empty
    reconciler = load_yaml(DEPLOY / "k8s" / "reconciler.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert reconciler["command"] == ["python", "-m", "ingestion", "reconcile"]
    assert "reconciler.yaml" in load_yaml(DEPLOY / "k8s" / "kustomization.yaml")["resources"]


def test_the_kubernetes_sidecar_is_hardened_like_the_edge_nginx():
    conf = (DEPLOY / "k8s" / "nginx-sidecar.conf").read_text()
    [public, metrics] = server_blocks(conf)
    assert_hardened_like_the_edge(conf, [public])
    assert directives(conf, "server_tokens") == ["off"]  # http level: both servers
    edge = (DEPLOY / "nginx" / "ingestion.conf").read_text()
    error_map = lambda text: re.search(r"map \$status \$ingestion_error \{(.*?)\}", text, re.S).group(1)  # noqa: E731
    assert error_map(conf).split() == error_map(edge).split()  # the same JSON messages
    # /metrics only on the port the Service does not expose.
    assert "location = /metrics { proxy_pass" in metrics and "location = /metrics { return 404; }" in public
    # The client is the entry the ingress appended; realip only keys limit_conn and the log,
    # and only on the public port: on the metrics port nobody's header is believed.
    assert directives(public, "real_ip_header") == ["X-Forwarded-For"]
    assert not directives(metrics, "real_ip_header") and not directives(metrics, "set_real_ip_from")
    assert not directives(conf, "real_ip_recursive")
    # The client realip found, then the peer: a client's own X-Forwarded-For never reaches
    # the app (passed on, a pod reached directly let the client pick its rate-limit address).
    assert 'proxy_set_header X-Forwarded-For "$remote_addr, $realip_remote_addr";' in public
    assert "$proxy_add_x_forwarded_for" not in conf
    # The scraper's own address reaches the app as the client (METRICS_ALLOWED_NETWORKS),
    # never an X-Forwarded-For it sent: the header is replaced, in both entries the app reads.
    assert directives(metrics, "proxy_set_header") == ['X-Forwarded-For "$remote_addr, $remote_addr"',
                                                       "X-Request-ID $ingestion_request_id"]
    assert "$proxy_add_x_forwarded_for" not in metrics and "$http_x_forwarded_for" not in metrics
