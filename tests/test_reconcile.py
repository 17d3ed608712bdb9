"""The reconciler against a fake vendor API served over real HTTP and the real PostgreSQL:
tickets the webhooks delivered change nothing, older ones are stale, missing or
left-behind ones are repaired through the webhooks' own path; pagination, 429 with
Retry-After, 500s, timeouts and an open breaker are handled politely; a backfill stopped
in the middle resumes without duplicates; two reconcilers never run for one account;
credentials never reach a log line."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timezone

import psycopg
import pytest
from prometheus_client import REGISTRY

from conftest import make_env
from fake_vendor_api import FRESHDESK_KEY, ZENDESK_TOKEN, ZENDESK_USER, FakeVendorAPI
from reconciling import Reconcilers, events
from ingestion.errors import ConfigError
from ingestion.vendors import load_settings
from ingestion.jobs.reconcile.settings import ReconcileSettings
from processes import ROOT
from signing import post

SINCE = datetime(2025, 1, 1, tzinfo=timezone.utc)


def zendesk_ticket(number: int, updated: str, subject: str = "Printer on fire", **extra) -> dict:
    return {"id": number, "subject": subject, "description": "It burns", "status": "open", "priority": "high",
            "type": "question", "requester_id": 5, "assignee_id": 6, "group_id": 7, "organization_id": 8,
            "tags": ["a"], "created_at": "2025-01-01T08:00:00Z", "updated_at": updated, **extra}


def zendesk_webhook(ticket: dict, event_id: str) -> dict:
    """The same version as Zendesk's event subscription sends it (ids as strings, codes upper-case)."""
    detail = {k: str(v) if k == "id" or k.endswith("_id") else v for k, v in ticket.items()}
    detail.update(status=ticket["status"].upper(), priority=ticket["priority"].upper(), type=ticket["type"].upper())
    return {"type": "zen:event-type:ticket.status_changed", "id": event_id, "account_id": 99,
            "subject": f"zen:ticket:{ticket['id']}", "detail": detail, "event": {}}


def freshdesk_ticket(number: int, updated: str, **extra) -> dict:
    return {"id": number, "subject": f"Order {number}", "status": 2, "priority": 1, "type": "Question",
            "requester_id": 40 + number, "tags": [], "created_at": "2025-01-01T00:00:00Z", "updated_at": updated,
            **extra}


#: Vendor API secrets as an admin pastes them (production refuses repeated characters).
API_TOKEN, API_KEY = "zd-api-7Hq2Lx9PwK4m", "fd-key-3Nv8Rt6YsJ2q"
BEARER = "pat-na1-4f9c2e7a-81d3-4b6e-9a05-c7e2d8f1b3a6"

@pytest.fixture
def fake():
    api = FakeVendorAPI()
    yield api
    api.close()


@pytest.fixture
def environment(database_url, fake):
    return make_env(database_url, ZENDESK_API_URL=fake.url, ZENDESK_API_EMAIL="agent@example.com",
                    ZENDESK_API_TOKEN=ZENDESK_TOKEN, ZENDESK_API_ACCOUNT="99", FRESHDESK_API_URL=fake.url,
                    FRESHDESK_API_KEY=FRESHDESK_KEY, RECONCILE_REQUESTS_PER_MINUTE="6000",
                    RECONCILE_TIMEOUT="0.5", RECONCILE_MAX_ATTEMPTS="3", CIRCUIT_BREAKER_THRESHOLD="4",
                    CIRCUIT_BREAKER_TIMEOUT="60", RECONCILE_OVERLAP="60")


@pytest.fixture
def reconciler_for(environment):
    build = Reconcilers(environment)
    yield build
    build.close()


