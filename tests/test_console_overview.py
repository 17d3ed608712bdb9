"""The console's overview (/console): webhooks by vendor and outcome over the last hour
and day, authentication failures by reason, the quarantine, the backlog and the relay's
lag, the stream, the reconciler's cursors and the breakers, for the signed-in token's
scope only; Redis away or the database away never makes it a 500."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_py
from signing import fixture, post, url_for, zendesk_signature

from ingestion.redis_guard import STREAM
from ingestion.storage.console_overview import Window
from ingestion.web.console import overview_signals
from ingestion.web.console.overview import BARS, CHART_HEIGHT, VendorArrivals

TOKEN = "overview-operator-token-3c9d7e1f"
SCOPED = "overview-scoped-token-6a2b8c4d"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def csrf_of(response) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', response.data).group(1).decode()


def signed_in(app, token: str = TOKEN):
    """A test client signed in as a browser does: the form's CSRF token, then the token."""
    client = app.test_client()
    form = client.get("/console/login")
    assert client.post("/console/login", data={"token": token, "csrf_token": csrf_of(form)}).status_code == 303
    return client


def page(client) -> str:
    response = client.get("/console/")
    assert response.status_code == 200, response.data[:500]
    return response.get_data(as_text=True)


def element(text: str, test_id: str) -> str:
    """The markup inside the element marked data-test=`test_id`, nested elements included."""
    start = re.search(rf'<(\w+)\b[^>]*\bdata-test="{re.escape(test_id)}"[^>]*>', text)
    assert start, f"no data-test={test_id}"
    name, depth = start.group(1), 1
    for tag in re.compile(rf"<(/?){name}\b[^>]*>").finditer(text, start.end()):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return text[start.end():tag.start()]
    raise AssertionError(f"data-test={test_id} is not closed")


def numbers(text: str, test_id: str) -> list[int]:
    """The numeric cells of a row: (last hour, last day) of an arrivals row."""
    return [int(n) for n in re.findall(r'<td class="num"[^>]*>(\d+)</td>', element(text, test_id))]


