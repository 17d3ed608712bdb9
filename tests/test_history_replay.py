"""One merge rule: a ticket ingested live and then rebuilt from its history is the same
ticket, with the same stored history, whatever the history (the property, with Hypothesis).

Random histories go through the real webhook path of each vendor: creates, partial
updates, updates older than the ticket (stale) and out of order, events without a vendor
time, comments, soft deletes and restores, permanent deletes, redactions of a person or
of the ticket, and retention emptying the events so far. Then `rebuild` (with the same
normalizer) must change nothing: not a field, not a revision, not a stored event.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.jobs import rebuild as rebuilding
from ingestion.jobs.redact import redact_email, redact_ticket
from ingestion.vendors import VENDORS
from signing import post

PEOPLE = (("Ana Perez", "ana.perez@example.com"), ("Bo Lindqvist", "bo.lindqvist@example.org"))
TIMES = [None, *(f"2026-03-0{day}T10:00:00Z" for day in range(1, 6))]
STATUSES = {"freshdesk": ["open", "pending", "closed"], "zendesk": ["open", "pending", "solved"],
            "helpscout": ["active", "pending", "closed"], "front": ["assigned", "unassigned", "archived"],
            "intercom": ["submitted", "in_progress", "resolved"],
            "hubspot": ["1", "2", "4"]}  # (HubSpot's: pipeline stage ids)
ZENDESK_ACCOUNT = {"X-Zendesk-Account-Id": "99"}


@dataclass(frozen=True)
class Update:
    """A delivery carrying some fields (absent ones are not in the body)."""

    subject: str | None
    status: str | None
    tags: tuple[str, ...] | None
    region: str | None  # a custom field
    requester: int | None  # index into PEOPLE
    updated_at: str | None
    comment: str | None


def updates(vendor: str):
    maybe = lambda strategy: st.none() | strategy  # noqa: E731
    text = st.sampled_from(["Printer on fire", "Refund for Ana Perez", "Login broken", "Call bo.lindqvist@example.org"])
    return st.builds(
        Update, subject=maybe(text), status=maybe(st.sampled_from(STATUSES[vendor])),
        tags=maybe(st.lists(st.sampled_from(["vip", "billing", "ana.perez@example.com"]), max_size=2).map(tuple)),
        region=maybe(st.sampled_from(["EU", "US"])), requester=maybe(st.sampled_from([0, 1])),
        updated_at=st.sampled_from(TIMES), comment=maybe(st.sampled_from(["On it", "Thanks Ana Perez", "Closing"])))


def operations(vendor: str):
    # Intercom sends no ticket deletion (only conversation.deleted), nor any restore.
    lifecycle = [] if vendor == "intercom" else (
        ["soft_delete", "restore"] + (["purge"] if vendor not in ("helpscout", "front", "hubspot") else []))
    return st.lists(st.one_of(
        updates(vendor),
        st.sampled_from(lifecycle + ["redact_person", "redact_ticket", "retention"]),
    ), min_size=1, max_size=8)


def body(vendor: str, ticket: str, update: Update, headless: bool) -> tuple[dict | list, dict]:
    """The delivery as the vendor (or an admin's trigger) writes it, and its headers."""
    person = PEOPLE[update.requester] if update.requester is not None else None
    if vendor == "helpscout":
        convo: dict = {"id": int(ticket), "number": 7, "mailboxId": 85}
        if update.subject is not None:
            convo["subject"] = update.subject
        if update.status is not None:
            convo["status"] = update.status
        if update.tags is not None:
            convo["tags"] = [{"tag": tag} for tag in update.tags]
        if person is not None:
            first, last = person[0].split()
            convo["primaryCustomer"] = {"first": first, "last": last, "email": person[1]}
        if update.updated_at is not None:
            convo["userUpdatedAt"] = update.updated_at
        if update.comment is not None:
            convo["_embedded"] = {"threads": [{"type": "customer", "body": update.comment, "createdAt":
                                               update.updated_at or "2026-03-01T09:00:00Z"}]}
        event = "convo.customer.reply.created" if update.comment is not None else "convo.updated"
        return convo, ({} if headless else {"X-HelpScout-Event": event})
    if vendor == "front":
        return front_body(ticket, update, person), {}
    if vendor == "intercom":
        return intercom_notification(ticket, update, person), {}
    if vendor == "hubspot":
        return hubspot_batch(ticket, update), {}
    fields: dict = {"id": ticket}
    if update.subject is not None:
        fields["subject" if vendor == "freshdesk" else "title"] = update.subject
    if update.status is not None:
        fields["status"] = update.status
    if update.tags is not None:
        fields["tags"] = list(update.tags) if vendor == "freshdesk" else " ".join(update.tags)
    if update.region is not None:
        fields["custom_fields"] = {"region": update.region}
    if person is not None:
        fields["requester"] = f"{person[0]} <{person[1]}>"
    if update.updated_at is not None:
        fields["updated_at"] = update.updated_at
    if update.comment is not None:
        fields["latest_comment"] = update.comment
    return {"ticket": fields}, (ZENDESK_ACCOUNT if vendor == "zendesk" else {})


def front_body(ticket: str, update: Update, person: tuple[str, str] | None) -> dict:
    """A rule webhook's Event: the conversation, and the comment as its target."""
    conversation: dict = {"id": ticket}
    if update.subject is not None:
        conversation["subject"] = update.subject
    if update.status is not None:
        conversation["status"] = update.status
    if update.tags is not None:
        conversation["tags"] = [{"id": f"tag_{tag}", "name": tag} for tag in update.tags]
    if update.region is not None:
        conversation["custom_fields"] = {"region": update.region}
    if person is not None:
        conversation["recipient"] = {"handle": person[1], "name": person[0], "role": "from"}
    event: dict = {"id": f"evt_{uuid.uuid4().hex[:12]}", "type": "reopen", "conversation": conversation}
    if update.updated_at is not None:
        event["emitted_at"] = datetime.fromisoformat(update.updated_at).timestamp()
    if update.comment is not None:
        event.update(type="comment", target={"_meta": {"type": "comment"}, "data": {
            "body": update.comment, "author": {"id": "tea_1", "first_name": "Bo", "last_name": "Lindqvist"}}})
    return event


def intercom_notification(ticket: str, update: Update, person: tuple[str, str] | None) -> dict:
    """A ticket.* notification: the ticket and the part that fired (a contact's reply, or
    an attribute change by the contact), the event's time in unix seconds. Intercom names
    people only as part authors; tickets have no tags."""
    item: dict = {"type": "ticket", "id": ticket}
    attributes = {name: value for name, value in (("_default_title_", update.subject), ("region", update.region))
                  if value is not None}
    if attributes:
        item["ticket_attributes"] = attributes
    if update.status is not None:
        item["ticket_state"] = {"type": "ticket_state", "category": update.status}
    author = {"type": "admin", "id": "7", "name": "Agent"}
    if person is not None:
        item["contacts"] = {"type": "contact.list", "contacts": [{"type": "contact", "id": f"contact-{person[1]}"}]}
        author = {"type": "user", "id": f"contact-{person[1]}", "name": person[0], "email": person[1]}
    part = {"type": "ticket_part", "part_type": "comment" if update.comment else "attribute_collected",
            "body": update.comment, "author": author}
    body: dict = {"type": "notification_event", "topic": "ticket.contact.replied" if update.comment
                  else "ticket.attribute.updated", "data": {"item": {"type": "ticket_ticket_part", "ticket": item,
                                                                     "ticket_part": part}}}
    if update.updated_at is not None:
        body["created_at"] = int(datetime.fromisoformat(update.updated_at).timestamp())
    body["id"] = "notif_" + hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return body


def hubspot_event(ticket: str, kind: str, at: str | None, **more) -> dict:
    """One HubSpot event: it always has a time (a fixed one stands in for none)."""
    moment = datetime.fromisoformat(at or "2026-03-01T00:00:00Z")
    return {"subscriptionType": kind, "objectId": int(ticket), "portalId": 62515, "eventId": uuid.uuid4().int % 10**12,
            "occurredAt": int(moment.timestamp() * 1000), **more}


def hubspot_batch(ticket: str, update: Update) -> list:
    """A batch of one event per property (HubSpot's events carry no people, tags or comments)."""
    changed = [(name, value) for name, value in (("subject", update.subject), ("hs_pipeline_stage", update.status),
                                                 ("region", update.region)) if value is not None]
    return [hubspot_event(ticket, "ticket.propertyChange", update.updated_at, propertyName=name, propertyValue=value)
            for name, value in changed] or [hubspot_event(ticket, "ticket.creation", update.updated_at)]


def lifecycle(vendor: str, ticket: str, operation: str, n: int) -> tuple[dict | list, dict]:
    """A deletion, a restore or a permanent delete, as each vendor sends it."""
    if vendor == "zendesk":
        kind = {"soft_delete": "soft_deleted", "restore": "undeleted", "purge": "permanently_deleted"}[operation]
        return ({"type": f"zen:event-type:ticket.{kind}", "id": f"{kind}-{ticket}-{n}", "account_id": 99,
                 "subject": f"zen:ticket:{ticket}", "detail": {"id": ticket}, "event": {}}, {})
    if vendor == "freshdesk":
        if operation == "purge":
            return {"event": "onTicketDelete", "data": {"ticket": {"id": int(ticket)}}, "n": n}, {}
        return {"ticket": {"id": ticket}, "event": f"ticket_{'deleted' if operation == 'soft_delete' else 'restored'}",
                "n": n}, {}
    if vendor == "hubspot":
        kind = "ticket.deletion" if operation == "soft_delete" else "ticket.restore"
        return [hubspot_event(ticket, kind, f"2026-03-06T10:{n:02d}:00Z")], {}
    if vendor == "front":
        return {"id": f"evt_{operation}_{ticket}_{n}", "type": "trash" if operation == "soft_delete" else "restore",
                "conversation": {"id": ticket}}, {}
    if operation == "soft_delete":
        return {"id": int(ticket)}, {"X-HelpScout-Event": "convo.deleted"}
    # (a restore is a conversation: an id alone is a deletion's body, and a header alone,
    # which the signature does not cover, may not turn one into the other)
    return {"id": int(ticket), "n": n, "status": "active", "state": "published"}, {"X-HelpScout-Event": "convo.restored"}


def history(db, ticket_id):
    return db.execute("SELECT * FROM events WHERE ticket_id = %s ORDER BY id", (ticket_id,)).fetchall()


#: The vendors whose bodies `body` and `lifecycle` write. The rule under test (one merge,
#: in SQL) is the same for every vendor; each other vendor's own history test posts a
#: ticket's life through its normalizer (tests/vendors/<vendor>/).
WRITTEN = ("freshdesk", "zendesk", "helpscout", "front", "intercom", "hubspot")


def test_the_property_covers_vendors_of_every_signature_kind():
    """Whatever vendors join, the vendors written here still cover HMAC, timestamped
    signatures and Basic, and exist in the registry."""
    registered = {vendor.name: vendor for vendor in VENDORS}
    assert set(WRITTEN) <= set(registered)
    kinds = {credential.scheme[0] for name in WRITTEN for credential in registered[name].credentials}
    assert kinds >= {"hmac", "timestamped", "basic"}


@pytest.mark.parametrize("vendor", WRITTEN)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_a_history_ingested_live_and_then_rebuilt_gives_the_same_ticket_and_history(app, db, vendor, data):
    client = app.test_client()
    storage = app.extensions["ingestion"].storage
    ticket = str(uuid.uuid4().int % 10**9)
    account = {"zendesk": "99", "hubspot": "62515"}.get(vendor, "")
    external = f"ticket:{ticket}" if vendor == "intercom" else ticket
    headless = vendor == "helpscout" and data.draw(st.booleans(), label="headless")
    steps = data.draw(operations(vendor), label="operations")
    for n, step in enumerate([Update("Created", None, None, None, 0, None, None), *steps]):
        if isinstance(step, Update):
            payload, headers = body(vendor, ticket, step, headless)
            assert post(client, vendor, payload, account=None, **headers).status_code < 300
        elif step in ("soft_delete", "restore", "purge"):
            payload, headers = lifecycle(vendor, ticket, step, n)
            assert post(client, vendor, payload, **headers).status_code < 300
        elif step == "redact_person":
            redact_email(storage, PEOPLE[0][1])
        elif step == "redact_ticket":
            redact_ticket(storage, vendor, account, external)
        else:  # retention: every event stored so far is past it
            storage.prune_event_payloads(-1)

    row = db.execute("SELECT * FROM tickets WHERE vendor = %s AND account = %s AND external_id = %s",
                     (vendor, account, external)).fetchone()
    assert row is not None
    events_before = history(db, row["id"])
    settings_ = app.extensions["ingestion"].settings
    summary = rebuilding.rebuild(storage, {v.name: v for v in VENDORS},
                                 {v.name: v.normalizer(settings_) for v in VENDORS},
                                 rebuilding.Scope(vendor, account, external))
    after = db.execute("SELECT * FROM tickets WHERE id = %s", (row["id"],)).fetchone()
    assert after == row, {k: (row[k], after[k]) for k in row if row[k] != after[k]}
    assert history(db, row["id"]) == events_before
    assert summary.changed == 0


def test_a_ticket_forgotten_after_a_persons_redaction_rebuilds_to_the_forgotten_ticket(app, db):
    """Found by the property above: the person's redaction record kept the subject it
    merged (`Refund for [redacted]`) after `redact --ticket` forgot the ticket, and the
    rebuild put it back (revision 4, subject restored)."""
    client = app.test_client()
    storage = app.extensions["ingestion"].storage
    ticket = "432740830"
    steps = [Update("Created", None, None, None, 0, None, None),
             Update("Refund for Ana Perez", None, None, None, None, None, None), "redact_person", "redact_ticket"]
    for step in steps:
        if isinstance(step, Update):
            payload, headers = body("helpscout", ticket, step, False)
            assert post(client, "helpscout", payload, **headers).status_code < 300
        elif step == "redact_person":
            redact_email(storage, PEOPLE[0][1])
        else:
            redact_ticket(storage, "helpscout", "", ticket)
    row = db.execute("SELECT * FROM tickets WHERE external_id = %s", (ticket,)).fetchone()
    assert row["subject"] is None
    settings_ = app.extensions["ingestion"].settings
    summary = rebuilding.rebuild(storage, {v.name: v for v in VENDORS},
                                 {v.name: v.normalizer(settings_) for v in VENDORS},
                                 rebuilding.Scope("helpscout", "", ticket))
    assert db.execute("SELECT * FROM tickets WHERE id = %s", (row["id"],)).fetchone() == row
    assert summary.changed == 0
    assert not any("Ana" in str(e["fields"]) or "redacted]" in str(e["fields"]) for e in history(db, row["id"]))


def test_migration_10_empties_what_earlier_forgettings_left_on_redaction_records(app, db):
    """A database forgotten by the earlier forget_ticket() holds the person's redaction
    record with its values: migration 10 empties them, so the rebuild keeps the ticket."""
    from ingestion.storage.migrate import DIRECTORY

    test_a_ticket_forgotten_after_a_persons_redaction_rebuilds_to_the_forgotten_ticket(app, db)
    row = db.execute("SELECT * FROM tickets WHERE external_id = '432740830'").fetchone()
    db.execute("UPDATE events SET fields = '{\"subject\": \"Refund for [redacted]\"}', fields_retained = false "
               "WHERE ticket_id = %s AND changes->>'forgotten' = 'person'", (row["id"],))
    db.execute((DIRECTORY / "0010_forgotten_redaction_records.sql").read_text())
    record = db.execute("SELECT fields, fields_retained FROM events WHERE ticket_id = %s "
                        "AND changes->>'forgotten' = 'person'", (row["id"],)).fetchone()
    assert record == {"fields": {"subject": None}, "fields_retained": True}
    settings_ = app.extensions["ingestion"].settings
    rebuilding.rebuild(app.extensions["ingestion"].storage, {v.name: v for v in VENDORS},
                       {v.name: v.normalizer(settings_) for v in VENDORS}, rebuilding.Scope("helpscout", "", "432740830"))
    assert db.execute("SELECT * FROM tickets WHERE id = %s", (row["id"],)).fetchone() == row
