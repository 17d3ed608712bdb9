"""Redis down or hung never fails a webhook: the breaker opens, requests stop waiting on
Redis, limits continue in memory, and everything recovers when Redis returns."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis as redis_py
import requests

from conftest import make_env
from processes import Gunicorn
from signing import FRESHDESK_URL, signed

BREAKER = {"CIRCUIT_BREAKER_THRESHOLD": "3", "CIRCUIT_BREAKER_TIMEOUT": "2", "REDIS_TIMEOUT": "0.3"}


def deliver(client, n, ip="198.51.100.20"):
    body, headers = signed("freshdesk", {"id": f"ro-{n}", "subject": "during an outage"})
    started = time.monotonic()
    response = client.post(FRESHDESK_URL, data=body, headers=headers, environ_base={"REMOTE_ADDR": ip})
    return response, time.monotonic() - started


@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_a_redis_outage_costs_no_webhook_and_recovers_through_half_open(make_app, db, own_redis, outage):
    app = make_app(REDIS_URL=own_redis.url(), **BREAKER)
    client, guarded = app.test_client(), app.extensions["ingestion"].redis
    states = [guarded.state_name]
    assert deliver(client, 0)[0].status_code == 201

    own_redis.stop() if outage == "stopped" else own_redis.pause()
    results = []
    for n in range(1, 31):
        results.append(deliver(client, n, ip=f"198.51.100.{n}"))
        states.append(guarded.state_name)
    assert Counter(r.status_code for r, _ in results) == {201: 30}
    assert guarded.state_name == "open"
    # Once open, no Redis call is attempted, so no request waits for a Redis timeout
    # (0.3 s here; a request that touches only PostgreSQL takes milliseconds).
    opened_at = states.index("open")
    assert max(elapsed for _, elapsed in results[opened_at:]) < 0.3
    assert app.test_client().get("/health").json["checks"]["redis"] == "unavailable"

    own_redis.start() if outage == "stopped" else own_redis.resume()
    time.sleep(2.1)  # CIRCUIT_BREAKER_TIMEOUT
    states.append(guarded.state_name)
    assert deliver(client, 100)[0].status_code == 201  # the trial call succeeds...
    states.append(guarded.state_name)
    compact = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert compact == ["closed", "open", "half_open", "closed"]  # ...and closes the breaker
    assert app.test_client().get("/health").json["status"] == "healthy"


def test_while_redis_is_away_the_limit_holds_per_process_and_is_shared_again_after(make_app, db, own_redis):
    app = make_app(REDIS_URL=own_redis.url(), RATE_LIMIT_PER_MINUTE="100", **BREAKER)
    client = app.test_client()
    own_redis.stop()
    assert [deliver(client, n)[0].status_code for n in range(11)] == [201] * 10 + [429]

    own_redis.start()
    time.sleep(2.1)
    assert deliver(client, 50, ip="203.0.113.50")[0].status_code == 201
    # Back on Redis: the counter is visible to every worker and instance.
    keys = redis_py.Redis.from_url(own_redis.url()).keys("ingestion:limits*")
    assert any(b"203.0.113.50" in key for key in keys)


@pytest.mark.gunicorn
def test_redis_killed_under_gunicorn_gives_zero_5xx_and_no_lost_ticket(database_url, db, own_redis, workdir):
    env = make_env(database_url, REDIS_URL=own_redis.url(), **BREAKER)
    server = Gunicorn(env, workers=2, log_dir=workdir).start()
    statuses, accepted = [], set()
    try:
        for n in range(90):
            if n == 30:
                own_redis.stop()
            if n == 60:
                own_redis.start()
            body, headers = signed("freshdesk", {"id": f"gk-{n}"})
            response = requests.post(server.url + FRESHDESK_URL, data=body, headers=headers, timeout=10)
            statuses.append(response.status_code)
            if response.status_code < 300:
                accepted.add(response.json()["ticket_id"])
    finally:
        server.stop()
    assert Counter(statuses) == {201: 90}
    stored = {str(row["id"]) for row in db.execute("SELECT id FROM tickets")}
    assert accepted == stored


def test_redis_answering_errors_costs_no_webhook(make_app, db, own_redis):
    """Redis up but refusing writes (as with OOM under noeviction, READONLY, MISCONF):
    every script that writes gets an error reply. Webhooks must not notice."""
    app = make_app(REDIS_URL=own_redis.url(), RATE_LIMIT_PER_MINUTE="100", **BREAKER)
    client = app.test_client()
    # An ACL refusing scripts makes every script call an error reply on every Redis version
    # (min-replicas-to-write, tried first, is not enforced on scripts before Redis 7).
    admin = redis_py.Redis.from_url(own_redis.url())
    admin.acl_setuser("admin", enabled=True, nopass=True, keys=["*"], commands=["+@all"])
    admin.acl_setuser("default", commands=["-eval", "-evalsha"])
    admin = redis_py.Redis.from_url(own_redis.url(), username="admin")
    try:
        statuses = [deliver(client, n, ip=f"203.0.113.{n}")[0].status_code for n in range(8)]
        redelivered = deliver(client, 0, ip="203.0.113.99")[0]
    finally:
        admin.acl_setuser("default", commands=["+@all"])
    assert statuses == [201] * 8
    assert redelivered.json["status"] == "already_exists"
    assert app.extensions["ingestion"].redis.state_name == "open"