def test_delivered_older_and_missing_tickets_are_told_apart_and_only_repairs_are_stored(
        client, db, fake, reconciler_for):
    delivered = zendesk_ticket(1, "2025-01-02T00:00:00Z")
    behind = zendesk_ticket(2, "2025-01-03T00:00:00Z", subject="Now solved", status="solved")
    newer_stored = zendesk_ticket(3, "2025-01-02T00:00:00Z")
    missing = zendesk_ticket(4, "2025-01-04T00:00:00Z", subject="Never webhooked")
    post(client, "zendesk", zendesk_webhook(delivered, "e1"))
    post(client, "zendesk", zendesk_webhook(zendesk_ticket(2, "2025-01-02T12:00:00Z"), "e2"))  # an older version
    post(client, "zendesk", zendesk_webhook(zendesk_ticket(3, "2025-01-05T00:00:00Z", subject="Newer"), "e3"))
    fake.zendesk = [delivered, behind, newer_stored, missing]

    result = reconciler_for("zendesk").run("backfill", since=SINCE)
    assert result.caught_up and result.error is None
    assert dict(result.outcomes) == {"unchanged": 1, "repaired": 2, "stale": 1}
    assert events(db) == [{"external_id": "2", "outcome": "updated"}, {"external_id": "4", "outcome": "created"}]
    tickets = {r["external_id"]: r for r in db.execute("SELECT * FROM tickets WHERE account = '99'")}
    assert (tickets["2"]["subject"], tickets["2"]["status"]) == ("Now solved", "solved")
    assert tickets["3"]["subject"] == "Newer"  # the stale snapshot changed nothing
    assert tickets["4"]["subject"] == "Never webhooked" and tickets["4"]["requester_id"] == "5"
    # A repair is a stream event like a webhook's; the reconciler's reads are not.
    assert db.execute("SELECT count(*) AS n FROM events WHERE published_at IS NULL "
                      "AND event_type = 'reconciliation'").fetchone()["n"] == 2

    again = reconciler_for("zendesk").run("reconcile")  # nothing new: nothing stored
    assert again.error is None and again.caught_up and len(events(db)) == 2
    last = sample("ingestion_reconcile_last_success_timestamp_seconds", vendor="zendesk", account="99")
    assert abs(last - datetime.now(timezone.utc).timestamp()) < 60


def test_freshdesk_pages_through_more_than_one_page_with_its_key_as_basic_user(db, fake, reconciler_for):
    fake.freshdesk = [freshdesk_ticket(n, f"2025-01-02T{n // 60:02d}:{n % 60:02d}:00Z") for n in range(1, 251)]
    result = reconciler_for("freshdesk").run("backfill", since=SINCE)
    # Keyset paging: each page is page 1 from a second before the last one's latest update
    # (the tickets of that second are read again: unchanged).
    assert (result.caught_up, result.pages, dict(result.outcomes)) == (True, 3, {"repaired": 250, "unchanged": 2})
    assert [(r["args"]["updated_since"], r["args"]["page"]) for r in fake.requests] == [
        ("2025-01-01T00:00:00Z", "1"), ("2025-01-02T01:39:59Z", "1"), ("2025-01-02T03:18:59Z", "1")]
    expected = "Basic " + base64.b64encode(f"{FRESHDESK_KEY}:X".encode()).decode()
    assert set(fake.authorizations) == {expected}
    assert db.execute("SELECT count(*) AS n FROM tickets WHERE vendor = 'freshdesk'").fetchone()["n"] == 250
    # The next pass starts from the latest update seen, less the overlap.
    cursor = db.execute("SELECT cursor FROM reconcile_cursors WHERE vendor = 'freshdesk'").fetchone()["cursor"]
    assert cursor == "2025-01-02T04:09:00+00:00|1"


def test_a_429_waits_what_retry_after_says_and_500s_back_off_then_succeed(db, fake, reconciler_for):
    fake.zendesk = [zendesk_ticket(1, "2025-01-02T00:00:00Z")]
    fake.failures = [("status", 429, {"Retry-After": "7"}), ("status", 500), ("status", 503)]
    reconciler = reconciler_for("zendesk")
    result = reconciler.run("backfill", since=SINCE)
    assert result.caught_up and result.outcomes["repaired"] == 1
    waited = reconciler.client.waited
    assert waited[0] == ("retry_after", 7.0) and 7.0 in reconciler_for.sleeps
    assert [why for why, _ in waited] == ["retry_after", "backoff", "backoff"]  # jittered, growing caps
    assert 0 <= waited[1][1] <= 2 and 0 <= waited[2][1] <= 4
    assert sample("ingestion_reconcile_api_errors_total", vendor="zendesk", status="429") >= 1