def words(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def zendesk(client, body: dict | bytes, account: str):
    """A Zendesk delivery naming its account (X-Zendesk-Account-Id)."""
    return post(client, "zendesk", body, **{"X-Zendesk-Account-Id": account})


def quarantine_one(client, account: str) -> None:
    body = b'{"detail": {"subject": "no id anywhere"}, "type": "zen:event-type:ticket.created"}'
    headers = {**zendesk_signature(body), "X-Zendesk-Account-Id": account, "Content-Type": "application/json"}
    assert client.post(url_for("zendesk"), data=body, headers=headers).status_code == 422


def age(db, table: str, where: str, hours: float) -> None:
    """Move rows back in time, as if they had arrived `hours` ago."""
    assert db.execute(f"UPDATE {table} SET received_at = now() - make_interval(secs => %s) WHERE {where}",
                      (hours * 3600,)).rowcount


@pytest.fixture
def console(make_app, db):
    return make_app(API_TOKENS=f"{TOKEN} {SCOPED}@zendesk/4242")


def test_webhooks_are_counted_by_vendor_and_outcome_over_the_last_hour_and_the_last_day(console, db):
    ingest = console.test_client()
    assert post(ingest, "freshdesk", {"id": 1}).status_code == 201                      # created
    assert post(ingest, "freshdesk", {"id": 1}).status_code == 200                      # already_exists
    assert post(ingest, "freshdesk", {"id": 1, "subject": "on fire"}).status_code == 200  # updated
    assert post(ingest, "freshdesk", {"id": 2}).status_code == 201                      # created, aged below
    assert post(ingest, "freshdesk", {"id": 3}).status_code == 201                      # created, too old below
    assert zendesk(ingest, fixture("zendesk", "event_user_created"), "22129848").json == {"status": "ignored"}
    quarantine_one(ingest, "4242")
    age(db, "events", "ticket_id = (SELECT id FROM tickets WHERE external_id = '2')", 5)
    age(db, "events", "ticket_id = (SELECT id FROM tickets WHERE external_id = '3')", 30)  # outside the day
    age(db, "deliveries", "outcome = 'ignored'", 23.5)

    text = page(signed_in(console))
    assert numbers(text, "outcome-freshdesk-created") == [1, 2]
    assert numbers(text, "outcome-freshdesk-updated") == [1, 1]
    assert numbers(text, "outcome-freshdesk-already_exists") == [1, 1]
    assert numbers(text, "arrivals-freshdesk")[:2] == [3, 4]  # the vendor's total row comes first
    assert numbers(text, "outcome-zendesk-ignored") == [0, 1]
    assert numbers(text, "outcome-zendesk-quarantined") == [1, 1]
    assert numbers(text, "arrivals-zendesk")[:2] == [1, 2]
    assert numbers(text, "arrivals-helpscout")[:2] == [0, 0]  # a vendor with nothing still has its row
    assert 'data-test="outcome-helpscout-' not in text
    assert 'href="/console/events?vendor=freshdesk"' in text and 'href="/console/events?vendor=zendesk"' in text


def test_settled_hours_are_counted_once_per_process_and_what_is_newer_on_every_view(console, make_app, db):
    ingest = console.test_client()
    assert post(ingest, "freshdesk", {"id": 1}).status_code == 201
    age(db, "events", "true", 5)
    client = signed_in(console)
    assert numbers(page(client), "arrivals-freshdesk")[:2] == [0, 1]
    window = Window(db.execute("SELECT now() AS now").fetchone()["now"])
    assert console.extensions["ingestion"].storage.settled_hours.missing(None, window.settled_hours) == []
    assert post(ingest, "freshdesk", {"id": 2}).status_code == 201
    assert numbers(page(client), "arrivals-freshdesk")[:2] == [1, 2]
    other_worker = make_app(API_TOKENS=TOKEN)
    assert numbers(page(signed_in(other_worker)), "arrivals-freshdesk")[:2] == [1, 2]


def test_the_reconcilers_snapshots_and_the_redactions_are_not_webhooks(console, db):
    ingest = console.test_client()
    assert post(ingest, "freshdesk", {"id": 1}).status_code == 201
    db.execute("""INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key)
                  SELECT id, o, 2, t, 'x:' || o FROM tickets,
                         (VALUES ('updated', 'reconciliation'), ('forget', 'redaction')) AS v(o, t)""")
    assert numbers(page(signed_in(console)), "arrivals-freshdesk")[:2] == [1, 1]


def test_each_vendors_chart_is_inline_svg_with_no_style_and_no_script(console, db):
    ingest = console.test_client()
    for n in range(3):
        assert post(ingest, "freshdesk", {"id": 10 + n}).status_code == 201
    assert post(ingest, "freshdesk", {"id": 10}).status_code == 200
    age(db, "events", "ticket_id = (SELECT id FROM tickets WHERE external_id = '12')", 2.5)
    response = signed_in(console).get("/console/")
    text = response.get_data(as_text=True)
    charts = re.findall(r"<svg\b.*?</svg>", text, re.DOTALL)
    assert len(charts) >= 8  # one per vendor, and the legend's swatches
    [chart] = re.findall(r"<svg\b.*?</svg>", element(text, "arrivals-freshdesk"), re.DOTALL)
    assert 'role="img"' in chart and "<title" in chart
    bars = [(kind, int(x), int(count)) for kind, x, height, count, named in re.findall(
        r'<rect class="bar (\w+)" x="(\d+)" y="\d+" width="8" height="([1-9]\d*)" fill="#\w+">'
        r"<title>\d\d:\d\d–\d\d:\d\d UTC: (\d+) (\w+)</title></rect>", chart) if kind == named]
    assert chart.count("<rect") == len(bars)
    newest = (BARS - 1) * 10
    assert sorted(bars) == sorted([("stored", newest, 2), ("skipped", newest, 1), bars[0]])
    assert bars[0][0] == "stored" and bars[0][2] == 1 and newest - 30 <= bars[0][1] <= newest - 20  # 2.5 h before
    for markup in charts:
        assert "style=" not in markup and "<script" not in markup.lower()
    assert "style=" not in text  # nowhere on the page (the CSP refuses inline styles)
    assert all(re.fullmatch(r'<script src="[^"]+" defer>', tag) for tag in re.findall(r"<script[^>]*>", text))
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


NOW = datetime(2026, 12, 5, 10, 20, tzinfo=UTC)


def test_a_chart_stacks_an_hours_kinds_and_scales_to_the_busiest_hour():
    arrivals = VendorArrivals("zendesk", Window(NOW))
    arrivals.add("created", NOW.replace(minute=0), 6, last_hour=6)
    arrivals.add("quarantined", NOW.replace(minute=0), 2, last_hour=1)
    arrivals.add("already_exists", NOW.replace(minute=0) - timedelta(hours=24), 4)
    bars = arrivals.chart()
    newest = [bar for bar in bars if bar.x == (BARS - 1) * 10]
    [oldest] = [bar for bar in bars if bar.x == 0]
    assert [(bar.kind, bar.title) for bar in newest] == [("stored", "10:00–10:20 UTC: 6 stored"),
                                                         ("quarantined", "10:00–10:20 UTC: 2 quarantined")]
    assert sum(bar.height for bar in newest) == CHART_HEIGHT - 1  # the peak hour fills the chart
    assert newest[0].y + newest[0].height == CHART_HEIGHT and newest[1].y + newest[1].height == newest[0].y
    assert (oldest.kind, oldest.height, oldest.title) == (
        "skipped", round(4 * (CHART_HEIGHT - 1) / 8), "10:20–11:00 UTC: 4 skipped")  # the 24 hours began at 10:20
    assert (arrivals.last_hour, arrivals.last_day, arrivals.peak) == (7, 12, 8)
    assert arrivals.outcomes == [("created", 6, 6), ("already_exists", 0, 4), ("quarantined", 1, 2)]
    assert VendorArrivals("front", Window(NOW)).chart() == []


def test_the_window_counts_whole_settled_hours_once_and_the_rest_on_each_view():
    """At 10:20 the 24 hours began at 10:20 yesterday: that hour's part is counted on each
    view, the whole hours from 11:00 yesterday to 10:00 today are settled (counted once),
    and the last hour is counted from 09:20. At 10:05 the 09:00 hour is not settled yet."""
    window = Window(NOW)
    assert (window.settled_hours[0], window.settled_hours[-1], len(window.settled_hours)) == (
        NOW.replace(day=4, hour=11, minute=0), NOW.replace(hour=9, minute=0), 23)
    assert window.params() == {"day_ago": NOW - timedelta(days=1), "edge_to": NOW.replace(day=4, hour=11, minute=0),
                               "settled_to": NOW.replace(minute=0), "hour_ago": NOW - timedelta(hours=1),
                               "tail_from": NOW - timedelta(hours=1)}
    early = Window(NOW.replace(minute=5))
    assert early.settled_hours[-1] == NOW.replace(hour=8, minute=0)
    assert early.params()["tail_from"] == early.params()["settled_to"] == NOW.replace(hour=9, minute=0)


def test_an_authentication_failure_shows_by_vendor_and_reason(console, db):
    before = {(vendor, reason): count for vendor, reason, count in overview_signals.auth_failures()}
    ingest = console.test_client()
    refused = ingest.post(url_for("freshdesk"), data=b'{"id": 1}', headers={"Content-Type": "application/json"})
    assert refused.status_code == 401
    after = {(vendor, reason): count for vendor, reason, count in overview_signals.auth_failures()}
    [(vendor, reason)] = [key for key, count in after.items() if count == before.get(key, 0) + 1]
    assert vendor == "freshdesk"
    text = page(signed_in(console))
    assert numbers(text, f"auth-{vendor}-{reason}") == [after[(vendor, reason)]]
    assert "since the service started" in text


def test_authentication_failures_are_summed_over_the_workers_files(tmp_path):
    """Under gunicorn each worker counts in its own file (PROMETHEUS_MULTIPROC_DIR): the
    page reads their sum, as /metrics does."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = ("from ingestion.metrics import AUTH_FAILURES; "
             "AUTH_FAILURES.labels('zendesk', 'missing_signature').inc({n})")
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True, cwd=ROOT)
    (tmp_path / "counter_999999.db").write_bytes(b"")  # a worker creating its file: nothing yet
    read = ("import json; from ingestion.web.console.overview_signals import auth_failures; "
            "print(json.dumps(auth_failures()))")
    result = subprocess.run([sys.executable, "-c", read], env=env, check=True, cwd=ROOT, capture_output=True, text=True)
    assert json.loads(result.stdout) == [["zendesk", "missing_signature", 5]]


def test_the_quarantine_count(console, db):
    ingest = console.test_client()
    quarantine_one(ingest, "4242")
    quarantine_one(ingest, "1001")
    text = page(signed_in(console))
    assert words(element(text, "quarantine-count")) == "2"
    assert 'href="/console/quarantine"' in element(text, "quarantine")
    assert "waiting since" in words(element(text, "quarantine"))


def test_the_backlog_counts_unpublished_events_and_the_relay_lag_is_the_oldest(console, db):
    ingest = console.test_client()
    for n in range(3):
        assert post(ingest, "freshdesk", {"id": 20 + n}).status_code == 201
    client = signed_in(console)
    assert words(element(page(client), "backlog-count")) == "3"
    age(db, "events", "id = (SELECT min(id) FROM events)", 0.5)
    db.execute("UPDATE events SET published_at = now() WHERE id = (SELECT max(id) FROM events)")
    text = page(client)
    assert words(element(text, "backlog-count")) == "2"
    assert words(element(text, "relay-lag")).startswith("Relay lag 30 min the oldest unpublished event arrived at")
    db.execute("UPDATE events SET published_at = now()")
    text = page(client)
    assert words(element(text, "backlog-count")) == "0" and "every event is published" in text


def test_a_reconcile_cursor_shows_its_last_pass(console, db):
    storage = console.extensions["ingestion"].storage
    since = datetime(2026, 11, 1, tzinfo=UTC)

    def reconcile(account: str, error: str | None):
        def run(cursors):
            cursors.begin(since)
            cursors.advance("page-2", since + timedelta(days=3), done=error is None)
            if error:
                cursors.failed(error)
        where = {"vendor": "zendesk", "account": account, "mode": "reconcile"}
        storage.reconcile_run(f"zendesk/{account}/reconcile", where, run)

    reconcile("4242", None)
    reconcile("1001", "HTTP 500 from the vendor's API")
    text = page(signed_in(console))
    caught_up = words(element(text, "cursor-zendesk-4242-reconcile"))
    assert caught_up.startswith("zendesk 4242 reconcile 2026-11-01 00:00:00 UTC 2026-11-04 00:00:00 UTC 20")
    assert "not yet" not in caught_up
    failed = words(element(text, "cursor-zendesk-1001-reconcile"))
    assert "not yet" in failed and "HTTP 500 from the vendor's API" in failed


def test_a_scoped_token_sees_only_its_accounts_numbers(console, db):
    ingest = console.test_client()
    assert zendesk(ingest, {"ticket_id": "7", "subject": "mine"}, "4242").status_code == 201
    assert zendesk(ingest, {"ticket_id": "7", "subject": "theirs"}, "1001").status_code == 201
    assert zendesk(ingest, {"ticket_id": "8", "subject": "theirs too"}, "1001").status_code == 201
    assert post(ingest, "freshdesk", {"id": 1}).status_code == 201
    quarantine_one(ingest, "4242")
    quarantine_one(ingest, "1001")
    ingest.post(url_for("freshdesk"), data=b"{}")  # an authentication failure
    for account in ("4242", "1001"):
        storage = console.extensions["ingestion"].storage
        storage.reconcile_run(f"zendesk/{account}", {"vendor": "zendesk", "account": account, "mode": "reconcile"},
                              lambda cursors: cursors.begin(datetime(2026, 11, 1, tzinfo=UTC)))

    text = page(signed_in(console, SCOPED))
    assert re.findall(r'data-test="arrivals-(\w+)"', text) == ["zendesk"]
    assert numbers(text, "outcome-zendesk-created") == [1, 1]
    assert numbers(text, "arrivals-zendesk")[:2] == [2, 2]  # its ticket and its quarantined delivery
    assert "freshdesk" not in element(text, "arrivals")
    assert words(element(text, "quarantine-count")) == "1"
    assert words(element(text, "backlog-count")) == "1"
    assert 'data-test="cursor-zendesk-4242-reconcile"' in text and "1001" not in text
    assert "shown to tokens for every account only" in words(element(text, "auth-failures"))
    assert 'data-test="auth-freshdesk-' not in text

    everything = page(signed_in(console))
    assert numbers(everything, "arrivals-zendesk")[:2] == [5, 5]
    assert words(element(everything, "quarantine-count")) == "2"
    assert words(element(everything, "backlog-count")) == "4"
    assert 'data-test="cursor-zendesk-1001-reconcile"' in everything


def test_without_redis_the_stream_is_unavailable_not_a_500(console, db):
    text = page(signed_in(console))
    assert words(element(text, "stream")).startswith("Stream length ingestion:tickets unavailable Redis is not configured")
    assert words(element(text, "breaker-redis")) == "redis not configured REDIS_URL is unset"


def test_the_stream_length_and_the_breaker_then_redis_stopped(make_app, db, own_redis):
    app = make_app(API_TOKENS=TOKEN, REDIS_URL=own_redis.url(), CIRCUIT_BREAKER_THRESHOLD="2",
                   CIRCUIT_BREAKER_TIMEOUT="60")
    feed = redis_py.Redis.from_url(own_redis.url())
    for n in range(3):
        feed.xadd(STREAM, {"event_id": str(n)})
    feed.close()
    client = signed_in(app)
    text = page(client)
    assert words(element(text, "stream-length")) == "3"
    assert words(element(text, "breaker-redis")) == "redis closed this process"

    own_redis.stop()
    text = page(client)
    assert words(element(text, "stream-length")) == "unavailable"
    assert "Redis is unavailable (console_stream_length: ConnectionError)" in words(element(text, "stream"))
    text = page(client)  # the second failure opens the breaker
    assert words(element(text, "breaker-redis")) == "redis open this process"
    text = page(client)
    assert "Redis is unavailable (circuit breaker open)" in words(element(text, "stream"))


def test_a_vendor_api_breaker_shows_from_the_metrics_gauge(console, db):
    from ingestion.metrics import BREAKER_STATE

    BREAKER_STATE.labels("zendesk_api").set(1)
    try:
        assert words(element(page(signed_in(console)), "breaker-zendesk_api")) == "zendesk_api open metrics gauge"
    finally:
        BREAKER_STATE.labels("zendesk_api").set(0)


def test_the_overview_needs_a_session(console):
    response = console.test_client().get("/console/")
    assert response.status_code == 303 and response.headers["Location"].startswith("/console/login")


def test_a_database_outage_shows_the_banner_not_a_500(make_app, db):
    app = make_app(API_TOKENS=TOKEN, DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
                   DB_CONNECT_TIMEOUT="1", DB_POOL_TIMEOUT="0.5")
    response = signed_in(app).get("/console/")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "PostgreSQL cannot be reached" in response.get_data(as_text=True)
