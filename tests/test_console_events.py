"""The console's events page (issue 22, item 3): every stored event newest first, keyset
pages, filters that combine and live in the URL, the payload search by JSON containment
on its GIN index, the live tail, and a scoped token's account as the only one it sees.

Events come in as real webhooks (signing.post), through the whole ingestion path; the
page is read as a browser gets it, after signing in with the form."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from ingestion.storage.console_events import page_sql
from ingestion.web.console import events as events_page
from signing import post

TOKEN = "console-events-token-0123456789"
SCOPED = "console-scoped-token-0123456789"
TOKENS = f"{TOKEN} {SCOPED}@freshdesk/acme"
EVENTS = "/console/events"
TAIL = "/console/events/tail"


class Rows(HTMLParser):
    """The event rows of a page or a tail fragment: id, cell texts, links, marks, classes;
    and every element with an hx-get (the live tail's poller)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.pollers: list[dict] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "hx-get" in attrs:
            self.pollers.append(attrs)
        if tag == "tr" and "data-event-id" in attrs:
            self.rows.append({"id": int(attrs["data-event-id"]), "cells": [], "links": [], "marks": [],
                              "class": attrs.get("class", ""), "times": []})
        elif self.rows and tag == "td":
            self._cell = []
        elif self.rows and tag == "a" and self._cell is not None:
            self.rows[-1]["links"].append(attrs["href"])
        elif self.rows and tag == "span" and "mark" in attrs.get("class", ""):
            self.rows[-1]["marks"].append(attrs["class"])
        elif self.rows and tag == "time":
            self.rows[-1]["times"].append(attrs)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell).strip())
            self._cell = None

    @property
    def ids(self) -> list[int]:
        return [row["id"] for row in self.rows]


