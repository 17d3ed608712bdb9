"""HubSpot's reconciliation against a fake of its CRM ticket search (POST
/crm/v3/objects/tickets/search, a Bearer token, one filter, one sort, `after` offsets, at
most 200 a page and 10,000 a search) served over real HTTP, and the real PostgreSQL; and
the normalizer reading a CRM ticket object as a snapshot of the whole ticket."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from conftest import make_env
from fake_vendor_api import HUBSPOT_TOKEN, FakeVendorAPI
from reconciling import Reconcilers, events
from signing import post

from ingestion.errors import InvalidField
from ingestion.vendors import hubspot
from ingestion.vendors.hubspot import export

SINCE = datetime(2025, 1, 1, tzinfo=timezone.utc)
PORTAL = "62515"
T = datetime(2025, 1, 2, 10, tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def crm_ticket(number: int, modified: datetime, subject: str = "Printer on fire", stage: str = "1",
               **properties: str | None) -> dict:
    """A ticket as the CRM API answers it (every property a string or null)."""
    return {"id": str(number), "properties": {
        "subject": subject, "content": "It burns", "hs_pipeline": "0", "hs_pipeline_stage": stage,
        "hs_ticket_priority": "HIGH", "hubspot_owner_id": "84916424", "hs_ticket_category": "PRODUCT_ISSUE",
        "createdate": iso(T - timedelta(days=1)), "hs_lastmodifieddate": iso(modified),
        "hs_object_id": str(number), **properties},
        "createdAt": iso(T - timedelta(days=1)), "updatedAt": iso(modified), "archived": False}


def event(number: int, when: datetime, event_id: int, name: str | None = None, value: str | None = None) -> dict:
    """One webhook event (creation, or a property change), as HubSpot posts it."""
    body = {"eventId": event_id, "subscriptionId": 2100002, "portalId": int(PORTAL), "appId": 54321,
            "occurredAt": ms(when), "attemptNumber": 0, "objectId": number, "changeSource": "CRM_UI"}
    if name is None:
        return {**body, "subscriptionType": "ticket.creation"}
    return {**body, "subscriptionType": "ticket.propertyChange", "propertyName": name, "propertyValue": value}


@pytest.fixture
def fake():
    api = FakeVendorAPI()
    yield api
    api.close()


@pytest.fixture
def environment(database_url, fake):
    return make_env(database_url, HUBSPOT_API_URL=fake.url, HUBSPOT_API_TOKEN=HUBSPOT_TOKEN,
                    HUBSPOT_API_ACCOUNT=PORTAL, RECONCILE_REQUESTS_PER_MINUTE="6000", RECONCILE_TIMEOUT="0.5",
                    RECONCILE_MAX_ATTEMPTS="3", CIRCUIT_BREAKER_THRESHOLD="4", RECONCILE_OVERLAP="60")


@pytest.fixture
def reconciler_for(environment):
    build = Reconcilers(environment)
    yield build
    build.close()


def rows(db) -> dict[str, dict]:
    return {r["external_id"]: r for r in db.execute("SELECT * FROM tickets WHERE vendor = 'hubspot'")}


def test_a_crm_ticket_object_is_a_snapshot_of_every_property_it_knows():
    found = hubspot.normalize(crm_ticket(512, T, stage="4", my_property="blue"), {}, None)
    assert (found.external_id, found.event_type, found.account, found.vendor_event_id) == (
        "512", "ticket.snapshot", "", None)
    assert found.fields == {
        "subject": "Printer on fire", "description": "It burns", "status": "closed", "priority": "high",
        "assignee_id": "84916424", "type": "product_issue",
        "custom_fields": {"hs_pipeline": "0", "my_property": "blue"},
        "vendor_created_at": T - timedelta(days=1), "vendor_updated_at": T}
    assert found.deletion is None and found.changes is None and found.comment is None
    # The portal's own stage names (HUBSPOT_STATUS_NAMES), an owner cleared, a recycled ticket.
    tuned = hubspot.normalize(crm_ticket(512, T, stage="87654321", hubspot_owner_id=""), {}, "62515",
                              stage_names={"87654321": "escalated"})
    assert (tuned.fields["status"], tuned.fields["assignee_id"], tuned.account) == ("escalated", None, "62515")
    archived = {**crm_ticket(512, T), "archived": True}
    assert hubspot.normalize(archived, {}, None).deletion is hubspot.Deletion.SOFT
    # Without hs_lastmodifieddate (not asked for), updatedAt times it.
    bare = {"id": "7", "properties": {"subject": "x"}, "createdAt": iso(T), "updatedAt": iso(T + timedelta(hours=1)),
            "archived": False}
    assert hubspot.normalize(bare, {}, None).fields["vendor_updated_at"] == T + timedelta(hours=1)
    for broken, where in (({"properties": {}}, "id"), ({"id": "7", "properties": {"subject": {"a": 1}}},
                                                         "properties.subject"),
                          ({"id": "7", "properties": {"mine": ["a"]}}, "properties.mine")):
        with pytest.raises(InvalidField) as refused:
            hubspot.normalize(broken, {}, None)
        assert refused.value.field == where
    # A webhook event is still an event (it names its type), never an object.
    assert hubspot.normalize(event(512, T, 1), {}, None).event_type == "ticket.creation"


def test_delivered_older_and_missing_tickets_are_told_apart_and_repairs_land_on_the_webhooks_rows(
        client, db, fake, reconciler_for):
    # Ticket 1: created and retitled by webhooks; the API has that very version.
    # Ticket 2: the webhooks stopped before its last change. Ticket 3: the webhooks are
    # newer than the search (index lag). Ticket 4: no webhook at all.
    batch = [event(1, T - timedelta(hours=1), 11), event(1, T, 12, "subject", "Printer on fire"),
             event(2, T - timedelta(hours=1), 21), event(3, T + timedelta(hours=2), 31, "subject", "Newer")]
    assert post(client, "hubspot", batch).status_code in (200, 201)
    before = rows(db)
    assert {(r["account"], key) for key, r in before.items()} == {(PORTAL, "1"), (PORTAL, "2"), (PORTAL, "3")}
    fake.hubspot = [crm_ticket(1, T), crm_ticket(2, T + timedelta(hours=1), subject="Now closed", stage="4"),
                    crm_ticket(3, T), crm_ticket(4, T + timedelta(minutes=30), subject="Never webhooked")]

    result = reconciler_for("hubspot").run("backfill", since=SINCE)
    assert result.caught_up and result.error is None
    # Ticket 1's webhooks said its subject only: the same version, completed (`enriched`).
    assert dict(result.outcomes) == {"enriched": 1, "repaired": 2, "stale": 1}
    assert events(db) == [{"external_id": "1", "outcome": "updated"}, {"external_id": "4", "outcome": "created"},
                          {"external_id": "2", "outcome": "updated"}]
    after = rows(db)
    assert {key: r["id"] for key, r in after.items() if key in before} == {key: r["id"] for key, r in before.items()}
    assert (after["1"]["description"], after["1"]["priority"], after["1"]["assignee_id"]) == (
        "It burns", "high", "84916424")
    assert (after["2"]["subject"], after["2"]["status"]) == ("Now closed", "closed")
    assert after["3"]["subject"] == "Newer"  # the stale snapshot changed nothing
    assert (after["4"]["account"], after["4"]["subject"], after["4"]["type"]) == (
        PORTAL, "Never webhooked", "product_issue")

    request = fake.requests[0]
    assert (request["method"], request["json"]["filterGroups"], request["json"]["limit"]) == (
        "POST", [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                               "value": str(ms(SINCE))}]}], 200)
    assert set(request["json"]["properties"]) >= {"subject", "content", "hs_pipeline_stage", "hs_ticket_priority",
                                                  "hubspot_owner_id", "hs_ticket_category", "hs_lastmodifieddate"}
    assert set(fake.authorizations) == {f"Bearer {HUBSPOT_TOKEN}"}

    resumed = reconciler_for("hubspot").run("backfill", since=SINCE)  # from the latest seen, less the overlap
    assert fake.requests[-1]["json"]["filterGroups"][0]["filters"][0]["value"] == str(
        ms(T + timedelta(hours=1) - timedelta(seconds=60)))
    assert dict(resumed.outcomes) == {"unchanged": 1}
    again = reconciler_for("hubspot").run("backfill", since=SINCE, restart=True)  # all read again: all known
    assert dict(again.outcomes) == {"unchanged": 3, "stale": 1} and len(events(db)) == 3


def test_each_page_is_a_new_search_from_the_last_modification_so_a_ticket_changed_meanwhile_skips_nothing(
        db, fake, reconciler_for):
    fake.hubspot = [crm_ticket(n, T + timedelta(seconds=n)) for n in range(1, 451)]
    searched = []

    def touch_the_first_ticket():  # after the first page: ticket 1 changes, moving to the end
        searched.append(1)
        if len(searched) == 1:
            fake.hubspot[0] = crm_ticket(1, T + timedelta(hours=1), subject="Changed meanwhile")

    fake.after_page = touch_the_first_ticket
    result = reconciler_for("hubspot").run("backfill", since=SINCE)
    # 200, then 200 from ticket 200's time (200 read again), then 51 + ticket 1 again.
    assert (result.caught_up, result.pages) == (True, 3)
    assert dict(result.outcomes) == {"repaired": 451, "unchanged": 2}
    bodies = [r["json"] for r in fake.requests]
    assert [b["filterGroups"][0]["filters"][0]["value"] for b in bodies] == [
        str(ms(SINCE)), str(ms(T + timedelta(seconds=200))), str(ms(T + timedelta(seconds=399)))]
    assert all("after" not in b for b in bodies)  # (an offset would have skipped ticket 201)
    stored = rows(db)
    assert len(stored) == 450 and stored["1"]["subject"] == "Changed meanwhile"


def test_a_page_all_within_one_millisecond_goes_on_with_after(db, fake, reconciler_for):
    fake.hubspot = [crm_ticket(n, T) for n in range(1, 6)]
    fake.hubspot_page = 2
    result = reconciler_for("hubspot").run("backfill", since=SINCE)
    assert result.caught_up and result.outcomes["repaired"] == 5
    asked = [(b["filterGroups"][0]["filters"][0]["value"], b.get("after")) for b in (r["json"] for r in fake.requests)]
    assert asked == [(str(ms(SINCE)), None), (str(ms(T)), None), (str(ms(T)), "2"), (str(ms(T)), "4")]


def test_past_10000_results_in_one_millisecond_the_export_steps_past_it():
    same = [crm_ticket(n, T) for n in range(3)]
    page = export.read({"results": same, "paging": {"next": {"after": "10000"}}}, {}, f"{ms(T)}|9800", SINCE, 60)
    assert (page.done, page.cursor) == (False, f"{ms(T) + 1}|")
    page = export.read({"results": same, "paging": {"next": {"after": "400"}}}, {}, f"{ms(T)}|200", SINCE, 60)
    assert page.cursor == f"{ms(T)}|400"
    page = export.read({"total": 0, "results": []}, {}, None, SINCE, 60)
    assert page.done and page.cursor == f"{ms(SINCE - timedelta(seconds=60))}|"
    for body in ({"status": "error"}, [crm_ticket(1, T)], {"results": {}}):
        with pytest.raises(ValueError):
            export.read(body, {}, None, SINCE, 60)
    assert export.snapshot(crm_ticket(1, T))[1:] == (iso(T), False)


def test_a_429_waits_retry_after_and_a_wrong_token_stops_without_reaching_a_log(db, fake, reconciler_for, caplog):
    fake.hubspot = [crm_ticket(1, T)]
    fake.failures = [("status", 429, {"Retry-After": "3"})]
    reconciler = reconciler_for("hubspot")
    result = reconciler.run("backfill", since=SINCE)
    assert result.caught_up and reconciler.client.waited == [("retry_after", 3.0)]
    assert fake.requests[0]["json"] == fake.requests[1]["json"]  # the same search, asked again

    caplog.set_level(logging.DEBUG)
    fake.requests.clear()
    wrong = "pat-na1-00000000-dead-4bad-beef-000000000000"
    refused = reconciler_for("hubspot", HUBSPOT_API_TOKEN=wrong).run("reconcile")
    assert "401" in refused.error and len(fake.requests) == 1
    assert wrong not in caplog.text and wrong not in refused.error


def test_without_a_configured_portal_tickets_land_in_the_one_the_webhooks_use(
        client, db, fake, reconciler_for, environment):
    environment.pop("HUBSPOT_API_ACCOUNT")
    post(client, "hubspot", [event(1, T, 11)])
    fake.hubspot = [crm_ticket(1, T), crm_ticket(2, T + timedelta(minutes=1))]
    result = reconciler_for("hubspot", HUBSPOT_STATUS_NAMES="1=brand new").run("backfill", since=SINCE)
    assert dict(result.outcomes) == {"enriched": 1, "repaired": 1}
    assert {(r["account"], r["external_id"], r["status"]) for r in db.execute(
        "SELECT account, external_id, status FROM tickets")} == {(PORTAL, "1", "brand new"), (PORTAL, "2", "brand new")}
