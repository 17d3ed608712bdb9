"""The production image, built from the Dockerfile as shipped and run with Docker against
this run's PostgreSQL and Redis (`make image-test`; see tests/containers.py for the engine
and the base image). Containers run as the deployments run them: the image's user and
command, a read-only root filesystem, no capabilities, the metrics tmpfs exactly as
docker-compose.yml mounts it, and production settings with strong secrets."""

from __future__ import annotations

import json
import secrets
import time
from types import SimpleNamespace

import pytest
import redis as redis_py
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from containers import Docker, EngineUnavailable
from devserver import free_port
from processes import ROOT
from signing import FRESHDESK_URL, fixture, freshdesk_hmac

pytestmark = pytest.mark.image

TAG = "helpdesk-ingestion:test"
METRICS_DIR = "/run/ingestion/metrics"
STREAM = "ingestion:tickets"
# What the Kubernetes manifests ask of every container: no capabilities,
# allowPrivilegeEscalation: false, and readOnlyRootFilesystem.
UNPRIVILEGED = ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
RESTRICTED = ["--read-only", *UNPRIVILEGED]


def compose_metrics_tmpfs() -> str:
    """The metrics tmpfs as docker-compose.yml gives it to the app: `path:options`."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    found = {entry for name in ("app1", "app2") for entry in services[name].get("tmpfs", [])
             if entry.split(":", 1)[0] == METRICS_DIR}
    assert len(found) == 1, f"app1 and app2 should mount one and the same tmpfs on {METRICS_DIR}: {found}"
    for name in ("app1", "app2"):  # and point gunicorn at it (the image leaves it unset)
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == METRICS_DIR, name
    return found.pop()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` with these labels in a Prometheus exposition."""
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def wait_until(check, timeout: float, interval: float = 0.3):
    """`check()`'s first truthy value, or its last value when time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="module")
def say(request):
    """Progress on the terminal as it happens (the base image and the build take minutes)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def say(message: str) -> None:
        if reporter is None or capture is None:
            print(f"image-test: {message}")
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"image-test: {message}")

    return say


@pytest.fixture(scope="module")
def engine(say):
    try:
        docker = Docker.ensure(say)
    except EngineUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    yield docker
    docker.close()


@pytest.fixture(scope="module")
def image(engine, workdir) -> str:
    try:
        engine.ensure_base_images(ROOT / "Dockerfile")
    except EngineUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    engine.build(ROOT, TAG, workdir / "docker-build.log")
    return TAG


@pytest.fixture(scope="module")
def credentials() -> dict[str, str]:
    """Strong, random, and new for each run (production refuses weak ones)."""
    return {
        "FRESHDESK_WEBHOOK_SECRET": secrets.token_hex(24),
        "FRESHDESK_WEBHOOK_AUTH": f"freshdesk:{secrets.token_urlsafe(18)}",
        "ZENDESK_SIGNING_SECRET": secrets.token_urlsafe(24),
        "ZENDESK_WEBHOOK_AUTH": f"zendesk:{secrets.token_urlsafe(18)}",
    }


@pytest.fixture(scope="module")
def service_env(postgres, redis_server, credentials) -> dict[str, str]:
    """What compose's .env and the Kubernetes ConfigMap and Secret give every container."""
    database_url = postgres.create_database("ingestion_image")
    client = redis_py.Redis.from_url(redis_server.url())
    client.flushall()
    client.close()
    return {"APP_ENV": "production", "LOG_LEVEL": "INFO", "DATABASE_URL": database_url,
            "REDIS_URL": redis_server.url(), **credentials}


@pytest.fixture(scope="module")
def schema(engine, image, service_env, workdir) -> None:
    """`python -m ingestion migrate` in the image, as compose's schema service runs it
    (test_migrations_run_with_a_read_only_root_filesystem runs it as Kubernetes does)."""
    container = engine.start(image, "python", "-m", "ingestion", "migrate", env=service_env,
                             options=UNPRIVILEGED, env_dir=workdir)
    assert container.wait(timeout=120) == 0, container.logs()


