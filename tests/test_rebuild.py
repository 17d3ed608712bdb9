"""`python -m ingestion rebuild` against the real PostgreSQL: tickets recomputed from
their history with the current normalizer and the live merge rule, only where something
changed, never rolling back or resurrecting, resumable, and safe next to live deliveries
of the same ticket (tests/test_history_replay.py holds the property over random histories)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from conftest import make_env
from ingestion.jobs import rebuild as rebuilding
from ingestion.jobs.redact import redact_email
from ingestion.normalize import ticket_fields
from ingestion.vendors import VENDORS
from signing import post

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR_MAP = {vendor.name: vendor for vendor in VENDORS}


def run(app, scope=rebuilding.Scope(), **options):
    settings = app.extensions["ingestion"].settings
    normalizers = {name: vendor.normalizer(settings) for name, vendor in VENDOR_MAP.items()}
    return rebuilding.rebuild(app.extensions["ingestion"].storage, VENDOR_MAP, normalizers, scope, **options)


def tickets(db):
    return {r["external_id"]: r for r in db.execute("SELECT * FROM tickets ORDER BY external_id").fetchall()}


@pytest.fixture
def learns_kind(monkeypatch):
    """A normalizer upgrade: `kind` is now read as the ticket type."""
    def learn():
        monkeypatch.setattr(ticket_fields, "TYPE", (*ticket_fields.TYPE, "kind"))
    return learn


def test_a_normalizer_change_updates_the_tickets_it_concerns_and_only_those(app, client, db, learns_kind):
    post(client, "freshdesk", {"ticket": {"id": "r-1", "subject": "One", "kind": "incident"}})
    post(client, "freshdesk", {"ticket": {"id": "r-2", "subject": "Two"}})
    post(client, "zendesk", {"ticket": {"id": "r-3", "subject": "Three", "kind": "question"}})
    assert {t["type"] for t in tickets(db).values()} == {None}

    unchanged = run(app)
    assert unchanged.as_json()["changed"] == 0 and unchanged.tickets == 3

    learns_kind()
    summary = run(app)
    assert (summary.tickets, summary.changed, summary.fields_changed) == (3, 2, {"type": 2})
    stored = tickets(db)
    assert [(k, t["type"], t["revision"], t["subject"]) for k, t in stored.items()] == [
        ("r-1", "incident", 2, "One"), ("r-2", None, 1, "Two"), ("r-3", "question", 2, "Three")]
    rebuilt = db.execute("SELECT ticket_id, changes, outcome, revision, published_at FROM events "
                         "WHERE event_type = 'ticket.rebuilt' ORDER BY id").fetchall()
    assert [r["changes"] for r in rebuilt] == [{"type": {"previous": None, "current": "incident"}},
                                               {"type": {"previous": None, "current": "question"}}]
    assert {(r["outcome"], r["revision"], r["published_at"]) for r in rebuilt} == {("updated", 2, None)}

    again = run(app)
    assert again.changed == 0
    assert [t["revision"] for t in tickets(db).values()] == [2, 1, 2]
    assert db.execute("SELECT count(*) AS n FROM events WHERE event_type = 'ticket.rebuilt'").fetchone()["n"] == 2
    assert run(app, rebuilding.Scope(vendor="zendesk")).tickets == 1
    assert run(app, rebuilding.Scope("freshdesk", "", "r-2")).tickets == 1


def test_a_late_stale_snapshot_stays_stale_in_a_rebuild(client, app, db):
    """Live, an older full snapshot arriving after a newer partial update changes nothing;
    the old rebuild merged it ("vendor order") and so changed the ticket with no normalizer
    change at all."""
    post(client, "freshdesk", {"ticket": {"id": "late", "status": "pending", "updated_at": "2026-01-02T10:00:00Z"}})
    answer = post(client, "freshdesk", {"ticket": {"id": "late", "subject": "Printer on fire", "status": "open",
                                                   "requester_email": "ana@example.com",
                                                   "updated_at": "2026-01-02T09:00:00Z"}})
    assert answer.json["status"] == "stale"
    before = tickets(db)["late"]
    summary = run(app)
    assert tickets(db)["late"] == before and before["subject"] is None
    assert summary.changed == 0


def test_an_event_without_a_vendor_time_is_replayed_where_it_arrived(client, app, db):
    """Live, an event without updated_at counts as newest when it arrives; the old
    rebuild ordered it by its arrival time, after every event with a vendor time."""
    post(client, "zendesk", {"ticket": {"id": "untimed", "status": "open", "updated_at": "2026-01-02T09:00:00Z"}})
    post(client, "zendesk", {"ticket": {"id": "untimed", "status": "pending"}})  # no vendor time
    post(client, "zendesk", {"ticket": {"id": "untimed", "status": "solved", "updated_at": "2026-01-02T10:00:00Z"}})
    assert tickets(db)["untimed"]["status"] == "solved"
    assert run(app).changed == 0
    assert tickets(db)["untimed"]["status"] == "solved"


def test_retention_then_rebuild_never_rolls_a_ticket_back(client, app, db):
    """The review's case: retention emptied the old payloads, and the old rebuild started
    from the stored ticket and merged a remaining stale event on top: closed, urgent, new
    subject went back to open, low, old subject."""
    storage = app.extensions["ingestion"].storage
    post(client, "freshdesk", {"ticket": {"id": "kept", "subject": "Old subject", "status": 2, "priority": 1,
                                          "updated_at": "2026-01-01T09:00:00Z"}})
    post(client, "freshdesk", {"ticket": {"id": "kept", "subject": "New subject", "status": 5, "priority": 4,
                                          "updated_at": "2026-01-03T09:00:00Z"}})
    db.execute("UPDATE events SET received_at = now() - interval '100 days'")
    late = post(client, "freshdesk", {"ticket": {"id": "kept", "subject": "Old subject", "status": 2, "priority": 1,
                                                 "updated_at": "2026-01-01T09:00:00Z", "retry": 3}})
    assert late.json["status"] == "stale"
    assert storage.prune_event_payloads(90) == 2
    before = tickets(db)["kept"]
    summary = run(app)
    assert tickets(db)["kept"] == before
    assert (before["subject"], before["status"], before["priority"]) == ("New subject", "closed", "urgent")
    assert (summary.changed, summary.partial) == (0, 0)


def test_retention_keeps_what_later_events_do_not_say_and_a_new_normalizer_still_refines(
        client, app, db, learns_kind):
    """An emptied event still takes part with the keys it set: its values stay the
    ticket's where no later event says otherwise, and today's normalizer refines from
    what later payloads still hold."""
    storage = app.extensions["ingestion"].storage
    post(client, "freshdesk", {"ticket": {"id": "ret", "subject": "From an emptied event", "kind": "incident",
                                          "updated_at": "2026-01-01T09:00:00Z"}})
    db.execute("UPDATE events SET received_at = now() - interval '100 days'")
    post(client, "freshdesk", {"ticket": {"id": "ret", "status": "pending", "kind": "problem",
                                          "updated_at": "2026-01-02T09:00:00Z"}})
    storage.prune_event_payloads(90)
    learns_kind()
    summary = run(app)
    ticket = tickets(db)["ret"]
    assert (ticket["subject"], ticket["status"], ticket["type"]) == ("From an emptied event", "pending", "problem")
    assert (summary.changed, summary.fields_changed) == (1, {"type": 1})


@pytest.mark.parametrize("emptied_by", ["retention", "redaction"])
def test_what_a_rebuild_read_is_kept_when_the_payload_is_gone_later(client, app, db, learns_kind, emptied_by):
    """A review's case: after a normalizer upgrade and a rebuild, retention (or a
    redaction of an address in the payload) left the event with the fields the old
    normalizer had read, and the next rebuild, with the same normalizer, rolled the
    ticket's type back. A rebuild keeps its reading on the event."""
    storage = app.extensions["ingestion"].storage
    post(client, "freshdesk", {"ticket": {"id": "up", "subject": "One", "kind": "incident",
                                          "requester_email": "ana@example.com", "updated_at": "2026-01-01T09:00:00Z"}})
    learns_kind()
    assert run(app).changed == 1
    fields = db.execute("SELECT fields FROM events WHERE event_type <> 'ticket.rebuilt'").fetchone()["fields"]
    assert fields["type"] == "incident"
    if emptied_by == "retention":
        assert storage.prune_event_payloads(-1) >= 1
    else:
        redact_email(storage, "ana@example.com")
    before = tickets(db)["up"]
    assert before["type"] == "incident"
    summary = run(app)
    assert summary.changed == 0 and tickets(db)["up"] == before


