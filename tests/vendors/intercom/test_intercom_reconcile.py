"""Intercom's reconciliation against a fake of its ticket search (POST /tickets/search,
a Bearer token, `starting_after` pages, no sort) served over real HTTP, and the real
PostgreSQL: the tickets the webhooks stored are the very rows the search repairs."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
from conftest import make_env
from fake_vendor_api import INTERCOM_TOKEN, FakeVendorAPI
from reconciling import Reconcilers, events
from signing import post

from ingestion.vendors.intercom import export

SINCE = datetime(2025, 1, 1, tzinfo=timezone.utc)
WORKSPACE = "abc123def"
T = int(datetime(2025, 1, 2, tzinfo=timezone.utc).timestamp())  # unix seconds, as Intercom writes times


def ticket(number: int, updated: int, title: str = "Printer on fire", state: str = "submitted") -> dict:
    """A ticket object as the search answers it (API 2.15)."""
    return {"type": "ticket", "id": str(number), "ticket_id": str(40 + number),
            "ticket_attributes": {"_default_title_": title, "_default_description_": "It burns", "Severity": "high"},
            "ticket_state": {"type": "ticket_state", "id": "8577", "category": state,
                             "internal_label": state.title(), "external_label": state.title()},
            "ticket_type": {"type": "ticket_type", "id": "100", "name": "Bug"},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "6762f3061bb69f9f2193bc5b"}]},
            "admin_assignee_id": "991268079", "team_assignee_id": "0", "created_at": T - 86400,
            "updated_at": updated, "open": True, "category": "Customer"}


def notification(item: dict, notification_id: str, topic: str = "ticket.state.updated") -> dict:
    """The webhook of the same version: the item is the ticket, timed by its update."""
    return {"type": "notification_event", "app_id": WORKSPACE, "topic": topic, "id": notification_id,
            "created_at": item["updated_at"], "first_sent_at": item["updated_at"], "delivery_attempts": 1,
            "data": {"type": "notification_event_data", "item": item}}


@pytest.fixture
def fake():
    api = FakeVendorAPI()
    yield api
    api.close()


@pytest.fixture
def environment(database_url, fake):
    return make_env(database_url, INTERCOM_API_URL=fake.url, INTERCOM_API_TOKEN=INTERCOM_TOKEN,
                    INTERCOM_API_ACCOUNT=WORKSPACE, RECONCILE_REQUESTS_PER_MINUTE="6000", RECONCILE_TIMEOUT="0.5",
                    RECONCILE_MAX_ATTEMPTS="3", CIRCUIT_BREAKER_THRESHOLD="4", RECONCILE_OVERLAP="60")


@pytest.fixture
def reconciler_for(environment):
    build = Reconcilers(environment)
    yield build
    build.close()


def rows(db) -> dict[str, dict]:
    return {r["external_id"]: r for r in db.execute("SELECT * FROM tickets WHERE vendor = 'intercom'")}


def test_delivered_older_and_missing_tickets_are_told_apart_and_repairs_land_on_the_webhooks_rows(
        client, db, fake, reconciler_for):
    delivered, behind = ticket(1, T), ticket(2, T + 7200, title="Now resolved", state="resolved")
    newer_stored, missing = ticket(3, T), ticket(4, T + 3600, title="Never webhooked")
    for item, notif in ((delivered, "notif_1"), (ticket(2, T), "notif_2"),
                        (ticket(3, T + 9000, title="Newer"), "notif_3")):
        assert post(client, "intercom", notification(item, notif)).status_code in (200, 201)
    before = rows(db)
    assert {(r["account"], key) for key, r in before.items()} == {
        (WORKSPACE, "ticket:1"), (WORKSPACE, "ticket:2"), (WORKSPACE, "ticket:3")}
    fake.intercom = [delivered, behind, newer_stored, missing]

    result = reconciler_for("intercom").run("backfill", since=SINCE)
    assert result.caught_up and result.error is None
    assert dict(result.outcomes) == {"unchanged": 1, "repaired": 2, "stale": 1}
    assert events(db) == [{"external_id": "ticket:2", "outcome": "updated"},
                          {"external_id": "ticket:4", "outcome": "created"}]
    after = rows(db)
    # The same rows the webhooks created (vendor, workspace, ticket:<id>), one new one.
    assert {key: r["id"] for key, r in after.items() if key in before} == {key: r["id"] for key, r in before.items()}
    assert (after["ticket:2"]["subject"], after["ticket:2"]["status"]) == ("Now resolved", "resolved")
    assert after["ticket:3"]["subject"] == "Newer"  # the stale snapshot changed nothing
    assert after["ticket:4"]["account"] == WORKSPACE and after["ticket:4"]["subject"] == "Never webhooked"
    assert after["ticket:4"]["assignee_id"] == "991268079" and after["ticket:4"]["type"] == "bug"

    # Every call a POST search with its Bearer token and the pinned API version.
    assert {(r["method"], r["headers"].get("Intercom-Version")) for r in fake.requests} == {("POST", export.VERSION)}
    assert set(fake.authorizations) == {f"Bearer {INTERCOM_TOKEN}"}
    assert fake.requests[0]["json"] == {"query": {"field": "updated_at", "operator": ">", "value": str(int(
        SINCE.timestamp()))}, "pagination": {"per_page": 150}}

    again = reconciler_for("intercom").run("backfill", since=SINCE)  # resumed: nothing new, nothing stored
    assert again.error is None and again.caught_up and len(events(db)) == 2
    assert fake.requests[-1]["json"]["query"]["value"] == str(T + 7200 - 60)  # the latest seen, less the overlap


def test_an_unsorted_search_is_read_to_its_last_page_before_the_next_one_starts(db, fake, reconciler_for):
    # The search takes no sort (the fake answers by id): the highest update comes first.
    fake.intercom = [ticket(n, T + (7 - n) * 60) for n in range(1, 8)]
    fake.intercom_page = 3
    result = reconciler_for("intercom").run("backfill", since=SINCE)
    assert (result.caught_up, result.pages, dict(result.outcomes)) == (True, 3, {"repaired": 7})
    bodies = [r["json"] for r in fake.requests]
    assert {b["query"]["value"] for b in bodies} == {str(int(SINCE.timestamp()))}  # one search, three pages
    assert [b["pagination"].get("starting_after") is not None for b in bodies] == [False, True, True]
    cursor = db.execute("SELECT cursor FROM reconcile_cursors WHERE vendor = 'intercom'").fetchone()["cursor"]
    assert cursor == f"{T + 6 * 60 - 60}|"  # the latest update of all three pages, less the overlap
    assert db.execute("SELECT count(*) AS n FROM tickets WHERE vendor = 'intercom'").fetchone()["n"] == 7


def test_a_429_on_the_search_waits_retry_after_and_the_same_search_is_asked_again(db, fake, reconciler_for):
    fake.intercom = [ticket(1, T)]
    fake.failures = [("status", 429, {"Retry-After": "7"}), ("status", 503)]
    reconciler = reconciler_for("intercom")
    result = reconciler.run("backfill", since=SINCE)
    assert result.caught_up and result.outcomes["repaired"] == 1
    assert [why for why, _ in reconciler.client.waited] == ["retry_after", "backoff"]
    assert reconciler.client.waited[0] == ("retry_after", 7.0) and 7.0 in reconciler_for.sleeps
    assert len({str(r["json"]) for r in fake.requests}) == 1 and len(fake.requests) == 3


def test_a_wrong_token_stops_the_run_at_once_and_never_reaches_a_log(db, fake, reconciler_for, caplog):
    fake.intercom = [ticket(1, T)]
    caplog.set_level(logging.DEBUG)
    wrong = "dG9rOmEtd3JvbmctaW50ZXJjb20tdG9rZW4tOTg3NjU0MzIx"
    result = reconciler_for("intercom", INTERCOM_API_TOKEN=wrong).run("reconcile")
    assert "401" in result.error and len(fake.requests) == 1
    assert fake.authorizations == [f"Bearer {wrong}"]
    assert wrong not in caplog.text and wrong not in result.error
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 0


def test_without_a_configured_workspace_tickets_land_in_the_one_the_webhooks_use(
        client, db, fake, reconciler_for, environment):
    environment.pop("INTERCOM_API_ACCOUNT")
    post(client, "intercom", notification(ticket(1, T), "notif_1"))
    fake.intercom = [ticket(1, T), ticket(2, T + 60)]
    result = reconciler_for("intercom").run("backfill", since=SINCE)
    assert dict(result.outcomes) == {"unchanged": 1, "repaired": 1}
    assert {(r["account"], r["external_id"]) for r in db.execute("SELECT account, external_id FROM tickets")} == {
        (WORKSPACE, "ticket:1"), (WORKSPACE, "ticket:2")}


def test_the_export_reads_pages_and_refuses_what_is_not_one():
    page = export.read({"type": "ticket.list", "tickets": [ticket(1, T)], "total_count": 1,
                        "pages": {"type": "pages", "page": 1, "per_page": 150, "total_pages": 1, "next": None}},
                       {}, None, SINCE, 0)
    assert page.done and page.cursor == f"{T - 1}|"  # at least a second back: `>` may be strict
    page = export.read({"tickets": [], "pages": {"next": {"page": 2, "starting_after": "WzE3MzQ1MzQ="}}},
                       {}, "1735689600|", SINCE, 60)
    assert (page.done, page.cursor, page.position) == (False, "1735689600|WzE3MzQ1MzQ=", None)
    assert export.resume(page.cursor).body["pagination"] == {"per_page": 150, "starting_after": "WzE3MzQ1MzQ="}
    for body in ({"type": "error.list"}, [ticket(1, T)], {"tickets": "none"}):
        with pytest.raises(ValueError):
            export.read(body, {}, None, SINCE, 60)
    with pytest.raises(ValueError):
        export.resume("not a cursor")
    assert export.snapshot(ticket(1, T))[1:] == (str(T), False)


def test_a_redirected_search_is_not_followed_with_the_token(db, fake, reconciler_for):
    other = FakeVendorAPI()
    try:
        fake.failures = [("status", 307, {"Location": other.url + "/tickets/search"})]
        result = reconciler_for("intercom").run("reconcile")
        assert "307" in result.error and other.authorizations == [] and other.requests == []
    finally:
        other.close()


def test_a_429_with_only_x_ratelimit_reset_waits_until_the_window_resets(db, fake, reconciler_for):
    """Intercom's 429 names the end of its 10-second window in X-RateLimit-Reset (Unix
    seconds) and sends no Retry-After: the wait is the window's rest, not a minute."""
    import time

    fake.intercom = [ticket(1, T)]
    fake.failures = [("status", 429, {"X-RateLimit-Reset": str(int(time.time()) + 8)})]
    reconciler = reconciler_for("intercom")
    result = reconciler.run("backfill", since=SINCE)
    assert result.caught_up and result.outcomes["repaired"] == 1
    [(why, seconds)] = reconciler.client.waited
    assert why == "retry_after" and 6.0 <= seconds <= 8.0
