"""Redeliveries of unchanged content are answered from Redis, never at the cost of truth."""

from __future__ import annotations

import pytest

from ingestion.duplicates import DuplicateCache
from ingestion.tickets import Outcome, StoredDelivery, Ticket
from signing import FRESHDESK_URL, ZENDESK_URL, fixture, signed

NO_BREAKER = {"CIRCUIT_BREAKER_THRESHOLD": "1000", "REDIS_TIMEOUT": "0.3"}


def post(client, vendor, payload):
    body, headers = signed(vendor, payload)
    return client.post(FRESHDESK_URL if vendor == "freshdesk" else ZENDESK_URL, data=body, headers=headers)


def delivery_rows(db):
    return db.execute("SELECT count(*) AS n FROM deliveries").fetchone()["n"]


@pytest.fixture
def client(make_app, db, redis_url):
    return make_app(REDIS_URL=redis_url).test_client()


def test_a_redelivery_storm_is_answered_without_touching_the_database(client, db):
    first = post(client, "zendesk", fixture("zendesk", "event_ticket_created"))
    # The first redelivery is judged by PostgreSQL, which teaches the cache...
    assert post(client, "zendesk", fixture("zendesk", "event_ticket_comment_added")).json["status"] == "already_exists"
    assert delivery_rows(db) == 2
    # ...so the rest of the storm costs no database round trip (and writes no row).
    for _ in range(5):
        again = post(client, "zendesk", fixture("zendesk", "event_ticket_comment_added"))
        assert again.json == {"status": "already_exists", "ticket_id": first.json["ticket_id"],
                              "message": "Ticket already processed (idempotent)"}
    assert delivery_rows(db) == 2


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
    assert (again.status_code, again.json["ticket_id"]) == (200, first.json["ticket_id"])
    assert changed.status_code == 503  # not a redelivery: it needs the database


def test_changed_content_misses_the_cache_and_an_old_version_is_still_stale(client, db):
    v1 = {"ticket": {"id": 80, "subject": "v1", "updated_at": "2025-01-01T00:00:00Z"}}
    v2 = {"ticket": {"id": 80, "subject": "v2", "updated_at": "2025-01-02T00:00:00Z"}}
    assert post(client, "freshdesk", v1).json["status"] == "created"
    assert post(client, "freshdesk", v2).json["status"] == "updated"
    assert post(client, "freshdesk", v1).json["status"] == "stale"
    assert post(client, "freshdesk", v2).json["status"] == "already_exists"
    assert [r["outcome"] for r in db.execute("SELECT outcome FROM deliveries ORDER BY id")] == [
        "created", "updated", "stale"]


def test_with_redis_away_redeliveries_fall_back_to_the_database(make_app, db, own_redis):
    client = make_app(REDIS_URL=own_redis.url(), **NO_BREAKER).test_client()
    post(client, "freshdesk", {"id": 81})
    post(client, "freshdesk", {"id": 81})  # cached now
    own_redis.stop()
    assert post(client, "freshdesk", {"id": 81}).json["status"] == "already_exists"
    assert delivery_rows(db) == 3  # answered by PostgreSQL this time


def test_a_change_stored_while_redis_was_away_retires_the_cache(make_app, db, own_redis):
    """v1 is cached; v2 is stored while Redis is down, so the cache still says v1. When
    Redis is back, a late v1 must be judged by PostgreSQL (stale), not by the cache."""
    client = make_app(REDIS_URL=own_redis.url(), **NO_BREAKER).test_client()
    v1 = {"ticket": {"id": 82, "subject": "v1", "updated_at": "2025-01-01T00:00:00Z"}}
    v2 = {"ticket": {"id": 82, "subject": "v2", "updated_at": "2025-01-02T00:00:00Z"}}
    post(client, "freshdesk", v1)
    assert post(client, "freshdesk", v1).json["status"] == "already_exists"  # now cached
    own_redis.stop()
    assert post(client, "freshdesk", v2).json["status"] == "updated"
    own_redis.start()
    assert post(client, "freshdesk", v1).json["status"] == "stale"
    assert post(client, "freshdesk", v2).json["status"] == "already_exists"


def test_an_older_revision_never_overwrites_a_newer_one_in_the_cache(make_app, db, redis_url):
    app = make_app(REDIS_URL=redis_url)
    cache = DuplicateCache(app.extensions["ingestion"].redis, ttl_seconds=60)
    ticket = Ticket(source="zendesk", external_id="83")
    cache.remember(ticket, StoredDelivery(Outcome.UPDATED, "t-83", 3, "hash-r3"), cleared=True)
    cache.remember(ticket, StoredDelivery(Outcome.UPDATED, "t-83", 2, "hash-r2"), cleared=True)  # finished late
    assert cache.lookup(ticket, "hash-r3").hit == StoredDelivery(Outcome.ALREADY_EXISTS, "t-83", 3)
    assert cache.lookup(ticket, "hash-r2").hit is None