def test_an_api_that_keeps_failing_stops_the_run_keeps_the_cursor_and_opens_its_breaker(db, fake, reconciler_for):
    fake.zendesk = [zendesk_ticket(n, f"2025-01-0{n + 1}T00:00:00Z") for n in range(1, 5)]
    fake.zendesk_page = 2
    fake.failures = [("pass",), ("slow", 1.5), ("slow", 1.5), ("slow", 1.5)]  # page 2 times out 3 times
    reconciler = reconciler_for("zendesk")
    first = reconciler.run("backfill", since=SINCE)
    assert (first.pages, first.caught_up, first.outcomes["repaired"]) == (1, False, 2)
    assert "did not answer" in first.error
    row = db.execute("SELECT cursor, last_error FROM reconcile_cursors").fetchone()
    assert row["cursor"].startswith("cursor:") and "did not answer" in row["last_error"]

    fake.failures = [("status", 502)] * 2
    second = reconciler.run("backfill", since=SINCE)  # one more failure opens the breaker (threshold 4)
    assert second.error and sample("ingestion_circuit_breaker_state", name="zendesk_api") == 1
    asked = len(fake.requests)
    third = reconciler.run("backfill", since=SINCE)
    assert "circuit breaker is open" in third.error and len(fake.requests) == asked  # no call made


def test_a_backfill_stopped_midway_resumes_where_it_stopped_without_duplicates(db, fake, reconciler_for):
    fake.zendesk = [zendesk_ticket(n, f"2025-01-{n + 1:02d}T00:00:00Z") for n in range(1, 10)]
    fake.zendesk_page = 3
    pages: list[int] = []
    reconciler_for("zendesk").run("backfill", since=SINCE, progress=lambda r: pages.append(r.pages),
                                  should_stop=lambda: len(pages) >= 2)  # stopped after two pages
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 6
    fake.requests.clear()

    result = reconciler_for("zendesk").run("backfill", since=SINCE)  # a new process, same command
    assert result.caught_up and fake.requests[0]["args"].get("cursor") is not None  # resumed, not restarted
    assert [r["external_id"] for r in events(db)] == [str(n) for n in range(1, 10)]  # each ticket once

    fake.requests.clear()
    reconciler_for("zendesk").run("backfill", since=SINCE, restart=True)
    assert "start_time" in fake.requests[0]["args"] and len(events(db)) == 9  # reread: nothing duplicated


def test_two_reconcilers_never_run_for_one_account(database_url, db, fake, reconciler_for):
    fake.zendesk = [zendesk_ticket(1, "2025-01-02T00:00:00Z")]
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext('ingestion.reconcile/zendesk/99/reconcile'))")
        assert reconciler_for("zendesk").run("reconcile").skipped
        assert fake.requests == []
    assert not reconciler_for("zendesk").run("reconcile").skipped


def test_a_ticket_the_vendor_lists_as_deleted_is_marked_deleted(db, fake, reconciler_for):
    fake.zendesk = [zendesk_ticket(1, "2025-01-02T00:00:00Z", status="deleted")]
    reconciler_for("zendesk").run("backfill", since=SINCE)
    assert db.execute("SELECT deleted_at IS NOT NULL AS deleted FROM tickets").fetchone()["deleted"]
    assert events(db) == [{"external_id": "1", "outcome": "deleted"}]


