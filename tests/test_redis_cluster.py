"""REDIS_URL=redis+cluster://: a real 3-node Redis Cluster (redis-server --cluster-enabled,
made with redis-cli --cluster create) carries the limits, the duplicate fast path, the
breaker and one stream per vendor and account; a node killed mid-run degrades the
service as a single Redis does, and no accepted webhook is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.cluster import RedisCluster as ClusterClient

from conftest import make_env
from devserver.redis import RedisCluster
from ingestion.errors import StreamUnavailable
from ingestion.jobs.relay import Relay
from ingestion.redis_guard import STREAMS, GuardedRedis
from ingestion.storage import Storage
from ingestion.stream.redis_stream import stream_key
from ingestion.vendors import load_settings
from signing import post


@pytest.fixture(scope="module")
def cluster(workdir: Path):
    servers = RedisCluster(workdir / "redis-cluster").start()
    yield servers
    servers.stop()


@pytest.fixture
def cluster_url(cluster: RedisCluster) -> str:
    for node in cluster.nodes:
        if not node.running:
            node.start()
    cluster.wait_until("ok")
    client = ClusterClient.from_url(cluster.url().replace("+cluster", ""))
    client.flushall()
    client.close()
    return cluster.url()


def cluster_client(url: str) -> ClusterClient:
    return ClusterClient.from_url(url.replace("+cluster", ""))


def hits() -> float:
    return REGISTRY.get_sample_value("ingestion_duplicate_cache_lookups_total", {"result": "hit"}) or 0


@pytest.fixture
def relay_on(database_url):
    made = []

    def build(url: str) -> Relay:
        settings = load_settings(make_env(database_url, REDIS_URL=url))
        relay = Relay(settings, Storage(settings), GuardedRedis(settings))
        made.append(relay)
        return relay

    yield build
    for relay in made:
        relay.storage.close()


def test_the_limit_is_shared_across_instances_and_the_fast_path_answers_redeliveries(make_app, db, cluster_url):
    first = make_app(REDIS_URL=cluster_url, RATE_LIMIT_PER_MINUTE="50").test_client()  # a burst of 5 per 6 s
    second = make_app(REDIS_URL=cluster_url, RATE_LIMIT_PER_MINUTE="50").test_client()
    answers = [post(client, "freshdesk", {"id": n}).status_code for n, client in
               enumerate([first, second, first, second, first, second])]
    assert answers == [201] * 5 + [429]  # one window for both instances, on the cluster

    more = make_app(REDIS_URL=cluster_url).test_client()
    assert post(more, "freshdesk", {"id": "again", "subject": "x"}).status_code == 201
    before = hits()
    for _ in range(3):
        assert post(more, "freshdesk", {"id": "again", "subject": "x"}).json["status"] == "already_exists"
    assert hits() - before >= 2  # the first redelivery is judged by PostgreSQL, then the cache answers
    assert make_app(REDIS_URL=cluster_url).test_client().get("/health").json["checks"]["redis"] == "ok"


def test_the_stream_is_one_per_vendor_and_account_and_the_set_names_them(make_app, db, cluster_url, relay_on):
    client = make_app(REDIS_URL=cluster_url).test_client()
    for n in range(3):
        assert post(client, "freshdesk", {"id": n}).status_code == 201
    assert post(client, "zendesk", {"ticket_id": "9"}, **{"X-Zendesk-Account-Id": "4242"}).status_code == 201
    assert post(client, "zendesk", {"ticket_id": "9"}, **{"X-Zendesk-Account-Id": "4243"}).status_code == 201
    relay = relay_on(cluster_url)
    assert relay.publish_batch() == 5

    redis_client = cluster_client(cluster_url)
    names = {name.decode() for name in redis_client.smembers(STREAMS)}
    assert names == {"ingestion:tickets:{freshdesk:~}", "ingestion:tickets:{zendesk:4242}",
                     "ingestion:tickets:{zendesk:4243}"}
    assert stream_key("zendesk", "acme.eu") == "ingestion:tickets:{zendesk:acme~2Eeu}"  # as NATS subjects
    freshdesk = redis_client.xrange(stream_key("freshdesk", ""))
    assert [fields[b"external_id"] for _, fields in freshdesk] == [b"0", b"1", b"2"]
    assert redis_client.xlen(stream_key("zendesk", "4243")) == 1
    slots = {redis_client.keyslot(name) for name in names}
    assert len(slots) == 3  # each stream is its own slot, wherever its node is

    from ingestion.web.console import overview_signals

    assert overview_signals.stream_length(relay.transport.guarded).length == 5  # every stream summed


def test_a_node_killed_mid_run_degrades_the_service_and_loses_no_webhook(make_app, db, cluster, cluster_url, relay_on):
    app = make_app(REDIS_URL=cluster_url, CIRCUIT_BREAKER_THRESHOLD="3", CIRCUIT_BREAKER_TIMEOUT="1",
                   REDIS_TIMEOUT="0.25")
    client = app.test_client()
    answers: list[tuple[int, float]] = []
    sent = 0

    def send_for(seconds: float) -> None:
        nonlocal sent
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.monotonic()
            status = post(client, "freshdesk", {"id": f"k-{sent}", "subject": "s"}).status_code
            answers.append((status, time.monotonic() - started))
            sent += 1

    send_for(1.0)
    cluster.nodes[1].process.kill()  # SIGKILL: a crash
    cluster.nodes[1].process.wait()
    send_for(3.0)  # the node is gone, then the cluster says it is down
    guard = app.extensions["ingestion"].redis
    assert guard.state_name in ("open", "half_open")  # the breaker saw the outage
    cluster.nodes[1].start()
    cluster.wait_until("ok")
    time.sleep(1.2)  # CIRCUIT_BREAKER_TIMEOUT: the next call is a trial
    send_for(1.0)

    statuses = {status for status, _ in answers}
    assert statuses == {201}, statuses  # never a 5xx, never a refusal for Redis's sake
    assert max(took for _, took in answers) < 2.0
    stored = db.execute("SELECT count(*) AS n FROM tickets WHERE external_id LIKE 'k-%'").fetchone()["n"]
    assert stored == sent  # every accepted webhook is in PostgreSQL
    assert guard.state_name == "closed"

    relay = relay_on(cluster_url)
    while relay.publish_batch():
        pass
    entries = cluster_client(cluster_url).xlen(stream_key("freshdesk", ""))
    assert entries == sent and relay.backlog() == 0  # the outbox held them through the outage


def test_a_cluster_away_at_start_is_an_outage_not_a_crash(make_app, db, tmp_path):
    """The cluster client asks a node for the slot map when made: made lazily, under the
    breaker, so a cluster that is down when the service starts only degrades it."""
    from devserver import free_port

    url = f"redis+cluster://127.0.0.1:{free_port()}"
    client = make_app(REDIS_URL=url).test_client()
    assert post(client, "freshdesk", {"id": "no-cluster"}).status_code == 201
    health = client.get("/health")
    assert (health.status_code, health.json["status"], health.json["checks"]["redis"]) == (200, "degraded", "unavailable")


def test_a_hung_node_fails_a_batch_at_once_and_webhooks_stay_fast(make_app, db, cluster, cluster_url, relay_on):
    """A node SIGSTOPped (it accepts connections, never answers). redis-py's cluster
    command path retried each command, slept on CLUSTERDOWN and reloaded the slot map each
    time: a relay batch took 21.8 s while the breaker counted one failure. Every command
    now goes to its node's plain client, with REDIS_TIMEOUT and no retries."""
    app = make_app(REDIS_URL=cluster_url, CIRCUIT_BREAKER_THRESHOLD="3", CIRCUIT_BREAKER_TIMEOUT="1",
                   REDIS_TIMEOUT="0.25")
    client = app.test_client()
    for n in range(240):  # sixty accounts: their streams spread over the three nodes
        account = {"X-Zendesk-Account-Id": str(1000 + n % 60)}
        assert post(client, "zendesk", {"ticket_id": str(n), "subject": "s"}, **account).status_code == 201
    relay = relay_on(cluster_url)
    cluster.nodes[2].pause()
    try:
        started = time.monotonic()
        with pytest.raises(StreamUnavailable):
            relay.publish_batch()
        assert time.monotonic() - started < 1.0
        assert relay.backlog() == 240
        took = []
        for n in range(10):
            began = time.monotonic()
            assert post(client, "freshdesk", {"id": f"hung-{n}"}).status_code == 201
            took.append(time.monotonic() - began)
        assert max(took) < 1.5, took
    finally:
        cluster.nodes[2].resume()
    cluster.wait_until("ok")
    time.sleep(1.1)
    deadline = time.monotonic() + 20
    while relay.backlog():
        assert time.monotonic() < deadline, "the outbox did not drain"
        try:
            relay.publish_batch()
        except StreamUnavailable:  # the breaker's trial, or the cluster settling
            time.sleep(0.3)
    redis_client = cluster_client(cluster_url)
    streams = [name.decode() for name in redis_client.smembers(STREAMS)]
    published = {fields[b"event_id"].decode() for name in streams for _, fields in redis_client.xrange(name)}
    assert published == {str(row["id"]) for row in db.execute("SELECT id FROM events")}  # each at least once