def test_a_redaction_is_a_fact_a_rebuild_honours(client, app, db):
    """The review's case: after `redact --email`, the old rebuild put the person's name
    and vendor id back on the ticket (and published them to the stream)."""
    storage = app.extensions["ingestion"].storage
    post(client, "zendesk", {"ticket": {"id": "gdpr", "subject": "Refund", "requester_name": "Ana Perez",
                                        "requester_email": "ana.perez@example.com", "requester_id": "90210"}})
    redact_email(storage, "ana.perez@example.com")
    before = tickets(db)["gdpr"]
    assert (before["requester_name"], before["requester_email"], before["requester_id"]) == (None, None, None)
    summary = run(app)
    assert tickets(db)["gdpr"] == before and summary.changed == 0
    assert db.execute("SELECT count(*) AS n FROM events WHERE event_type = 'ticket.rebuilt'").fetchone()["n"] == 0


def test_a_name_the_payload_spells_in_two_keys_stays_redacted_through_a_rebuild(client, app, db):
    """The masking found the name in the event's fields but not in its payload, which
    spells it `first_name` and `last_name`: the payload counted as unredacted, so the
    rebuild read it again and wrote "Ana Perez" back into the stored history."""
    storage = app.extensions["ingestion"].storage
    post(client, "freshdesk", {"ticket": {"id": "parts", "requester": {"name": "Ana Perez",
                                                                       "email": "ana.perez@example.com"}}})
    post(client, "freshdesk", {"ticket": {"id": "parts", "status": "pending",
                                          "requester": {"first_name": "Ana", "last_name": "Perez"}}})
    redact_email(storage, "ana.perez@example.com")
    before = tickets(db)["parts"]
    assert run(app).changed == 0 and tickets(db)["parts"] == before
    stored = db.execute("SELECT fields::text AS fields FROM events ORDER BY id").fetchall()
    assert not any("Ana Perez" in (row["fields"] or "") for row in stored), stored