def test_wrong_credentials_stop_the_run_without_retrying_and_never_reach_a_log(db, fake, reconciler_for, caplog):
    fake.zendesk = [zendesk_ticket(1, "2025-01-02T00:00:00Z")]
    caplog.set_level(logging.DEBUG)
    result = reconciler_for("zendesk", ZENDESK_API_TOKEN="a-wrong-token-0123456789").run("reconcile")
    assert "401" in result.error and len(fake.requests) == 1
    encoded = base64.b64encode(f"{ZENDESK_USER}:a-wrong-token-0123456789".encode()).decode()
    assert "a-wrong-token" not in caplog.text and encoded not in caplog.text


@pytest.mark.parametrize("env, variable", [
    ({"ZENDESK_API_TOKEN": API_TOKEN}, "ZENDESK_API_EMAIL"),
    ({"ZENDESK_API_EMAIL": "a@b.c", "ZENDESK_API_TOKEN": API_TOKEN}, "ZENDESK_SUBDOMAIN"),
    ({"ZENDESK_API_EMAIL": "a@b.c", "ZENDESK_API_TOKEN": API_TOKEN, "ZENDESK_SUBDOMAIN": "bad domain"},
     "ZENDESK_SUBDOMAIN"),
    ({"FRESHDESK_API_KEY": API_KEY, "FRESHDESK_API_URL": "https://user:pw@acme.freshdesk.com"}, "FRESHDESK_API_URL"),
    ({"FRESHDESK_API_KEY": API_KEY, "FRESHDESK_API_URL": "ftp://acme"}, "FRESHDESK_API_URL"),
    ({"FRESHDESK_API_KEY": "tiny-key", "FRESHDESK_DOMAIN": "acme"}, "FRESHDESK_API_KEY"),
    ({"FRESHDESK_API_KEY": "k" * 20, "FRESHDESK_DOMAIN": "acme"}, "FRESHDESK_API_KEY"),
    # An API key over plain http travels in clear (loopback, an egress proxy on the host, is fine).
    ({"FRESHDESK_API_KEY": API_KEY, "FRESHDESK_API_URL": "http://acme.freshdesk.com"}, "FRESHDESK_API_URL"),
    ({"ZENDESK_API_EMAIL": "a@b.c", "ZENDESK_API_TOKEN": API_TOKEN, "ZENDESK_API_URL": "http://10.0.0.7:8080"},
     "ZENDESK_API_URL"),
    # Bearer tokens are vetted like every API secret, their URLs the same way.
    ({"INTERCOM_API_TOKEN": "change-me"}, "INTERCOM_API_TOKEN"),
    ({"HUBSPOT_API_TOKEN": "pat-na1-short"}, "HUBSPOT_API_TOKEN"),
    ({"INTERCOM_API_TOKEN": BEARER, "INTERCOM_API_URL": "http://api.eu.intercom.io"}, "INTERCOM_API_URL"),
    ({"HUBSPOT_API_TOKEN": BEARER, "HUBSPOT_API_URL": "https://api.hubapi.com?hapikey=x"}, "HUBSPOT_API_URL"),
    # Unreadable URLs: a traceback at start before (a review's cases).
    ({"ZENDESK_API_EMAIL": "a@b.c", "ZENDESK_API_TOKEN": API_TOKEN, "ZENDESK_API_URL": "https://[acme.zendesk.com"},
     "ZENDESK_API_URL"),
    ({"INTERCOM_API_TOKEN": BEARER, "INTERCOM_API_URL": "https://api.intercom.io:99999"}, "INTERCOM_API_URL"),
    ({"RECONCILE_INTERVAL": "0"}, "RECONCILE_INTERVAL")])
def test_a_bad_api_setting_is_refused_naming_its_variable(database_url, env, variable):
    with pytest.raises(ConfigError) as refused:
        load_settings({"DATABASE_URL": database_url, **env})
        ReconcileSettings.from_env(env)
    assert refused.value.variable == variable
    secrets = [value for name, value in env.items() if name.endswith(("_TOKEN", "_KEY"))]
    assert all(value not in str(refused.value) for value in secrets)