def sign_in(client, token: str = TOKEN) -> None:
    """As a browser does: the form's CSRF token, then the API token."""
    form = client.get("/console/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = client.post("/console/login", data={"token": token, "csrf_token": csrf})
    assert response.status_code == 303, response.get_data(as_text=True)


@pytest.fixture
def console_app(make_app, db):
    return make_app(API_TOKENS=TOKENS)


@pytest.fixture
def console(console_app):
    client = console_app.test_client()
    sign_in(client)
    return client


@pytest.fixture
def deliver(console_app, add_source):
    """deliver(payload, vendor="freshdesk", account=None, request_id=None): one real
    webhook, stored; returns the event's id."""
    client = console_app.test_client()
    sources = set()

    def send(payload, vendor="freshdesk", account=None, request_id=None):
        if account and (vendor, account) not in sources:
            add_source(vendor, account, "hmac" if vendor == "freshdesk" else "signing")
            sources.add((vendor, account))
        response = post(client, vendor, payload, account, **({"X-Request-ID": request_id} if request_id else {}))
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        return int(response.json["event_id"])

    return send


@pytest.fixture
def add_source(console_app):
    services = console_app.extensions["ingestion"]

    def add(vendor, account, method):
        assert services.storage.add_credential(vendor, account, method, "env", None)

    return add


def page(client, expect: int = 200, **args) -> tuple[str, Rows]:
    response = client.get(EVENTS, query_string=args)
    html = response.get_data(as_text=True)
    assert response.status_code == expect, html
    return html, Rows(html)


@pytest.fixture
def history(deliver):
    """Five events of four tickets, two accounts, the outcomes and comments a page shows."""
    ids = {}
    ids["created"] = deliver({"id": 1, "subject": "Printer on fire", "status": 5, "priority": 2,
                              "requester": {"email": "Ada@Example.com"}, "updated_at": "2025-01-02T00:00:00Z"},
                             request_id="req-created-1")
    ids["stale"] = deliver({"id": 1, "subject": "Older news", "status": 2, "updated_at": "2025-01-01T00:00:00Z"})
    ids["public"] = deliver({"freshdesk_webhook": {"ticket_id": 1, "ticket_latest_public_comment": "We are on it"}})
    ids["private"] = deliver({"ticket_id": 2, "id": 9, "body_text": "A private note", "private": True})
    ids["acme"] = deliver({"id": 1, "subject": "Acme's own ticket 1", "status": 5, "nested": {"tags": ["vip", "eu"]},
                           "requester": {"email": "bob@acme.test"}}, account="acme")
    return ids


# --- the list -----------------------------------------------------------------------------
def test_every_event_newest_first_with_what_a_row_shows(console, history):
    html, rows = page(console)
    assert rows.ids == sorted(history.values(), reverse=True)
    by_id = {row["id"]: row for row in rows.rows}

    created = by_id[history["created"]]
    when, vendor, account, ticket, event_type, outcome, comment, request_id = created["cells"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", when)
    assert re.fullmatch(r"\d+ s ago", created["times"][0]["title"])  # relative, on hover
    assert (vendor, account, ticket, event_type, outcome) == ("freshdesk", "default", "1", "ticket.snapshot",
                                                               "created")
    assert (comment, request_id) == ("—", "req-created-1")
    assert created["links"] == ["/console/tickets/freshdesk/1?account="]
    assert "mark created" in created["marks"]

    assert "mark stale" in by_id[history["stale"]]["marks"]
    assert by_id[history["public"]]["cells"][6] == "public" and "mark public" in by_id[history["public"]]["marks"]
    assert by_id[history["private"]]["cells"][6] == "private"
    assert "mark private" in by_id[history["private"]]["marks"]
    assert by_id[history["acme"]]["links"] == ["/console/tickets/freshdesk/1?account=acme"]
    assert by_id[history["acme"]]["cells"][2] == "acme"
    # what the Content-Security-Policy forbids is not there
    assert "style=" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<th scope=\"col\">Received</th>" in html


def test_the_page_needs_a_session(console_app, history):
    client = console_app.test_client()
    response = client.get(EVENTS + "?outcome=created")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/console/login?next=/console/events")
    assert client.get(TAIL, headers={"HX-Request": "true"}).status_code == 401


def test_a_database_outage_is_the_banner_not_a_500(make_app, db):
    client = make_app(API_TOKENS=TOKENS, DATABASE_URL="postgresql://postgres@127.0.0.1:9/nowhere",
                      DB_POOL_TIMEOUT="0.2", DB_CONNECT_TIMEOUT="1").test_client()
    sign_in(client)
    response = client.get(EVENTS)
    assert response.status_code == 503
    assert "PostgreSQL cannot be reached right now" in response.get_data(as_text=True)


# --- filters ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, expected", [
    ({"vendor": "freshdesk"}, ["created", "stale", "public", "private", "acme"]),
    ({"vendor": "zendesk"}, []),
    ({"account": "acme"}, ["acme"]),
    ({"event_type": "ticket.comment_added"}, ["public", "private"]),
    ({"outcome": "stale"}, ["stale"]),
    ({"outcome": "created"}, ["created", "private", "acme"]),
    ({"external_id": "2"}, ["private"]),
    ({"external_id": "1"}, ["created", "stale", "public", "acme"]),
    ({"email": "ada@example.COM"}, ["created", "stale", "public"]),  # the ticket's requester, any case
    ({"email": "nobody@example.com"}, []),
])
def test_each_filter_alone(console, history, args, expected):
    _, rows = page(console, **args)
    assert rows.ids == sorted((history[name] for name in expected), reverse=True)


def test_filters_combine(console, history):
    _, rows = page(console, vendor="freshdesk", account="acme", external_id="1")
    assert rows.ids == [history["acme"]]
    _, rows = page(console, external_id="1", outcome="created", email="ada@example.com")
    assert rows.ids == [history["created"]]
    _, rows = page(console, external_id="1", event_type="ticket.snapshot", contains='{"status": 5}')
    assert rows.ids == [history["acme"], history["created"]]
    _, rows = page(console, account="acme", outcome="stale")
    assert rows.ids == []


def test_a_time_range_in_utc(console, history, db):
    base = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    for minutes, name in enumerate(["created", "stale", "public", "private", "acme"]):
        db.execute("UPDATE events SET received_at = %s WHERE id = %s", (base + timedelta(minutes=minutes), history[name]))
    _, rows = page(console, **{"from": "2025-03-01T12:01", "until": "2025-03-01T12:03"})
    assert rows.ids == [history["public"], history["stale"]]  # from included, until not
    html, rows = page(console, **{"from": "2025-03-01T14:02:00+02:00"})  # an offset: 12:02 UTC
    assert rows.ids == [history["acme"], history["private"], history["public"]]
    assert 'value="2025-03-01T12:02:00"' in html  # shown back in UTC
    _, rows = page(console, until="2025-03-01")  # a date: its midnight
    assert rows.ids == []
    row = page(console)[1].rows[-1]
    assert row["cells"][0] == "2025-03-01 12:00:00 UTC" and row["times"][0]["datetime"].startswith("2025-03-01T12:00")