def test_retention_while_a_rebuild_reads_is_not_undone_by_it(client, app, db, make_app):
    """rebuild_ticket() wrote each reading over the event's fields; retention, which does
    not wait for the ticket's lock, had emptied them in between: the personal values came
    back, for good (the event counted as emptied already)."""
    storage = app.extensions["ingestion"].storage
    post(client, "freshdesk", {"ticket": {"id": "race", "subject": "Secret subject",
                                          "requester": "Ana Perez <ana.perez@example.com>"}})
    ticket_id = tickets(db)["race"]["id"]
    settings = app.extensions["ingestion"].settings
    normalizers = {name: vendor.normalizer(settings) for name, vendor in VENDOR_MAP.items()}

    def read(ticket, events):
        found = rebuilding.readings(VENDOR_MAP[ticket["vendor"]], normalizers[ticket["vendor"]], ticket, events)
        assert make_app().extensions["ingestion"].storage.prune_event_payloads(-1) >= 1  # the relay's prune
        return found

    storage.rebuild(ticket_id, "all", read)
    stored = db.execute("SELECT fields::text AS fields, fields_retained FROM events").fetchall()
    assert all(row["fields_retained"] for row in stored)
    assert not any("Secret subject" in row["fields"] or "Ana Perez" in row["fields"] for row in stored), stored


