"""/metrics under a real gunicorn: exact names, types and labels, counts that add up over
several workers, a killed worker, and the breaker's state across a Redis outage."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from conftest import make_env
from processes import Gunicorn
from signing import FRESHDESK_URL, ZENDESK_URL, basic, fixture, post_http, signed

pytestmark = pytest.mark.gunicorn

CONTRACT_METRICS = {  # README: Metrics; name -> (type, labels)
    "ingestion_http_requests_total": ("counter", {"method", "endpoint", "status"}),
    "ingestion_http_request_duration_seconds": ("histogram", {"method", "endpoint"}),
    "ingestion_http_requests_in_flight": ("gauge", set()),
    "ingestion_db_operations_total": ("counter", {"operation", "status"}),
    "ingestion_db_operation_duration_seconds": ("histogram", {"operation"}),
    "ingestion_redis_operations_total": ("counter", {"operation", "status"}),
    "ingestion_redis_operation_duration_seconds": ("histogram", {"operation"}),
    "ingestion_circuit_breaker_state": ("gauge", {"name"}),
    "ingestion_rate_limit_exceeded_total": ("counter", {"endpoint"}),
}


def scrape(server) -> dict:
    """name -> family, parsed by prometheus_client's own text parser."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families, metric, suffix="", **labels) -> float:
    family = families[metric.removesuffix("_total")] if metric.endswith("_total") else families[metric]
    total = 0.0
    for sample in family.samples:
        if sample.name == metric + suffix and all(sample.labels.get(k) == v for k, v in labels.items()):
            total += sample.value
    return total


def post(server, vendor, payload, **extra):
    return post_http(server.url, vendor, payload, **extra)


@pytest.fixture
def start_server(database_url, redis_url, db, workdir):
    started = []

    def start(**env):
        gunicorn = Gunicorn(make_env(database_url, REDIS_URL=redis_url, **env), workers=3, log_dir=workdir).start()
        started.append(gunicorn)
        deadline = time.monotonic() + 30
        while len(gunicorn.worker_pids()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        return gunicorn

    yield start
    for gunicorn in started:
        gunicorn.stop()


@pytest.fixture
def server(start_server):
    return start_server()


def workload(server):
    """A scripted mix; returns how many requests of each (endpoint, status) were sent."""
    sent = Counter()
    barrier = threading.Barrier(6)

    def create(n):
        """Six at once, held so that several workers must take part: each connection sends
        all of its body but the last byte, and the workers that accepted one wait on it
        (a sync worker serves one connection at a time). Released together, after the
        idle workers have had time to accept; merely starting six requests together let
        one fast worker serve them all on a busy machine."""
        body, headers = signed("freshdesk", {"id": f"m-{n}"}, server.url + FRESHDESK_URL)
        conn = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=10)
        try:
            conn.putrequest("POST", FRESHDESK_URL)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                conn.putheader(name, value)
            conn.endheaders(body[:-1])
            barrier.wait()
            time.sleep(0.5)
            conn.send(body[-1:])
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    with ThreadPoolExecutor(6) as pool:
        for status in pool.map(create, range(6)):
            sent[(FRESHDESK_URL, status)] += 1
    for _ in range(2):  # a redelivery judged by PostgreSQL, then one answered by the fast path
        sent[(FRESHDESK_URL, post(server, "freshdesk", {"id": "m-0"}).status_code)] += 1
    sent[(ZENDESK_URL, post(server, "zendesk", fixture("zendesk", "event_user_created")).status_code)] += 1
    response = requests.post(server.url + ZENDESK_URL, data=b"{}", headers=basic("zendesk", "wrong"), timeout=10)
    sent[(ZENDESK_URL, response.status_code)] += 1                                               # 401
    sent[(FRESHDESK_URL, post(server, "freshdesk", b"[]").status_code)] += 1                     # 400
    sent[("<unmatched>", requests.get(server.url + "/nope", timeout=10).status_code)] += 1       # 404
    return sent


def test_every_specified_metric_is_exported_with_exactly_its_type_and_labels(server):
    workload(server)
    families = scrape(server)
    for name, (kind, labels) in CONTRACT_METRICS.items():
        family = families[name.removesuffix("_total")] if kind == "counter" else families[name]
        assert family.type == kind, name
        samples = [s for s in family.samples if s.name.startswith(name.removesuffix("_total"))]
        assert samples, f"{name} has no samples"
        for sample in samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)


