"""Batched deliveries (ingestion/batches.py), below the vendor that sends them: one request's
events are read one by one, stored all or none in one transaction, answered in their
places; a redelivered batch is `already_exists` event by event; two batches that take the
same tickets in opposite orders both land (PostgreSQL's deadlock victim is run again).

The end-to-end tests through HubSpot's route live with that vendor (tests/vendors/hubspot/)."""

from __future__ import annotations

import threading

import pytest

from ingestion import batches
from ingestion.errors import InvalidField, UnstorablePayload
from ingestion.tickets import Outcome, TicketEvent


def event(external_id: str, n: int, subject: str = "Printer on fire") -> TicketEvent:
    return TicketEvent(vendor="hubspot", account="62515", external_id=external_id, fields={"subject": subject},
                       event_type="ticket.propertyChange", vendor_event_id=f"{external_id}-{n}")


def items(*events: TicketEvent | None) -> list[batches.BatchItem]:
    return [batches.BatchItem(e, '{"n": %d}' % place) for place, e in enumerate(events)]


def outcomes(answers) -> list[str]:
    return [stored.outcome.value for stored in answers]


def test_a_batch_is_stored_in_order_and_answered_in_place_then_a_redelivery_is_already_exists(app, db):
    ingestor = app.extensions["ingestion"].ingestor
    batch = items(event("1", 1), None, event("2", 1), event("1", 2, "Printer still on fire"))
    first = ingestor.store_batch("hubspot", "62515", batch, "req-1")
    assert outcomes(first) == ["created", "ignored", "created", "updated"]
    assert first[0].ticket_id == first[3].ticket_id != first[2].ticket_id
    assert db.execute("SELECT subject FROM tickets WHERE external_id = '1'").fetchone()["subject"] == \
        "Printer still on fire"
    stored = db.execute("SELECT vendor_event_id, payload::text AS payload FROM events ORDER BY id").fetchall()
    assert [(row["vendor_event_id"], row["payload"]) for row in stored] == [
        ("1-1", '{"n": 0}'), ("2-1", '{"n": 2}'), ("1-2", '{"n": 3}')]  # each event its own payload

    again = ingestor.store_batch("hubspot", "62515", batch, "req-2")
    assert outcomes(again) == ["already_exists", "ignored", "already_exists", "already_exists"]
    assert [a.event_id for a in again] == [f.event_id for f in first]
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 3
    assert db.execute("SELECT count(*) AS n FROM deliveries WHERE outcome = 'ignored'").fetchone()["n"] == 2


def test_a_batch_is_stored_oldest_first_and_answered_in_the_bodys_order(app, db):
    """HubSpot lists a batch's events in no promised order, one property each: stored in
    the body's order, the older priority change after the newer subject change would be
    stale and the priority lost."""
    from datetime import datetime, timezone

    def at(minute: int, **fields) -> TicketEvent:
        moment = datetime(2026, 3, 1, 10, minute, tzinfo=timezone.utc)
        return TicketEvent(vendor="hubspot", account="62515", external_id="9", event_type="ticket.propertyChange",
                           fields={**fields, "vendor_updated_at": moment}, vendor_event_id=f"9-{minute}")

    ingestor = app.extensions["ingestion"].ingestor
    answers = ingestor.store_batch("hubspot", "62515", items(
        at(3, subject="New subject"), None, at(1, priority="high"), at(2, status="closed")), "req-1")
    assert outcomes(answers) == ["updated", "ignored", "created", "updated"]
    ticket = db.execute("SELECT subject, priority, status, vendor_updated_at FROM tickets").fetchone()
    assert (ticket["subject"], ticket["priority"], ticket["status"]) == ("New subject", "high", "closed")
    assert ticket["vendor_updated_at"].minute == 3
    stored = db.execute("SELECT vendor_event_id, outcome FROM events ORDER BY id").fetchall()
    assert [(r["vendor_event_id"], r["outcome"]) for r in stored] == [
        ("9-1", "created"), ("9-2", "updated"), ("9-3", "updated")]


def test_an_event_the_database_refuses_leaves_nothing_of_its_batch(app, db):
    ingestor = app.extensions["ingestion"].ingestor
    refused = TicketEvent(vendor="hubspot", account="62515", external_id="3", fields={"subject": "nul \x00 inside"},
                          event_type="ticket.creation", vendor_event_id="3-1")
    with pytest.raises(UnstorablePayload):
        ingestor.store_batch("hubspot", "62515", items(event("1", 1), None, refused), "req-1")
    for table in ("tickets", "events", "deliveries"):
        assert db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] == 0, table


def test_batches_taking_the_same_tickets_in_opposite_orders_all_land(make_app, db):
    """Ticket rows are locked in the events' order, so two such batches deadlocked nearly
    every round (a second each, PostgreSQL's deadlock_timeout), and retrying the victim
    three times still left some answered 503. The batch's tickets are now locked up front
    in one agreed order (LOCK_TICKETS). Two apps: two pools, as two gunicorn workers have."""
    ingestors = [make_app().extensions["ingestion"].ingestor for _ in range(2)]
    ingestors[0].store_batch("hubspot", "62515", items(event("a", 0), event("b", 0)), "seed")
    failures: list[BaseException] = []
    rounds = 60

    def send(order: tuple[str, str], offset: int) -> None:
        ingestor = ingestors[offset - 1]
        for n in range(rounds):
            try:
                ingestor.store_batch("hubspot", "62515", items(*(event(t, 1000 * offset + n) for t in order)), "r")
            except BaseException as error:  # noqa: BLE001 (collected for the assertion)
                failures.append(error)

    threads = [threading.Thread(target=send, args=(("a", "b"), 1)), threading.Thread(target=send, args=(("b", "a"), 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 2 + 4 * rounds


def test_an_unreadable_event_refuses_the_batch_naming_its_place():
    def normalize(payload, headers, account):
        if "objectId" not in payload:
            raise InvalidField("objectId", "is missing")
        return None

    with pytest.raises(InvalidField) as refused:
        batches.read([{"objectId": 1}, {"objectId": 2}, {"eventId": 3}], normalize, {}, None)
    assert refused.value.field == "[2].objectId"
    assert refused.value.message == "Field '[2].objectId' is missing"


def test_a_batch_past_the_limit_is_refused_and_a_single_event_is_not_a_batch():
    split = lambda body: body if isinstance(body, list) else None  # noqa: E731
    with pytest.raises(InvalidField) as refused:
        batches.events_of(split, [{}] * (batches.MAX_EVENTS + 1))
    assert str(batches.MAX_EVENTS) in refused.value.message
    assert batches.events_of(split, {"objectId": 1}) is None
    assert batches.events_of(None, [{}]) is None
    assert batches.events_of(split, []) == []
    assert Outcome.CREATED.http_status == 201