def test_two_spellings_of_one_key_read_the_same_live_and_in_a_rebuild(client, app, db):
    """A rebuild reads a payload back from jsonb, whose keys are in its own order (shorter
    first): with `subject` and `Subject`, or `updated_at` and `updatedAt`, side by side, the
    body's order picked one value live and jsonb's the other in a rebuild, which changed
    the subject, and moved the ticket's time so a later event was judged stale."""
    post(client, "freshdesk", {"ticket": {"id": "order-1", "subject": "What the body said first",
                                          "Subject": "What the body said second"}})
    post(client, "freshdesk", {"ticket": {"id": "order-2", "status": "open", "updated_at": "2026-01-01T00:00:00Z",
                                          "updatedAt": "2026-01-05T00:00:00Z"}})
    post(client, "freshdesk", {"ticket": {"id": "order-2", "status": "pending", "updated_at": "2026-01-02T00:00:00Z"}})
    before = tickets(db)
    assert run(app).changed == 0
    assert tickets(db) == before
    assert db.execute("SELECT count(*) AS n FROM events WHERE event_type = 'ticket.rebuilt'").fetchone()["n"] == 0


def test_a_helpscout_conversation_sent_without_its_event_header_keeps_its_fields(client, app, db):
    """A relay that drops X-HelpScout-Event: the delivery is stored as a snapshot. The old
    rebuild handed back 'ticket.snapshot' as the header, which is no convo event: the
    normalizer ignored it, and the ticket lost its subject, group and tags."""
    post(client, "helpscout", {"id": 4242, "number": 12, "subject": "Where is my order?", "status": "active",
                               "mailboxId": 85, "tags": [{"tag": "orders"}]})
    before = tickets(db)["4242"]
    assert (before["subject"], before["group_name"], list(before["tags"])) == ("Where is my order?", "85", ["orders"])
    assert run(app).changed == 0
    assert tickets(db)["4242"] == before


def test_a_payload_stored_too_deep_to_read_again_takes_part_with_its_stored_fields(client, app, db):
    created = post(client, "freshdesk", {"ticket": {"id": "deep", "subject": "Kept"}})
    db.execute("UPDATE events SET payload = %s::jsonb WHERE ticket_id = %s",
               ('{"ticket": {"id": "deep", "x": ' + "[" * 965 + "]" * 965 + "}}", created.json["ticket_id"]))
    summary = run(app)
    assert (summary.changed, summary.skipped_events) == (0, 1)
    assert tickets(db)["deep"]["subject"] == "Kept"


def test_a_history_from_before_events_kept_their_fields_is_left_as_it_is(app, client, db, learns_kind):
    """The first release kept only the latest payload: an event with neither payload nor
    stored fields cannot be replayed, so the ticket is not recomputed (partial)."""
    post(client, "freshdesk", {"ticket": {"id": "old", "subject": "From the first release"}})
    post(client, "freshdesk", {"ticket": {"id": "old", "kind": "incident", "updated_at": "2026-01-02T10:00:00Z"}})
    db.execute("UPDATE events SET payload = NULL, fields = NULL WHERE id = (SELECT min(id) FROM events)")
    before = tickets(db)["old"]
    learns_kind()
    summary = run(app)
    assert tickets(db)["old"] == before
    assert (summary.partial, summary.changed) == (1, 0)


