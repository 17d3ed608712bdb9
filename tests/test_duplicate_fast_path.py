"""Redeliveries are answered from Redis by delivery identity, never a distinct event."""

from __future__ import annotations

import pytest
import redis as redis_py

from ingestion.duplicates import PREFIX
from signing import ZENDESK_URL, fixture, post, signed

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
    ttls = {key.decode().split(":")[-2]: redis_py.Redis.from_url(redis_url).ttl(key)
            for key in redis_py.Redis.from_url(redis_url).keys(PREFIX + "*")}
    assert 100 < ttls["body"] <= 120  # what PostgreSQL still calls a redelivery
    assert 3500 < ttls["id"] <= 3600  # an event id is the same delivery forever


def test_a_cached_answer_names_the_ticket_and_the_first_event(client, db, redis_url):
    first = post(client, "freshdesk", {"ticket": {"id": 85, "subject": "x"}})
    post(client, "freshdesk", {"ticket": {"id": 85, "subject": "x"}})
    redis = redis_py.Redis.from_url(redis_url)
    [key] = redis.keys(PREFIX + "*")
    assert key.decode().startswith(f"{PREFIX}freshdesk::85:body:")
    assert redis.get(key).decode() == f"{first.json['ticket_id']}|{first.json['event_id']}"