def test_a_redirect_is_not_followed_with_the_credentials(db, fake, reconciler_for):
    from fake_vendor_api import FakeVendorAPI as Elsewhere

    other = Elsewhere()
    try:
        fake.failures = [("status", 302, {"Location": other.url + "/api/v2/incremental/tickets/cursor.json"})]
        result = reconciler_for("zendesk").run("reconcile")
        assert "302" in result.error and other.authorizations == [] and other.requests == []
    finally:
        other.close()


def test_the_vendors_own_hosts_are_the_default_base_urls(database_url):
    settings = load_settings({"DATABASE_URL": database_url, "ZENDESK_API_EMAIL": "a@b.c",
                                  "ZENDESK_API_TOKEN": API_TOKEN, "ZENDESK_SUBDOMAIN": "acme",
                                  "FRESHDESK_API_KEY": API_KEY, "FRESHDESK_DOMAIN": "acme.freshdesk.com"})
    apis = settings.vendor_apis
    assert apis["zendesk"].base_url == "https://acme.zendesk.com"
    assert apis["freshdesk"].base_url == "https://acme.freshdesk.com"
    assert (apis["zendesk"].user, apis["freshdesk"].password) == ("a@b.c/token", "X")
    assert API_TOKEN not in repr(settings) and API_KEY not in repr(settings)
    bearer = load_settings({"DATABASE_URL": database_url, "INTERCOM_API_TOKEN": BEARER,
                            "HUBSPOT_API_TOKEN": BEARER, "HUBSPOT_API_ACCOUNT": "62515"}).vendor_apis
    assert (bearer["intercom"].base_url, bearer["intercom"].scheme, bearer["intercom"].account) == (
        "https://api.intercom.io", "bearer", None)
    assert (bearer["hubspot"].base_url, bearer["hubspot"].token, bearer["hubspot"].account) == (
        "https://api.hubapi.com", BEARER, "62515")
    assert BEARER not in repr(bearer)