def test_counts_from_several_workers_add_up_in_one_scrape(server):
    sent = workload(server)
    families = scrape(server)
    for (endpoint, status), count in sent.items():
        assert value(families, "ingestion_http_requests_total", endpoint=endpoint, status=str(status)) == count
    assert value(families, "ingestion_http_request_duration_seconds", "_count", endpoint=FRESHDESK_URL) == sum(
        c for (e, _), c in sent.items() if e == FRESHDESK_URL)
    assert value(families, "ingestion_http_requests_in_flight") == 0
    assert value(families, "ingestion_webhooks_total", vendor="freshdesk", outcome="created") == 6
    assert value(families, "ingestion_webhooks_total", vendor="freshdesk", outcome="already_exists") == 2
    assert value(families, "ingestion_webhooks_total", vendor="freshdesk", outcome="rejected") == 1
    assert value(families, "ingestion_webhooks_total", vendor="zendesk", outcome="ignored") == 1
    assert value(families, "ingestion_auth_failures_total", vendor="zendesk", reason="bad_credentials") == 1
    assert value(families, "ingestion_duplicate_cache_lookups_total", result="hit") == 1
    # The fast-path hit cost no database operation: 6 creates + 1 redelivery + 1 ignored event.
    assert value(families, "ingestion_db_operations_total", operation="ingest_event", status="ok") == 7
    assert value(families, "ingestion_db_operations_total", operation="record_ignored", status="ok") == 1
    assert value(families, "ingestion_outbox_backlog") == 6
    pids = {r["pid"] for r in server.records() if r.get("logger") == "gunicorn.access"}
    assert len(pids) >= 2, "the workload should have been served by several workers"


def test_each_429_is_counted_once_for_its_route(start_server):
    server = start_server(RATE_LIMIT_PER_MINUTE="100")
    statuses = [post(server, "zendesk", {"id": f"rl-{n}"}).status_code for n in range(13)]
    assert statuses.count(429) == 3
    families = scrape(server)
    assert value(families, "ingestion_rate_limit_exceeded_total", endpoint=ZENDESK_URL) == 3


def test_a_killed_worker_is_replaced_and_the_totals_survive_it(server):
    for n in range(9):
        assert post(server, "freshdesk", {"id": f"k-{n}"}).status_code == 201
    before = server.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (before[0] in server.worker_pids() or len(server.worker_pids()) < 3):
        time.sleep(0.1)
    assert before[0] not in server.worker_pids() and len(server.worker_pids()) == 3
    for n in range(9, 12):
        assert post(server, "freshdesk", {"id": f"k-{n}"}).status_code == 201
    families = scrape(server)
    assert value(families, "ingestion_http_requests_total", endpoint=FRESHDESK_URL, status="201") == 12
    assert value(families, "ingestion_http_requests_in_flight") == 0


def test_the_breaker_gauge_goes_closed_open_half_open_closed_across_a_redis_outage(database_url, db, own_redis, workdir):
    env = make_env(database_url, REDIS_URL=own_redis.url(), CIRCUIT_BREAKER_THRESHOLD="2",
                   CIRCUIT_BREAKER_TIMEOUT="3", REDIS_TIMEOUT="0.2")
    server = Gunicorn(env, workers=2, log_dir=workdir).start()
    seen = []

    def observe():
        state = value(scrape(server), "ingestion_circuit_breaker_state", name="redis")
        if not seen or seen[-1] != state:
            seen.append(state)
        return state

    def until(state, send=False, timeout=20.0):
        deadline = time.monotonic() + timeout
        n = 0
        while observe() != state:
            assert time.monotonic() < deadline, f"breaker never reached {state}: {seen}"
            if send:
                n += 1
                assert post(server, "freshdesk", {"id": f"b-{time.monotonic()}-{n}"}).status_code == 201
            time.sleep(0.1)

    try:
        post(server, "freshdesk", {"id": "b-first"})
        until(0)
        own_redis.stop()
        until(1, send=True)
        until(2)                      # by the passage of time alone: nothing is sent
        own_redis.start()
        # Nothing sent either: each worker's reporter makes the trial call itself (an idle
        # worker stayed half-open, and the breaker alert fired in a quiet hour).
        until(0)
    finally:
        server.stop()
    # Half-open while Redis was still away, a trial failed and opened it again: 1, 2 repeat.
    assert seen[:3] == [0, 1, 2] and seen[-1] == 0 and set(seen) == {0, 1, 2}