def test_the_filters_live_in_the_url_and_the_form_shows_them(console, history, monkeypatch):
    monkeypatch.setattr(events_page, "PAGE_SIZE", 1)
    args = {"vendor": "freshdesk", "outcome": "created", "contains": '{"status": 5}', "email": "ada@example.com",
            "external_id": "1", "account": "", "event_type": "ticket.snapshot"}
    html, rows = page(console, **args)
    assert rows.ids == [history["created"]]
    assert re.search(r'<form method="get" action="/console/events"', html)
    assert re.search(r'<option value="freshdesk"\s+selected>', html) and re.search(r'<option value="created"\s+selected>', html)
    assert 'value="{&#34;status&#34;: 5}"' in html and 'value="ada@example.com"' in html
    html, rows = page(console, vendor="freshdesk", outcome="created")
    older = re.search(r'href="([^"]+)" id="page-older"', html).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(older).query) == {"vendor": ["freshdesk"], "outcome": ["created"],
                                               "before": [str(rows.ids[0])]}


def test_payload_search_by_json_containment(console, history):
    for contains, expected in [
        ('{"status": 5}', ["created", "acme"]),
        ('{"status": 2}', ["stale"]),
        ('{"status": "5"}', []),  # containment is typed: the string is not the number
        ('{"nested": {"tags": ["eu"]}}', ["acme"]),  # nested, and an array holding an element
        ('{"requester": {"email": "Ada@Example.com"}}', ["created"]),
        ('{"freshdesk_webhook": {"ticket_id": 1}}', ["public"]),
        ('{"missing": true}', []),
        ("{}", ["created", "stale", "public", "private", "acme"]),
    ]:
        _, rows = page(console, contains=contains)
        assert rows.ids == sorted((history[name] for name in expected), reverse=True), contains


@pytest.mark.parametrize("contains, message", [
    ('{"status": 5', "Payload search: this is not JSON"),
    ("status=5", "Payload search: this is not JSON"),
    ('{"status": NaN}', "NaN is not JSON"),
    ("[5]", "is JSON but not an object"),
    ("5", "is JSON but not an object"),
    ('"status"', "is JSON but not an object"),
    ('{"a": "\\u0000"}', "Payload search: The database refused a value"),  # Python reads it; PostgreSQL does not
])
def test_a_payload_search_that_is_not_a_json_object_is_a_message(console, history, contains, message):
    html, rows = page(console, expect=400, contains=contains)
    assert message in html and 'data-test="filter-problem"' in html
    assert rows.ids == []
    assert "value=\"" + contains.replace('"', "&#34;") + "\"" in html  # kept in the field, to correct


@pytest.mark.parametrize("args, message", [
    ({"vendor": "nosuch"}, "Unknown vendor &#39;nosuch&#39;"),
    ({"outcome": "exploded"}, "Unknown outcome &#39;exploded&#39;"),
    ({"from": "yesterday"}, "From: &#39;yesterday&#39; is not a time"),
    ({"until": "2025-13-01"}, "Until: &#39;2025-13-01&#39; is not a time"),
    ({"from": "2025-03-02", "until": "2025-03-01"}, "The time range is empty"),
    ({"before": "abc"}, "before=&#39;abc&#39; is not an event id"),
    ({"after": "-1"}, "after=&#39;-1&#39; is not an event id"),
    ({"before": str(2**63)}, "is not an event id"),
    ({"before": "1" * 5000}, "is not an event id"),  # past int()'s 4300 digits: a 500 before
    ({"after": "9" * 4400}, "is not an event id"),
    ({"before": "1", "after": "2"}, "not both"),
    ({"account": "a\x00b"}, "The field account holds a NUL character"),
])
def test_a_bad_filter_value_is_a_message_not_a_500(console, history, args, message):
    html, rows = page(console, expect=400, **args)
    assert message in html and rows.ids == []


def test_a_search_that_takes_too_long_is_stopped_and_said(console, history, monkeypatch):
    """Not an outage banner after the server's statement_timeout: the page says to narrow
    the search, and the connection serves the next page at once."""
    from ingestion.storage import console_events

    slow = dict(console_events.FILTERS, event_type="e.event_type = %(event_type)s AND pg_sleep(0.2) IS NOT NULL")
    monkeypatch.setattr(console_events, "FILTERS", slow)
    monkeypatch.setattr(console_events, "SEARCH_TIMEOUT_MS", 50)
    html, rows = page(console, event_type="ticket.snapshot")
    assert rows.ids == [] and 'data-test="search-timed-out"' in html and "PostgreSQL cannot be reached" not in html
    assert page(console)[1].ids == sorted(history.values(), reverse=True)