def test_the_commands_backfill_and_reconcile_once_print_json_and_log_no_credentials(environment, db, fake):
    fake.zendesk = [zendesk_ticket(n, f"2025-01-0{n + 1}T00:00:00Z") for n in range(1, 4)]
    env = {**os.environ, **environment, "LOG_LEVEL": "DEBUG"}
    done = subprocess.run([sys.executable, "-m", "ingestion", "backfill", "zendesk", "--since", "2025-01-01"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["caught_up"], summary["tickets"]) == (True, {"repaired": 3})
    once = subprocess.run([sys.executable, "-m", "ingestion", "reconcile", "--once"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert once.returncode == 0, once.stderr
    assert [json.loads(line)["vendor"] for line in once.stdout.splitlines()] == ["freshdesk", "zendesk"]
    for output in (done.stdout + done.stderr, once.stdout + once.stderr):
        assert ZENDESK_TOKEN not in output and FRESHDESK_KEY not in output and "Basic " not in output


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def test_without_a_configured_account_tickets_land_in_the_account_the_webhooks_use(
        client, db, fake, reconciler_for, environment):
    environment.pop("ZENDESK_API_ACCOUNT")
    delivered = zendesk_ticket(1, "2025-01-02T00:00:00Z")
    post(client, "zendesk", zendesk_webhook(delivered, "e1"))  # stored under account 99 (its account_id)
    fake.zendesk = [delivered, zendesk_ticket(2, "2025-01-03T00:00:00Z")]
    result = reconciler_for("zendesk").run("backfill", since=SINCE)
    assert dict(result.outcomes) == {"unchanged": 1, "repaired": 1}
    assert {r["account"] for r in db.execute("SELECT account FROM tickets")} == {"99"}

    # With two accounts in use, which one the API belongs to cannot be told (ticket
    # numbers are per account): the run refuses rather than merge two customers' tickets.
    post(client, "zendesk", zendesk_webhook(zendesk_ticket(1, "2025-01-02T00:00:00Z"), "e3") | {"account_id": 7})
    fake.zendesk.append(zendesk_ticket(3, "2025-01-06T00:00:00Z", subject="Moved on"))
    refused = reconciler_for("zendesk").run("backfill", since=SINCE, restart=True)
    assert "ZENDESK_API_ACCOUNT" in refused.error and refused.pages == 0
    assert db.execute("SELECT count(*) AS n FROM tickets WHERE external_id = '3'").fetchone()["n"] == 0
    chosen = reconciler_for("zendesk", ZENDESK_API_ACCOUNT="7").run("backfill", since=SINCE, restart=True)
    assert chosen.error is None
    assert db.execute("SELECT account FROM tickets WHERE external_id = '3'").fetchone()["account"] == "7"


def test_freshdesk_follows_its_link_header_and_zendesk_an_after_url(db, fake, reconciler_for, monkeypatch):
    from ingestion.vendors.freshdesk import export as freshdesk_export
    from ingestion.vendors.zendesk import export as zendesk_export

    page = freshdesk_export.read([freshdesk_ticket(1, "2025-01-02T00:00:00Z")],
                                 {"link": '<https://acme.freshdesk.com/api/v2/tickets?page=2>; rel="next"'},
                                 None, SINCE, 60)
    assert (page.done, page.cursor) == (False, "2025-01-01T23:59:59+00:00|1")  # a short page, but a next link
    same_second = [freshdesk_ticket(n, "2025-01-02T00:00:00Z") for n in range(100)]
    page = freshdesk_export.read(same_second, {}, "2025-01-01T23:59:59+00:00|4", SINCE, 60)
    assert (page.done, page.cursor) == (False, "2025-01-01T23:59:59+00:00|5")  # one second: the next page number
    page = freshdesk_export.read(same_second, {}, "2025-01-01T23:59:59+00:00|300", SINCE, 60)
    assert page.cursor == "2025-01-02T00:00:00+00:00|1"  # past Freshdesk's last page: the next second
    page = zendesk_export.read({"tickets": [], "after_url": "https://acme.zendesk.com/api/v2/incremental/"
                                "tickets/cursor.json?cursor=xyz%3D&per_page=1000", "end_of_stream": False},
                               {}, None, SINCE, 60)
    assert (page.done, page.cursor) == (False, "cursor:xyz=")
    with pytest.raises(ValueError):
        zendesk_export.read({"tickets": "nope"}, {}, None, SINCE, 60)


def test_a_ticket_postgresql_cannot_store_is_skipped_and_the_run_goes_on(db, fake, reconciler_for):
    fake.zendesk = [zendesk_ticket(1, "2025-01-02T00:00:00Z", via={"source": {"rel": "\ud83d"}}),
                    zendesk_ticket(2, "2025-01-03T00:00:00Z", subject="Fine")]
    result = reconciler_for("zendesk").run("backfill", since=SINCE)
    assert result.caught_up and dict(result.outcomes) == {"unreadable": 1, "repaired": 1}


def test_requests_are_paced_under_the_configured_rate(db, fake, reconciler_for):
    fake.zendesk = [zendesk_ticket(n, f"2025-01-0{n + 1}T00:00:00Z") for n in range(1, 5)]
    fake.zendesk_page = 1
    now = [0.0]
    reconciler = reconciler_for("zendesk", RECONCILE_REQUESTS_PER_MINUTE="30")  # one every 2 s
    reconciler.client.clock = lambda: now[0]
    reconciler.client.sleep = lambda seconds: now.__setitem__(0, now[0] + seconds)
    result = reconciler.run("backfill", since=SINCE)
    assert result.pages == 4 and now[0] == pytest.approx(6.0)  # 4 requests: 3 waits of 2 s


def test_the_backfill_progress_line_shows_how_far_and_an_eta(db, fake, reconciler_for):
    import io

    from ingestion.jobs.reconcile.runner import ProgressLine

    fake.zendesk = [zendesk_ticket(n, f"2025-0{n}-01T00:00:00Z") for n in range(1, 5)]
    fake.zendesk_page = 2
    stream = io.StringIO()
    reconciler_for("zendesk").run("backfill", since=SINCE, progress=ProgressLine(stream))
    lines = stream.getvalue().split("\r")[1:]
    assert len(lines) == 2 and "ETA" in lines[0] and "2 tickets" in lines[0]
    assert "100.0%" in lines[1] and "4 tickets, 4 repaired" in lines[1]
    assert 0 < float(lines[0].split("]")[1].split("%")[0]) < 100


def test_a_backfill_process_killed_midway_resumes_without_duplicates(environment, db, fake):
    import signal
    import time

    fake.zendesk = [zendesk_ticket(n, f"2025-01-{n + 1:02d}T00:00:00Z") for n in range(1, 7)]
    fake.zendesk_page = 2
    fake.failures = [("pass",), ("slow", 30)]  # the second page hangs: the process is killed there
    env = {**os.environ, **environment, "RECONCILE_TIMEOUT": "60"}
    command = [sys.executable, "-m", "ingestion", "backfill", "zendesk", "--since", "2025-01-01"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(fake.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 2
    fake.failures.clear()

    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert fake.requests[2]["args"].get("cursor")  # resumed from the saved cursor
    assert [r["external_id"] for r in events(db)] == [str(n) for n in range(1, 7)]  # each ticket once


def test_the_reconcile_process_picks_up_new_changes_and_stops_at_once_on_sigterm(environment, db, fake):
    import signal
    import time
    from datetime import timedelta

    def recent(number: int, minutes_ago: int) -> dict:
        moment = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
        return zendesk_ticket(number, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def wait_until(condition, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.1)

    def stored() -> set[str]:
        return {r["external_id"] for r in db.execute("SELECT external_id FROM tickets")}

    fake.zendesk = [recent(1, 30)]
    env = {**os.environ, **environment, "RECONCILE_INTERVAL": "1"}
    env.pop("FRESHDESK_API_KEY")
    process = subprocess.Popen([sys.executable, "-m", "ingestion", "reconcile"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: stored() == {"1"})
        fake.zendesk.append(recent(2, 5))  # a change after the first pass: the next one finds it
        wait_until(lambda: stored() == {"1", "2"})
        fake.failures = [("status", 429, {"Retry-After": "600"})]  # the vendor asks for ten minutes
        asked = len(fake.requests)
        wait_until(lambda: len(fake.requests) > asked)
        time.sleep(0.3)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert time.monotonic() - stopped_at < 3  # the wait was cut short, not sat out
    finally:
        if process.poll() is None:
            process.kill()


def test_a_partial_camelcase_trigger_body_is_completed_not_counted_as_lost(client, db, fake, reconciler_for):
    """What admins really send (an id and a comment, camelCase, no timestamp): the
    reconciler fills in what the body never carried (`enriched`, not `repaired`: the
    webhook did arrive), and the comment event stays in the history."""
    post(client, "zendesk", {"ticketId": "1", "latestComment": "Printer still on fire"},
         **{"X-Zendesk-Account-Id": "99"})
    fake.zendesk = [zendesk_ticket(1, "2025-01-02T00:00:00Z")]
    result = reconciler_for("zendesk").run("backfill", since=SINCE)
    assert dict(result.outcomes) == {"enriched": 1}
    ticket = db.execute("SELECT subject, status, vendor_updated_at FROM tickets").fetchone()
    assert (ticket["subject"], ticket["status"]) == ("Printer on fire", "open")
    assert [(e["event_type"], e["comment_body"]) for e in db.execute(
        "SELECT event_type, comment_body FROM events ORDER BY id")] == [
        ("ticket.comment_added", "Printer still on fire"), ("reconciliation", None)]
    again = reconciler_for("zendesk").run("backfill", since=SINCE, restart=True)
    assert dict(again.outcomes) == {"unchanged": 1}  # the same version again: nothing stored