def test_a_live_delivery_during_a_rebuild_of_its_ticket_ends_in_the_right_state(make_app, db, learns_kind):
    app = make_app()
    client = app.test_client()
    post(client, "freshdesk", {"ticket": {"id": "busy", "subject": "Before", "kind": "incident",
                                          "updated_at": "2026-01-02T09:00:00Z"}})
    learns_kind()
    locked, release = threading.Event(), threading.Event()
    live_answer = {}

    def on_locked():
        locked.set()
        assert release.wait(10)

    def live():
        live_answer["response"] = post(make_app().test_client(), "freshdesk", {
            "ticket": {"id": "busy", "subject": "After", "updated_at": "2026-01-02T10:00:00Z"}})

    rebuilder = threading.Thread(target=lambda: live_answer.setdefault("summary", run(app, on_locked=on_locked)))
    rebuilder.start()
    assert locked.wait(10)
    webhook = threading.Thread(target=live)
    webhook.start()
    webhook.join(0.5)
    assert webhook.is_alive()  # it waits for the rebuild's lock on the ticket
    release.set()
    rebuilder.join(10)
    webhook.join(10)
    assert live_answer["response"].json["status"] == "updated"
    ticket = tickets(db)["busy"]
    # The rebuild's type (from the first event) and the live event's subject, on top.
    assert (ticket["type"], ticket["subject"], ticket["revision"]) == ("incident", "After", 3)
    assert run(app).changed == 0  # and the state agrees with a rebuild from all events


def test_an_interrupted_rebuild_resumes_after_the_last_ticket_it_finished(app, client, db, learns_kind):
    for n in range(4):
        post(client, "zendesk", {"ticket": {"id": f"res-{n}", "kind": "task"}})
    learns_kind()
    done = []

    def stop_after_two():
        done.append(1)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(app, on_ticket=stop_after_two)
    assert sum(t["type"] == "task" for t in tickets(db).values()) == 2
    resumed = run(app)
    assert resumed.tickets == 2 and resumed.resumed_after is not None and resumed.changed == 2
    assert {t["type"] for t in tickets(db).values()} == {"task"}
    everything = run(app, restart=True)
    assert (everything.tickets, everything.changed, everything.resumed_after) == (4, 0, None)