# --- keyset pages -------------------------------------------------------------------------
def test_pages_older_then_newer_cover_everything_once(console, deliver, db, monkeypatch):
    monkeypatch.setattr(events_page, "PAGE_SIZE", 4)
    ids = [deliver({"id": 100 + n, "subject": f"ticket {n}"}) for n in range(11)]
    # Several events received at the same moment (a batch is one transaction): the id
    # breaks the tie, so no page boundary loses or repeats one of them.
    db.execute("UPDATE events SET received_at = '2025-03-01T12:00:00Z' WHERE id = ANY(%s)", (ids[2:9],))
    db.execute("UPDATE events SET received_at = '2025-03-01T11:00:00Z' WHERE id = ANY(%s)", (ids[:2],))
    expected = sorted(ids[9:], reverse=True) + sorted(ids[2:9], reverse=True) + sorted(ids[:2], reverse=True)

    seen, pages, html = [], [], page(console)[0]
    while True:
        rows = Rows(html)
        pages.append(rows.ids)
        seen += rows.ids
        older = re.search(r'href="/console/events\?before=(\d+)" id="page-older"', html)
        if not older:
            break
        html = page(console, before=older.group(1))[0]
    assert seen == expected and [len(p) for p in pages] == [4, 4, 3]
    assert 'id="page-newer"' in html and 'id="page-newest"' in html

    back = []
    while True:
        newer = re.search(r'href="/console/events\?after=(\d+)" id="page-newer"', html)
        if not newer:
            break
        html = page(console, after=newer.group(1))[0]
        back.append(Rows(html).ids)
    assert back == pages[-2::-1]  # the same pages, walked back


def test_a_cursor_that_is_gone_says_so(console, history, db):
    db.execute("DELETE FROM events WHERE id = %s", (history["stale"],))
    html, rows = page(console, before=history["stale"])
    assert rows.ids == [] and "no longer there" in html and 'id="page-newest"' in html


# --- scope --------------------------------------------------------------------------------
def test_a_scoped_token_sees_only_its_account(console_app, history, deliver):
    other_acme = deliver({"id": 7, "subject": "zendesk's acme"}, vendor="zendesk", account="acme")
    client = console_app.test_client()
    sign_in(client, SCOPED)
    html, rows = page(client)
    assert rows.ids == [history["acme"]]
    assert 'name="vendor"' not in html and "freshdesk/acme only" in html
    for args in ({"vendor": "zendesk"}, {"account": "default"}, {"external_id": "2"}, {"email": "ada@example.com"},
                 {"contains": '{"status": 2}'}, {"outcome": "stale"}):
        assert page(client, **args)[1].ids == [], args
    assert page(client, contains='{"status": 5}')[1].ids == [history["acme"]]
    # another account's event as a cursor places nothing: it is not there for this token
    for cursor in ("before", "after"):
        html, rows = page(client, **{cursor: str(history["private"])})
        assert rows.ids == [] and "no longer there" in html
    assert page(client, before=str(history["acme"] + 1000))[1].ids == []
    # and the tail, from nothing shown yet, brings only this account's events
    assert Rows(client.get(TAIL).get_data(as_text=True)).ids == [history["acme"]]
    assert Rows(client.get(TAIL, query_string={"after": history["created"]}).get_data(as_text=True)).ids == []
    assert other_acme not in page(client)[1].ids


def test_the_scope_is_in_the_sql_not_after_it():
    for direction in (None, "older", "newer"):
        statement = page_sql({}, scoped=True, direction=direction)
        assert statement.count("t.vendor = %(scope_vendor)s AND t.account = %(scope_account)s") == 1
        assert statement.count("ct.vendor = %(scope_vendor)s") == (direction is not None)


