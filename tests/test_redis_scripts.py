"""The hot path's Redis scripts run on a connection each process keeps for them
(`GuardedRedis.run_script`). These tests cover what that connection must survive: Redis
forgetting the scripts, Redis restarting under it, and a fork."""

from __future__ import annotations

import multiprocessing

import redis as redis_py
from signing import FRESHDESK_URL, signed

ECHO = "return {KEYS[1], ARGV[1]}"


def deliver(client, n, ip="198.51.100.30"):
    body, headers = signed("freshdesk", {"id": f"rs-{n}", "subject": "scripts"})
    return client.post(FRESHDESK_URL, data=body, headers=headers, environ_base={"REMOTE_ADDR": ip})


def test_scripts_flushed_from_redis_are_loaded_again_without_a_failure(make_app, db, redis_url):
    app = make_app(REDIS_URL=redis_url, RATE_LIMIT_PER_MINUTE="100")
    client, guarded = app.test_client(), app.extensions["ingestion"].redis
    assert deliver(client, 1).status_code == 201
    redis_py.Redis.from_url(redis_url).script_flush()

    response = deliver(client, 2)

    assert response.status_code == 201
    assert response.headers["X-RateLimit-Remaining"] == "8"  # counted in Redis: 2 of 10 used
    assert guarded.breaker.failure_count == 0 and guarded.state_name == "closed"


def test_a_restarted_redis_costs_one_failed_call_then_the_connection_is_made_again(make_app, db, own_redis):
    app = make_app(REDIS_URL=own_redis.url(), RATE_LIMIT_PER_MINUTE="100")
    client, guarded = app.test_client(), app.extensions["ingestion"].redis
    assert deliver(client, 1).status_code == 201
    own_redis.stop()
    own_redis.start()  # persistent: the window of the first request survives

    statuses = [deliver(client, n).status_code for n in (2, 3, 4)]

    assert statuses == [201, 201, 201]
    assert guarded.state_name == "closed"
    # The kept connection died with the old server; the requests after that are counted
    # in Redis again (at most the first one went to the in-memory fallback).
    window = redis_py.Redis.from_url(own_redis.url()).zcard("ingestion:limits:LIMITER/198.51.100.30/webhooks/10/6/second")
    assert window >= 3


def _child(guarded, script, queue) -> None:
    queue.put([guarded.run_script("echo", script, [f"child-{n}"], [n]) for n in range(50)])


def test_a_forked_process_never_shares_the_parents_script_connection(make_app, redis_url):
    """gunicorn forks workers from a master that may have used Redis: replies must never
    cross between processes sharing one socket."""
    guarded = make_app(REDIS_URL=redis_url).extensions["ingestion"].redis
    script = guarded.client.register_script(ECHO)
    assert guarded.run_script("echo", script, ["parent"], [0]) == [b"parent", b"0"]
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_child, args=(guarded, script, queue))
    child.start()
    parent = [guarded.run_script("echo", script, [f"parent-{n}"], [n]) for n in range(50)]
    from_child = queue.get(timeout=30)
    child.join(30)

    assert parent == [[f"parent-{n}".encode(), str(n).encode()] for n in range(50)]
    assert from_child == [[f"child-{n}".encode(), str(n).encode()] for n in range(50)]
    assert child.exitcode == 0


def test_a_script_is_named_as_redis_names_it_so_evalsha_finds_it_after_the_first_load(redis_url):
    """Script.sha is computed once; it must be Redis's own name for the script, or every
    call would miss (NOSCRIPT) and fall back to sending the whole script."""
    from ingestion.redis_guard import Script

    script = Script(ECHO)
    client = redis_py.Redis.from_url(redis_url)
    assert client.script_load(ECHO) == script.sha
    assert client.evalsha(script.sha, 1, "k", "v") == [b"k", b"v"]