@pytest.fixture(scope="module")
def app(engine, image, schema, service_env, workdir):
    """The image's own command (gunicorn), on a port other than 8080."""
    port = free_port()
    container = engine.start(
        image, env={**service_env, "BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
                    "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR},
        options=[*RESTRICTED, "--tmpfs", compose_metrics_tmpfs(), "--tmpfs", "/tmp"], env_dir=workdir)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert container.running(), f"the app container exited:\n{container.logs()[-4000:]}"
        try:
            requests.get(url + "/health", timeout=2)
            return True
        except requests.ConnectionError:
            return False

    assert wait_until(answers, timeout=60), f"the app did not answer in 60 s:\n{container.logs()[-4000:]}"
    return SimpleNamespace(container=container, url=url, port=port)


@pytest.fixture(scope="module")
def created(app, credentials) -> requests.Response:
    """One Freshdesk webhook, signed with the HMAC key the container was given."""
    body = fixture("freshdesk", "api_ticket")
    headers = {"Content-Type": "application/json",
               **freshdesk_hmac(body, secret=credentials["FRESHDESK_WEBHOOK_SECRET"])}
    return requests.post(app.url + FRESHDESK_URL, data=body, headers=headers, timeout=10)


def test_the_app_container_serves_webhooks_as_the_image_runs_it(engine, image, app, created):
    config = engine.image(image)["Config"]
    assert config["User"] == "10001:10001"
    assert app.container.inspect()["Config"]["Cmd"] == config["Cmd"] == ["gunicorn", "-c", "gunicorn.conf.py",
                                                                          "wsgi:app"]
    ids = app.container.exec("python", "-c", "import os; print(os.getuid(), os.getgid())")
    assert ids.stdout.split() == ["10001", "10001"], ids.stderr

    health = requests.get(app.url + "/health", timeout=5)
    assert health.status_code == 200, health.text
    assert health.json()["checks"] == {"database": "ok", "redis": "ok"}

    assert created.status_code == 201, f"{created.status_code} {created.text}\n{app.container.logs()[-4000:]}"
    assert created.json()["status"] == "created" and created.json()["ticket_id"]

    # The workers wrote their metrics into the tmpfs, and /metrics sums them.
    metrics = requests.get(app.url + "/metrics", timeout=5).text
    assert metric(metrics, "ingestion_webhooks_total", vendor="freshdesk", outcome="created") == 1
    assert "Traceback" not in app.container.logs()


def test_the_image_holds_the_service_and_no_development_tooling(engine, image, app):
    """devserver/ starts databases and runs useradd as root: it must not ship."""
    listing = app.container.exec("python", "-c", "import os; print(' '.join(sorted(os.listdir('.'))))")
    assert listing.returncode == 0, listing.stderr
    assert not {"devserver", "tests", "bench"} & set(listing.stdout.split()), listing.stdout
    found = app.container.exec("python", "-c", "import devserver")
    assert found.returncode != 0 and "ModuleNotFoundError" in found.stderr
    commands = app.container.exec("python", "-m", "ingestion", "--help")
    assert commands.returncode == 0 and "run-local" not in commands.stdout and "migrate" in commands.stdout


def test_dockers_healthcheck_probes_the_address_gunicorn_binds(engine, image, app):
    healthcheck = engine.image(image)["Config"]["Healthcheck"]
    assert healthcheck["Test"][0] == "CMD" and "curl" not in json.dumps(healthcheck["Test"])
    assert healthcheck["Timeout"] <= 5 * 10**9  # nanoseconds

    # Docker's own verdict (the first probe comes one interval after the start).
    limit = (healthcheck["Interval"] + healthcheck["StartPeriod"]) / 10**9 + 30

    def verdict():
        health = app.container.health() or {}
        return health if health.get("Status") in ("healthy", "unhealthy") else None

    health = wait_until(verdict, timeout=limit, interval=1)
    assert health and health["Status"] == "healthy", json.dumps(app.container.health(), indent=1)

    # The same command, for other ways of writing the address, and for a port nobody serves.
    def probe(bind: str) -> int:
        return app.container.exec(*healthcheck["Test"][1:], env={"BIND": bind}, timeout=15).returncode

    assert probe(f"0.0.0.0:{app.port}") == 0
    assert probe(f"[::]:{app.port}") == 0
    assert probe(f"127.0.0.1:{free_port()}") != 0


def test_the_relay_container_publishes_with_an_empty_metrics_directory(engine, image, created, service_env,
                                                                       redis_server, workdir):
    assert created.status_code == 201, created.text
    ticket_id = str(created.json()["ticket_id"])
    port = free_port()
    # As the Kubernetes relay has run: metrics on RELAY_METRICS_PORT, PROMETHEUS_MULTIPROC_DIR
    # set but empty ("none"), a read-only root filesystem and no volume at all.
    relay = engine.start(image, "python", "-m", "ingestion", "relay",
                         env={**service_env, "RELAY_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": ""},
                         options=RESTRICTED, env_dir=workdir)
    assert "PROMETHEUS_MULTIPROC_DIR=" in relay.inspect()["Config"]["Env"]
    client = redis_py.Redis.from_url(redis_server.url(), decode_responses=True)

    def published():
        assert relay.running(), f"the relay exited:\n{relay.logs()[-4000:]}"
        return client.xrange(STREAM)

    entries = wait_until(published, timeout=20)
    client.close()
    assert [fields["ticket_id"] for _, fields in entries] == [ticket_id], relay.logs()[-4000:]

    def events_published() -> float:
        try:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except requests.ConnectionError:
            return 0.0
        return metric(text, "ingestion_events_published_total")

    assert wait_until(events_published, timeout=10) >= 1, relay.logs()[-4000:]
    assert relay.running() and "Traceback" not in relay.logs(), relay.logs()[-4000:]


def test_migrations_run_with_a_read_only_root_filesystem(engine, image, schema, service_env, workdir):
    """As deploy/k8s/deployment.yaml's init container runs it: read-only, no volume. The
    schema is applied a second time, which must be harmless."""
    container = engine.start(image, "python", "-m", "ingestion", "migrate", env=service_env, options=RESTRICTED,
                             env_dir=workdir)
    assert container.wait(timeout=120) == 0, container.logs()