# --- the live tail ------------------------------------------------------------------------
def test_the_live_tail_is_off_by_default_and_a_refresh_link_without_javascript(console, history):
    html, rows = page(console, outcome="created")
    assert rows.pollers == []
    toggle = re.search(r'<a href="([^"]+)" id="live-tail-toggle">Turn on</a>', html).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(toggle).query) == {"outcome": ["created"], "tail": ["1"]}
    assert re.search(r'<a href="/console/events\?outcome=created" id="refresh">Refresh</a>', html)

    html, rows = page(console, outcome="created", tail="1")
    [poller] = rows.pollers
    assert (poller["hx-trigger"], poller["hx-swap"], poller["id"]) == ("every 5s", "outerHTML", "event-tail-poller")
    assert parse_qs(urlsplit(poller["hx-get"].replace("&amp;", "&")).query) == {
        "outcome": ["created"], "tail": ["1"], "after": [str(history["acme"])]}
    assert 'id="live-tail-toggle">Turn off</a>' in html and 'id="refresh"' in html  # no JavaScript: refresh
    assert 'name="tail" value="1"' in html  # filtering again keeps the tail on
    assert Rows(page(console, tail="1", before=str(history["acme"]))[0]).pollers == []  # newest page only


def test_the_tail_fragment_brings_the_new_rows_under_a_poller_that_asks_from_them(console, history, deliver):
    after = history["acme"]
    response = console.get(TAIL, query_string={"after": after, "outcome": "created", "tail": "1"})
    fragment = Rows(response.get_data(as_text=True))
    assert response.status_code == 200 and fragment.ids == []
    assert urlsplit(fragment.pollers[0]["hx-get"]).query.endswith(f"after={after}")  # asks the same again

    updated = deliver({"id": 2, "subject": "now with a subject"})  # updated: the filter leaves it out
    new = [deliver({"id": 300 + n, "subject": "new"}) for n in range(2)]
    response = console.get(TAIL, query_string={"after": after, "outcome": "created", "tail": "1"})
    html = response.get_data(as_text=True)
    fragment = Rows(html)
    assert fragment.ids == new[::-1] and updated not in fragment.ids
    assert all(row["class"] == "fresh" for row in fragment.rows)
    assert html.index('id="event-tail-poller"') < html.index(f'data-event-id="{new[1]}"')  # the poller first
    [poller] = fragment.pollers
    assert parse_qs(urlsplit(poller["hx-get"].replace("&amp;", "&")).query) == {
        "outcome": ["created"], "tail": ["1"], "after": [str(new[1])]}
    assert "<html" not in html  # a fragment, not a page


def test_the_tail_of_an_empty_page_starts_from_nothing(console, deliver):
    _, rows = page(console, tail="1")
    assert rows.ids == [] and "after=" not in rows.pollers[0]["hx-get"]
    first = deliver({"id": 1, "subject": "first"})
    fragment = Rows(console.get(rows.pollers[0]["hx-get"].replace("&amp;", "&")).get_data(as_text=True))
    assert fragment.ids == [first] and fragment.pollers[0]["hx-get"].endswith(f"after={first}")


def test_the_tail_refuses_bad_values(console):
    assert console.get(TAIL, query_string={"after": "x"}).status_code == 400
    assert console.get(TAIL, query_string={"contains": "[1]"}).status_code == 400


# --- the indexes --------------------------------------------------------------------------
@pytest.fixture
def crowd(db):
    """20,000 events of 1,000 tickets over 30 days, analyzed: enough rows for the planner
    to choose as it would on 10,000,000 (on a test's five, a scan of everything wins).
    Rare: the outcome stale (1%), the type ticket.merged (1%), the payload key "rare" (4
    events). The months they fall in exist, as `maintain` and migration 14 make them."""
    from ingestion.storage import partitions

    with psycopg.connect(db.info.dsn, autocommit=True) as plain:
        partitions.ensure_month(plain, partitions.month_start(datetime.now(timezone.utc) - timedelta(days=31)))
    db.execute("""
        INSERT INTO tickets (vendor, account, external_id, subject, requester_email)
        SELECT (ARRAY['freshdesk', 'zendesk'])[1 + n % 2], 'main', 'T' || n, 'subject ' || n,
               'user' || n || '@example.com'
          FROM generate_series(1, 1000) AS n""")
    db.execute("""
        INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, payload, received_at)
        SELECT t.id, CASE WHEN k % 97 = 0 THEN 'stale' WHEN k <= 1000 THEN 'created' ELSE 'updated' END, 1,
               CASE WHEN k % 89 = 0 THEN 'ticket.merged' ELSE 'ticket.updated' END, 'body:' || k,
               jsonb_build_object('status', k % 5, 'n', k)
                   || CASE WHEN k % 4999 = 0 THEN '{"rare": true}'::jsonb ELSE '{}'::jsonb END,
               now() - interval '30 days' * ((k * 7919) % 20000) / 20000
          FROM generate_series(1, 20000) AS k JOIN tickets t ON t.external_id = 'T' || (1 + k % 1000)""")
    db.execute("ANALYZE tickets")
    db.execute("ANALYZE events")
    return db.execute("SELECT max(id) AS id FROM events").fetchone()["id"]