def test_in_process_metrics_count_database_work_only_when_the_fast_path_misses(make_app, db, redis_url):
    client = make_app(REDIS_URL=redis_url).test_client()

    def ingests():
        return REGISTRY.get_sample_value("ingestion_db_operations_total",
                                         {"operation": "ingest_event", "status": "ok"}) or 0

    body, headers = signed("freshdesk", {"id": "fp-metric"})
    start = ingests()
    for _ in range(5):  # a create, a redelivery PostgreSQL judges, then three from the cache
        client.post(FRESHDESK_URL, data=body, headers=headers)
    assert ingests() - start == 2


def test_a_scrape_filtered_by_name_works_under_gunicorn(server):
    """`?name[]=` made prometheus-flask-exporter register the multiprocess collector on a
    restricted registry: a 500, unauthenticated, from anyone who could reach /metrics."""
    post(server, "freshdesk", {"id": "filtered"})
    response = requests.get(server.url + "/metrics", params={"name[]": ["ingestion_http_requests_total"]}, timeout=10)
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names == {"ingestion_http_requests"}
    nothing = requests.get(server.url + "/metrics?name[]=x&name[]=", timeout=10)
    assert (nothing.status_code, nothing.text.strip()) == (200, "")


def test_a_scrape_while_a_worker_is_creating_its_metric_file_is_answered(start_server, workdir):
    """A worker creates its file empty and sizes it a moment later; prometheus_client's
    collector failed on the empty file (struct.error), so /metrics answered 500 (seen in a
    drill right after start). A worker killed in that moment leaves the file empty for good."""
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    server = start_server(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    for n in range(3):
        assert post(server, "freshdesk", {"id": f"empty-file-{n}"}).status_code == 201
    for name in ("counter_999999.db", "histogram_999999.db", "gauge_livesum_999999.db"):
        (metrics_dir / name).write_bytes(b"")
    for params in ({}, {"name[]": ["ingestion_http_requests_total"]}):
        response = requests.get(server.url + "/metrics", params=params, timeout=10)
        assert response.status_code == 200, response.text[:200]
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        assert value(families, "ingestion_http_requests_total", endpoint=FRESHDESK_URL, status="201") == 3


def test_under_gunicorn_an_unreadable_authentic_body_is_quarantined_and_counted(server, db):
    answers = [post(server, "zendesk", {"ticket": {"subject": f"no id {n}"}}) for n in range(4)]
    assert {a.status_code for a in answers} == {422}
    ids = [a.json()["quarantine_id"] for a in answers]
    assert [r["id"] for r in db.execute("SELECT id FROM quarantine ORDER BY id")] == ids
    families = scrape(server)
    assert value(families, "ingestion_quarantined_total", vendor="zendesk", reason="invalid_field") == 4
    assert value(families, "ingestion_quarantine_entries") == 4
    assert 0 <= value(families, "ingestion_quarantine_oldest_age_seconds") < 60


def test_a_daemon_started_again_drops_the_live_gauges_its_killed_predecessor_left(tmp_path):
    """A review's case: a relay SIGKILLed with its breaker open left `gauge_livemax_<pid>.db`
    at 1, and /metrics said the breaker was open until gunicorn restarted."""
    import subprocess
    import sys
    from ingestion.jobs.daemon import _forget_a_dead_predecessor  # what serve_metrics does first

    leaves_a_gauge = (
        "import os, signal\n"
        "from prometheus_client import Gauge\n"
        "Gauge('breaker', 'state', multiprocess_mode='livemax').set(1)\n"
        "open(os.path.join(os.environ['PROMETHEUS_MULTIPROC_DIR'], 'relay.pid'), 'w').write(str(os.getpid()))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    killed = subprocess.run([sys.executable, "-c", leaves_a_gauge],
                            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert [p.name for p in tmp_path.glob("gauge_livemax_*.db")] == [f"gauge_livemax_{killed_pid(tmp_path)}.db"]
    _forget_a_dead_predecessor(str(tmp_path), "relay")
    assert list(tmp_path.glob("gauge_livemax_*.db")) == []
    assert (tmp_path / "relay.pid").read_text() == str(os.getpid())


def killed_pid(directory) -> int:
    return int((directory / "relay.pid").read_text())
