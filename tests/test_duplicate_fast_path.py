"""Redeliveries are answered from Redis by delivery identity, never a distinct event."""

from __future__ import annotations

import pytest
import redis as redis_py
from prometheus_client import REGISTRY

from ingestion.duplicates import PREFIX, request_key
from signing import ZENDESK_URL, body_of, fixture, post, signed

NO_BREAKER = {"CIRCUIT_BREAKER_THRESHOLD": "1000", "REDIS_TIMEOUT": "0.3"}


def delivery_rows(db):
    return db.execute("SELECT count(*) AS n FROM deliveries").fetchone()["n"]


@pytest.fixture
def client(make_app, db, redis_url):
    return make_app(REDIS_URL=redis_url).test_client()


def test_a_redelivery_storm_is_answered_without_touching_the_database(client, db):
    first = post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    # The first redelivery is judged by PostgreSQL, which teaches the cache...
    assert post(client, "zendesk", fixture("zendesk", "event_ticket_created")).json["status"] == "already_exists"
    assert delivery_rows(db) == 1
    # ...so the rest of the storm costs no database round trip (and writes no row).
    for _ in range(5):
        again = post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
        assert again.json == {"status": "already_exists", "ticket_id": first.json["ticket_id"],
                              "event_id": first.json["event_id"], "message": "Ticket already processed (idempotent)"}
    assert delivery_rows(db) == 1


def test_a_distinct_event_about_an_unchanged_ticket_is_never_answered_from_the_cache(client, db):
    """The comment event's ticket fields equal the creation's: the old content-keyed cache
    answered it already_exists and the comment was lost."""
    post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    post(client, "zendesk", fixture("zendesk", "event_ticket_created"))  # cached now
    comment = post(client, "zendesk", fixture("zendesk", "event_ticket_comment_added"))
    assert comment.json["status"] == "recorded"
    [row] = db.execute("SELECT comment_body FROM events WHERE event_type LIKE '%comment_added'").fetchall()
    assert row["comment_body"]


def test_a_redelivery_is_answered_even_while_the_database_is_down(make_app, db, redis_url, postgres):
    client = make_app(REDIS_URL=redis_url).test_client()
    first = post(client, "freshdesk", {"id": "fp-db-down", "subject": "cached"})
    post(client, "freshdesk", {"id": "fp-db-down", "subject": "cached"})  # judged by PostgreSQL, now cached
    postgres.stop()
    try:
        again = post(client, "freshdesk", {"id": "fp-db-down", "subject": "cached"})
        changed = post(client, "freshdesk", {"id": "fp-db-down", "subject": "changed"})
    finally:
        postgres.start()
    assert (again.status_code, again.json["event_id"]) == (200, first.json["event_id"])
    assert changed.status_code == 503  # not a redelivery: it needs the database


def test_with_redis_away_redeliveries_fall_back_to_the_database(make_app, db, own_redis):
    client = make_app(REDIS_URL=own_redis.url(), **NO_BREAKER).test_client()
    post(client, "freshdesk", {"id": 81})
    post(client, "freshdesk", {"id": 81})  # cached now
    own_redis.stop()
    assert post(client, "freshdesk", {"id": 81}).json["status"] == "already_exists"
    assert delivery_rows(db) == 2  # answered by PostgreSQL this time


def test_a_body_fingerprint_is_cached_no_longer_than_the_redelivery_window(make_app, db, redis_url):
    client = make_app(REDIS_URL=redis_url, REDELIVERY_WINDOW="120", DUPLICATE_CACHE_TTL="3600").test_client()
    post(client, "freshdesk", {"id": 84})
    post(client, "freshdesk", {"id": 84})
    event = signed("zendesk", fixture("zendesk", "event_ticket_created"))
    for _ in range(2):
        client.post(ZENDESK_URL, data=event[0], headers=event[1])
    redis = redis_py.Redis.from_url(redis_url)
    assert 100 < redis.ttl(request_key("freshdesk", None, body_of({"id": 84}))) <= 120  # PostgreSQL's window
    assert 3500 < redis.ttl(request_key("zendesk", None, event[0])) <= 3600  # an event id: the same forever


def test_a_cached_answer_names_the_ticket_and_the_first_event(client, db, redis_url):
    first = post(client, "freshdesk", {"ticket": {"id": 85, "subject": "x"}})
    post(client, "freshdesk", {"ticket": {"id": 85, "subject": "x"}})
    redis = redis_py.Redis.from_url(redis_url)
    [key] = redis.keys(PREFIX + "*")
    assert key.decode() == request_key("freshdesk", None, body_of({"ticket": {"id": 85, "subject": "x"}}))
    assert redis.get(key).decode().startswith(f"{first.json['ticket_id']}|{first.json['event_id']}|")


def test_a_distinct_delivery_sharing_a_cached_body_is_not_answered_from_it(client, db):
    """Help Scout sends one body for each event an action fires: the entry found by the
    body names its delivery (body and event name), so the other one goes to PostgreSQL and
    is stored. (A Zendesk trigger body re-sent under a new invocation id is the same
    delivery: that header is not signed; test_webhooks.py.)"""
    body = fixture("helpscout", "v2_convo_assigned")
    for _ in range(3):  # created, then redelivered: cached
        post(client, "helpscout", body, **{"X-HelpScout-Event": "convo.created"})
    assigned = post(client, "helpscout", body, **{"X-HelpScout-Event": "convo.assigned"})
    assert assigned.json["status"] == "recorded"
    assert [r["event_type"] for r in db.execute("SELECT event_type FROM events ORDER BY id")] == [
        "convo.created", "convo.assigned"]


def test_a_webhook_costs_one_redis_round_trip_the_limit_and_the_lookup_together(client, db, redis_url):
    def redis_calls() -> dict[str, float]:
        return {operation: REGISTRY.get_sample_value("ingestion_redis_operations_total",
                                                     {"operation": operation, "status": "ok"}) or 0
                for operation in ("rate_limit", "duplicate_lookup")}

    before = redis_calls()
    for _ in range(4):  # a create, a redelivery judged by PostgreSQL, then cached ones
        post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    after = redis_calls()
    assert {name: after[name] - before[name] for name in after} == {"rate_limit": 4, "duplicate_lookup": 0}
    assert delivery_rows(db) == 1  # and the last two were answered from the entry it fetched