def plan(db, filters, direction=None, cursor=None, seqscan=True):
    with db.transaction():
        if not seqscan:
            db.execute("SET LOCAL enable_seqscan = off")
        params = {**filters, "limit": 51, "cursor": cursor}
        rows = db.execute("EXPLAIN " + page_sql(filters, scoped=False, direction=direction), params).fetchall()
    return "\n".join(row["QUERY PLAN"] for row in rows)


def test_the_payload_search_uses_the_gin_index(db, crowd):
    (definition,) = [row["indexdef"] for row in db.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'events' AND indexname = 'events_payload'")]
    assert definition == "CREATE INDEX events_payload ON ONLY public.events USING gin (payload jsonb_path_ops)"
    for seqscan in (True, False):  # chosen on its own; and with scans ruled out, it is the way
        explained = plan(db, {"contains": '{"rare": true}'}, seqscan=seqscan)
        # each month's copy of events_payload (a partition's index is named after it)
        assert re.search(r"Bitmap Index Scan on events_\w+_payload_idx", explained), explained
        assert "Index Cond: (payload @> '{\"rare\": true}'::jsonb)" in explained


#: Each month's copy of an index of events is named after the month and the columns.
NEWEST, TYPE_NEWEST, OUTCOME_NEWEST = (r"events_\w+_received_at_id_idx", r"events_\w+_event_type_received_at_id_idx",
                                       r"events_\w+_outcome_received_at_id_idx")


@pytest.mark.parametrize("filters, index", [
    ({}, "Index Scan Backward using " + NEWEST),
    ({"since": datetime.now(timezone.utc) - timedelta(hours=1)}, NEWEST),  # a few rows: a bitmap is fine
    ({"until": datetime.now(timezone.utc) - timedelta(days=29)}, "Index Scan Backward using " + NEWEST),
    ({"event_type": "ticket.merged"}, "Index Scan Backward using " + TYPE_NEWEST),
    ({"outcome": "stale"}, "Index Scan Backward using " + OUTCOME_NEWEST),
    ({"external_id": "T42"}, "Index Scan using tickets_external_id"),
    ({"email": "USER42@example.com"}, "Index Scan using tickets_requester_email"),
])
def test_each_filter_is_served_by_an_index(db, crowd, filters, index):
    explained = plan(db, filters)
    assert re.search(index, explained) and not scans_a_month_whole(explained), explained


def scans_a_month_whole(explained: str) -> bool:
    """A sequential scan of a month with rows (an empty month's costs nothing: 0.00..0.00)."""
    return bool(re.search(r"Seq Scan on events_\w+ \w+\s+\(cost=0\.00\.\.(?!0\.00 )", explained))


def test_a_cursor_is_a_range_of_the_index_not_a_scan(db, crowd):
    for direction, scan in (("older", "Index Scan Backward"), ("newer", "Index Scan")):
        explained = plan(db, {}, direction=direction, cursor=crowd // 2)
        assert re.search(scan + r" using " + NEWEST + r" on events_\w+ e\w* .*\n\s*Index Cond: \(ROW\(received_at, id\) [<>]", explained), explained


@pytest.mark.parametrize("query", ["before=%C2%B2", "after=%C2%B2", "from=0001-01-01T00:00%2B01:00",
                                   "until=9999-12-31T23:59-01:00", "contains=" + "%5B" * 3000])
def test_odd_values_found_by_the_review_are_a_message_not_a_500(make_app, db, query):
    client = make_app(API_TOKENS=TOKEN).test_client()
    sign_in(client, TOKEN)
    assert client.get(f"/console/events?{query}").status_code == 400


def test_a_year_before_1000_is_shown_back_as_written(make_app, db):
    client = make_app(API_TOKENS=TOKEN).test_client()
    sign_in(client, TOKEN)
    response = client.get("/console/events?from=0099-01-01")
    assert response.status_code == 200 and b"0099-01-01T00:00:00" in response.data
