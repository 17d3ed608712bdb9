"""Retention against the real PostgreSQL: EVENT_RETENTION_DAYS empties the personal data
of older events and nothing newer; the rows, the tickets and the other tables' rules
stay as they were; the prune command reports what it did."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client import REGISTRY

from conftest import make_env
from ingestion.vendors import load_settings
from ingestion.jobs.retention import prune
from signing import post

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERSONAL = ("payload", "comment_body", "comment_author", "comment_public", "changes")


def just_past(line: str) -> str:
    """SQL for a moment just older than `line` (an interval back from now) and still in
    the month (UTC) the line falls in: a minute older, or less in a month's first minute.

    Why: prune() first drops whole every month that ended before its line
    (storage/partitions.py), events and all. An event aged days past the line sat in such
    a month on some days of every month (10 days back with a 7-day retention failed from
    the 8th to the 10th), and the test counted a row that no longer existed."""
    moment = f"(now() - interval '{line}')"
    return f"{moment} - least(interval '1 minute', ({moment} - date_trunc('month', {moment}, 'UTC')) / 2)"


def pruned(kind: str) -> float:
    return REGISTRY.get_sample_value("ingestion_pruned_rows_total", {"kind": kind}) or 0.0


def test_event_retention_empties_old_events_personal_data_and_keeps_the_rows(app, client, db):
    for n in range(3):
        post(client, "zendesk", {"ticket": {"id": f"ret-{n}", "requester": "Ana <ana@example.com>",
                                            "latest_comment": f"comment {n}"}})
    db.execute(f"UPDATE events SET received_at = {just_past('90 days')} "
               "WHERE ticket_id IN (SELECT id FROM tickets WHERE external_id IN ('ret-0', 'ret-1'))")
    db.execute("UPDATE deliveries SET received_at = now() - interval '91 days'")
    before_rows = db.execute("SELECT id, outcome, revision, event_type FROM events ORDER BY id").fetchall()
    tickets_before = db.execute("SELECT * FROM tickets ORDER BY external_id").fetchall()
    storage = app.extensions["ingestion"].storage
    before = pruned("event_payloads")

    kept = prune(storage, load_settings(make_env(app.extensions["ingestion"].settings.database_url)))
    assert kept["event_payloads"] == 0  # EVENT_RETENTION_DAYS unset: events keep everything
    settings = load_settings(make_env(app.extensions["ingestion"].settings.database_url,
                                          EVENT_RETENTION_DAYS="90"))
    assert prune(storage, settings)["event_payloads"] == 2
    assert pruned("event_payloads") == before + 2

    rows = {r["external_id"]: r for r in db.execute(
        "SELECT t.external_id, e.* FROM events e JOIN tickets t ON t.id = e.ticket_id").fetchall()}
    for old in ("ret-0", "ret-1"):
        assert all(rows[old][column] is None for column in PERSONAL), rows[old]
    assert rows["ret-2"]["payload"] is not None and rows["ret-2"]["comment_body"] == "comment 2"
    assert db.execute("SELECT id, outcome, revision, event_type FROM events ORDER BY id").fetchall() == before_rows
    assert db.execute("SELECT * FROM tickets ORDER BY external_id").fetchall() == tickets_before
    assert prune(storage, settings)["event_payloads"] == 0  # idempotent


def test_the_prune_command_reports_each_kind(database_url, client, db):
    post(client, "freshdesk", {"ticket": {"id": "cmd", "subject": "old"}})
    db.execute(f"UPDATE events SET received_at = {just_past('7 days')}")
    result = subprocess.run([sys.executable, "-m", "ingestion", "prune"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **make_env(database_url, EVENT_RETENTION_DAYS="7")}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("deleted 0 delivery rows and 0 quarantine entries; "
                                     "emptied the personal data of 1 events")
    assert db.execute("SELECT payload FROM events").fetchone()["payload"] is None


def test_with_a_stream_retention_waits_for_the_relay_to_publish_an_event(app, client, db, redis_url):
    """Retention emptied `changes` of events the relay had not published yet, and the
    stream entry is made from them: a restore went out as a plain update, a redaction's
    entry without what consumers are to forget. Months were already kept (partitions)."""
    post(client, "zendesk", {"ticket": {"id": "late-relay", "requester": "Ana <ana@example.com>"}})
    db.execute(f"UPDATE events SET received_at = {just_past('90 days')}")
    storage = app.extensions["ingestion"].storage
    streamed = load_settings(make_env(app.extensions["ingestion"].settings.database_url,
                                      EVENT_RETENTION_DAYS="90", REDIS_URL=redis_url))
    assert streamed.has_stream and prune(storage, streamed)["event_payloads"] == 0
    assert db.execute("SELECT payload IS NOT NULL AS kept FROM events").fetchone()["kept"]
    db.execute("UPDATE events SET published_at = now()")  # the relay caught up
    assert prune(storage, streamed)["event_payloads"] == 1
    unstreamed = load_settings(make_env(app.extensions["ingestion"].settings.database_url, EVENT_RETENTION_DAYS="90"))
    post(client, "zendesk", {"ticket": {"id": "no-relay", "requester": "Bo <bo@example.com>"}})
    db.execute(f"UPDATE events SET received_at = {just_past('90 days')} WHERE published_at IS NULL")
    assert not unstreamed.has_stream and prune(storage, unstreamed)["event_payloads"] == 1  # nothing waits for it


def test_with_redis_but_no_relay_retention_waits_a_week_past_its_date_then_goes_on(app, client, db, redis_url):
    """REDIS_URL alone does not say a relay runs (Redis also holds the rate limits; the
    README's deployment without a relay prunes from cron): events nobody publishes were
    kept for ever, their personal data with them. They wait UNPUBLISHED_GRACE (a week)."""
    post(client, "zendesk", {"ticket": {"id": "no-relay-ever", "requester": "Ana <ana@example.com>"}})
    storage = app.extensions["ingestion"].storage
    streamed = load_settings(make_env(app.extensions["ingestion"].settings.database_url,
                                      EVENT_RETENTION_DAYS="90", REDIS_URL=redis_url))
    db.execute("UPDATE events SET received_at = now() - interval '95 days'")
    assert prune(storage, streamed)["event_payloads"] == 0  # within the week: a relay may still publish it
    db.execute(f"UPDATE events SET received_at = {just_past('97 days')}")  # just past the week
    assert prune(storage, streamed)["event_payloads"] == 1
    assert db.execute("SELECT payload FROM events").fetchone()["payload"] is None