def test_the_rebuild_command_prints_its_summary(database_url, client, db):
    post(client, "freshdesk", {"ticket": {"id": "cli", "subject": "Kept"}})
    result = subprocess.run([sys.executable, "-m", "ingestion", "rebuild", "--ticket", "freshdesk/cli"], cwd=ROOT,
                            env={**os.environ, **make_env(database_url)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "tickets": 1, "changed": 0, "unchanged": 1, "partial": 0, "skipped_events": 0, "resumed_after": None,
        "fields_changed": {}}
    bad = subprocess.run([sys.executable, "-m", "ingestion", "rebuild", "--ticket", "nobody/1"], cwd=ROOT,
                         env={**os.environ, **make_env(database_url)}, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "unknown vendor" in bad.stderr


@pytest.mark.parametrize("vendor, body", [
    ("freshdesk", '{"ticket": {"id": "huge-n", "kind": "question", "custom_fields": {"n": 1e400, "m": -2E+999}}}'),
    ("zendesk", '{"ticket": {"id": "huge-n", "kind": "question", "custom_fields": [{"id": 7, "value": 1e400}]}}'),
])
def test_a_number_past_a_floats_range_in_a_field_is_stored_as_sent_live_and_through_a_rebuild(
        make_app, db, learns_kind, vendor, body):
    """A review's case: `1e400` in custom fields is valid JSON that PostgreSQL stores
    exactly, but the fields were written with plain json.dumps, as `Infinity`, and the
    delivery was refused (422 "database refused") and quarantined."""
    app = make_app(API_TOKENS="huge-number-reader-token-0123456789")
    client = app.test_client()
    answer = post(client, vendor, body)
    assert answer.status_code == 201, answer.json
    stored = db.execute("SELECT custom_fields::text AS t FROM tickets WHERE external_id = 'huge-n'").fetchone()["t"]
    assert "1" + "0" * 400 in stored.replace(" ", "")
    read = client.get(f"/api/v1/tickets/{vendor}/huge-n", headers={"Authorization": "Bearer huge-number-reader-token-0123456789"})
    assert read.status_code == 200
    before = tickets(db)["huge-n"]
    assert run(app).changed == 0 and tickets(db)["huge-n"] == before
    learns_kind()  # a normalizer upgrade: the rebuild now writes this event's reading back
    assert run(app).changed == 1
    after = tickets(db)["huge-n"]
    assert after["type"] == "question" and after["custom_fields"] == before["custom_fields"]


def test_a_payload_postgresql_writes_back_with_a_5001_digit_number_is_still_read_by_a_rebuild(
        client, app, db, learns_kind):
    """`1e5000` is accepted (within the exponents' budget) and PostgreSQL writes it back in
    full: 5001 digits, past what Python converts, so the rebuild skipped the event."""
    assert post(client, "freshdesk", '{"ticket": {"id": "long-n", "kind": "question", "extra": 1e5000}}'
                ).status_code == 201
    learns_kind()
    summary = run(app)
    assert (summary.changed, summary.skipped_events) == (1, 0)
    assert tickets(db)["long-n"]["type"] == "question"


def rebuilt_unchanged(app, db, external_id):
    before = tickets(db)[external_id]
    summary = run(app)
    after = tickets(db)[external_id]
    assert summary.changed == 0, summary.as_json()
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    return after


@pytest.mark.parametrize("role", ["requester", "assignee"])
def test_retention_then_another_person_by_id_never_takes_the_previous_ones_name_in_a_rebuild(client, app, db, role):
    """A review's case: retention emptied the first event's person; a name arrived, then
    another person by id alone. Live cleared the previous person's name and address; the
    rebuild compared with the emptied id, kept them, and gave them to the new person."""
    storage = app.extensions["ingestion"].storage
    post(client, "freshdesk", {"ticket": {"id": f"ret-{role}", "subject": "Printer", f"{role}_id": "5",
                                          f"{role}_name": "Ana Perez", f"{role}_email": "ana@example.com"}})
    assert storage.prune_event_payloads(-1) == 1
    post(client, "freshdesk", {"ticket": {"id": f"ret-{role}", f"{role}_name": "Ana P."}})
    post(client, "freshdesk", {"ticket": {"id": f"ret-{role}", f"{role}_id": "9"}})  # another person, by id
    after = rebuilt_unchanged(app, db, f"ret-{role}")
    assert (after[f"{role}_id"], after[f"{role}_name"], after[f"{role}_email"]) == ("9", None, None)


def test_retention_then_another_address_drops_the_previous_id_in_a_rebuild_too(client, app, db):
    """The other person rule: another address without an id is another person, so the
    known id goes. After retention the rebuild compared with an emptied address and kept it."""
    storage = app.extensions["ingestion"].storage
    zendesk = {"X-Zendesk-Account-Id": "99"}
    post(client, "zendesk", {"ticket": {"id": "ret-id", "requester_id": "5", "requester_email": "ana@example.com"}},
         **zendesk)
    assert storage.prune_event_payloads(-1) == 1
    post(client, "zendesk", {"ticket": {"id": "ret-id", "requester_id": "5"}}, **zendesk)
    post(client, "zendesk", {"ticket": {"id": "ret-id", "requester_email": "bo@example.org"}}, **zendesk)
    after = rebuilt_unchanged(app, db, "ret-id")
    assert (after["requester_id"], after["requester_email"]) == (None, "bo@example.org")


@pytest.mark.parametrize("vendor, body, external_id", [
    # n8n-style flattened keys, one path a prefix of another, the longer sent first
    ("zendesk", '{"ticket.id": "flat-1", "ticket.requester.email": "bo@example.org", '
                '"ticket.requester": "Ana Perez <ana@example.com>"}', "flat-1"),
    ("freshdesk", '{"freshdesk_webhook": {"ticket_id": "cf-1", "ticket_cf_region": "EU", '
                  '"TICKET_CF_region": "US"}}', "cf-1"),
])
def test_keys_whose_order_decides_a_value_read_alike_live_and_rebuilt(client, app, db, vendor, body, external_id):
    """A review's cases: the live path read these bodies in the order they were sent, a
    rebuild in jsonb's (shorter keys first), and the rebuild changed the ticket."""
    assert post(client, vendor, body, **({"X-Zendesk-Account-Id": "99"} if vendor == "zendesk" else {})
                ).status_code == 201
    rebuilt_unchanged(app, db, external_id)
