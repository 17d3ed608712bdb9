"""`python -m ingestion rebuild` against the real PostgreSQL: tickets recomputed from
their events with the current normalizer, only where something changed, in vendor
order, resumable, and safe next to live deliveries of the same ticket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from conftest import make_env
from ingestion import rebuild as rebuilding
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


def test_events_merge_in_vendor_order_so_a_late_full_snapshot_fills_what_a_partial_left(client, app, db):
    # A partial update (t2) arrives first and creates the ticket; the full snapshot (t1)
    # arrives late and is stale: live, its subject and requester are never applied.
    post(client, "freshdesk", {"ticket": {"id": "late", "status": "pending", "updated_at": "2026-01-02T10:00:00Z"}})
    answer = post(client, "freshdesk", {"ticket": {"id": "late", "subject": "Printer on fire", "status": "open",
                                                   "requester_email": "ana@example.com",
                                                   "updated_at": "2026-01-02T09:00:00Z"}})
    assert answer.json["status"] == "stale"
    assert tickets(db)["late"]["subject"] is None
    summary = run(app)
    ticket = tickets(db)["late"]
    assert (ticket["subject"], ticket["status"], ticket["requester_email"]) == (
        "Printer on fire", "pending", "ana@example.com")
    assert ticket["vendor_updated_at"].isoformat() == "2026-01-02T10:00:00+00:00"
    assert summary.changed == 1


def test_a_ticket_with_events_lacking_payloads_is_refined_not_recomputed_from_nothing(app, client, db, learns_kind):
    post(client, "freshdesk", {"ticket": {"id": "old", "subject": "From the first release"}})
    post(client, "freshdesk", {"ticket": {"id": "old", "kind": "incident", "updated_at": "2026-01-02T10:00:00Z"}})
    db.execute("UPDATE events SET payload = NULL WHERE id = (SELECT min(id) FROM events)")
    learns_kind()
    summary = run(app)
    ticket = tickets(db)["old"]
    assert (ticket["subject"], ticket["type"]) == ("From the first release", "incident")
    assert (summary.partial, summary.changed) == (1, 1)


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
