"""The console's ticket page (ingestion/web/console/tickets.py) against the real
PostgreSQL, after real webhooks: the ticket as it stands, its timeline oldest first with
every event shown and marked (comments public and private, diffs, stale events,
redactions, retention, forgetting, a soft delete), paging by id and by bytes, the scope's
404, HTML escaping of what vendors sent, bad query values and a database outage."""

from __future__ import annotations

import html
import re

import pytest

from ingestion.jobs.redact import redact_email
from ingestion.web.console import tickets
from ingestion.web.console.tickets import Change, diff
from signing import post
from test_console import csrf_of, sign_in

TOKEN = "console-ticket-token-7c1d9e3a5b"
SCOPED = "console-ticket-scoped-2f8a6c4e0d"
ACCOUNT = {"X-Zendesk-Account-Id": "99"}  # the account the Zendesk events name (account_id)
PAGE = "/console/tickets/zendesk/777?account=99"
NAME, EMAIL = "Ada Lovelace", "ada@example.org"
EVENT = re.compile(r'<li class="event[^"]*" id="event-(\d+)" data-test="event" data-outcome="(\w+)" '
                   r'data-payload="(\w+)">(.*?)</li>', re.DOTALL)


@pytest.fixture
def console(make_app, db):
    return make_app(API_TOKENS=f"{TOKEN} {SCOPED}@zendesk/4242")


@pytest.fixture
def client(console):
    client = console.test_client()
    sign_in(client, TOKEN)
    return client


def zendesk_event(kind: str, event_id: str, ticket: str = "777", event: dict | None = None, **detail) -> dict:
    return {"type": f"zen:event-type:ticket.{kind}", "id": event_id, "account_id": 99,
            "subject": f"zen:ticket:{ticket}", "detail": {"id": ticket, **detail}, "event": event or {}}


def comment(event_id: str, body: str, public: bool, at: str) -> dict:
    return zendesk_event("comment_added", event_id, updated_at=at, event={
        "comment": {"body": body, "is_public": public, "author": {"name": "Agent Smith", "is_staff": True}}})


def seed(client) -> list:
    """Ticket 777 of account 99 through its life: created, a status change, a custom field
    change, a public and a private comment, a stale (older) event, a soft delete."""
    answers = [
        post(client, "zendesk", {"ticket": {
            "id": "777", "subject": f"Refund for {NAME}", "requester": f"{NAME} <{EMAIL}>",
            "assignee": "Agent Smith <agent@example.com>", "status": "open", "priority": "high", "type": "problem",
            "tags": "refund vip", "custom_fields": [{"id": "Region", "value": "EU"}],
            "updated_at": "2025-01-08T10:00:00Z"}}, **ACCOUNT),
        post(client, "zendesk", zendesk_event("status_changed", "s1", status="PENDING", updated_at="2025-01-08T11:00:00Z",
                                              event={"previous": "OPEN", "current": "PENDING"})),
        post(client, "zendesk", zendesk_event("custom_field_changed", "f1", updated_at="2025-01-08T11:30:00Z", event={
            "custom_field": {"id": 55, "title": "Region"}, "previous": {"value": "EU"}, "current": {"value": "US"}})),
        post(client, "zendesk", comment("c1", f"Hello {NAME}, we are on it", True, "2025-01-08T12:00:00Z")),
        post(client, "zendesk", comment("c2", "Internal: check the invoice", False, "2025-01-08T12:30:00Z")),
        post(client, "zendesk", zendesk_event("status_changed", "old", status="OPEN", updated_at="2025-01-01T00:00:00Z",
                                              event={"previous": "NEW", "current": "OPEN"})),
        post(client, "zendesk", zendesk_event("soft_deleted", "d1", updated_at="2025-01-09T08:00:00Z")),
    ]
    assert [answer.json["status"] for answer in answers] == [
        "created", "updated", "updated", "updated", "updated", "stale", "deleted"]
    return answers


def events_of(response) -> list[tuple[int, str, str, str]]:
    """(id, outcome, payload state, inner HTML) of each timeline entry, as shown."""
    return [(int(i), outcome, state, body) for i, outcome, state, body in EVENT.findall(response.get_data(as_text=True))]


def cell(response, test: str) -> str:
    """The text of the table cell marked data-test=`test`, as a reader sees it."""
    found = re.search(rf'<td data-test="{test}">(.*?)</td>', response.get_data(as_text=True), re.DOTALL)
    assert found, test
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


def storage_of(console):
    return console.extensions["ingestion"].storage


def test_a_ticket_is_shown_as_it_stands_with_every_event_marked_and_in_order(console, client):
    answers = seed(client)
    redact_email(storage_of(console), EMAIL)
    response = client.get(PAGE)
    assert response.status_code == 200
    page = response.get_data(as_text=True)

    # the current state
    assert cell(response, "subject") == "Refund for [redacted]"
    assert cell(response, "status") == "pending"
    assert cell(response, "requester") == "none"  # the redacted person's fields are emptied
    assert cell(response, "assignee") == "Agent Smith · agent@example.com · id none"
    assert cell(response, "tags") == "refund vip"
    assert re.search(r'data-test="custom-fields">.*<td>Region</td><td>EU</td>', page, re.DOTALL)
    assert 'data-test="ticket-deleted">deleted at the vendor</span>' in page
    assert cell(response, "deleted-at") == "2025-01-09 08:00:00 UTC" and cell(response, "purged-at") == "—"
    assert 'title="' in page and "Revision</th><td>7</td>" in page

    # the timeline, oldest first, each event marked
    shown = events_of(response)
    assert [event_id for event_id, *_ in shown] == sorted(event_id for event_id, *_ in shown)
    assert [(outcome, state) for _, outcome, state, _ in shown] == [
        ("created", "redacted"), ("updated", "kept"), ("updated", "kept"), ("updated", "redacted"),
        ("updated", "kept"), ("stale", "kept"), ("deleted", "kept"), ("forget", "record")]
    created, status, field, public, private, stale, deleted, redaction = (body for *_, body in shown)
    assert 'data-test="redacted"' in created and "[redacted] &lt;[redacted]&gt;" in created
    assert '<del class="previous">open</del> → <ins class="current">pending</ins>' in status
    assert '<td>custom_fields.Region</td><td><del class="previous">EU</del> → <ins class="current">US</ins>' in field
    assert 'data-test="public"' in public and "Comment by Agent Smith" in public
    assert "Hello [redacted], we are on it" in public and 'data-test="redacted"' in public
    assert 'data-test="private"' in private and "Internal: check the invoice" in private
    assert 'data-test="stale">stale: older than the ticket, not applied' in stale
    assert '<del class="previous">new</del> → <ins class="current">open</ins>' in stale
    assert '<td>deleted</td><td><del class="previous">false</del> → <ins class="current">true</ins>' in deleted
    assert 'data-test="redaction"' in redaction and "A person was redacted" in redaction
    assert "requester_email" in redaction and "2 event(s) rewritten" in redaction
    assert '<details class="payload">' not in redaction and 'data-test="diff"' not in redaction
    for body in (created, status, field, public, private, stale, deleted):
        assert '<details class="payload"><summary>payload</summary><pre data-test="payload">{\n    ' in body
    for body, answer in zip((created, status, field, public, private, stale, deleted), answers):
        assert f'data-test="request-id">{answer.headers["X-Request-ID"]}</code>' in body
        assert "credential <code>signing:env</code>" in body
    assert NAME not in page and EMAIL not in page  # the redaction holds on the page too


def test_payloads_removed_by_retention_and_content_forgotten_are_marked(console, client, db):
    from ingestion.jobs.redact import redact_ticket

    seed(client)
    db.execute("UPDATE events SET received_at = now() - interval '100 days' WHERE id <= 2")
    assert storage_of(console).prune_event_payloads(30) == 2
    shown = events_of(client.get(PAGE))
    assert [state for _, _, state, _ in shown] == ["retention", "retention", "kept", "kept", "kept", "kept", "kept"]
    assert 'data-test="retention">payload removed by retention' in shown[0][3]
    assert '<details class="payload">' not in shown[0][3] and 'data-test="diff"' not in shown[1][3]

    redact_ticket(storage_of(console), "zendesk", "99", "777")
    post(client, "zendesk", comment("c3", "After the forgetting", True, "2025-01-10T00:00:00Z"))
    response = client.get(PAGE)
    shown = events_of(response)
    assert [(outcome, state) for _, outcome, state, _ in shown[-3:]] == [
        ("deleted", "forgotten"), ("forget", "record"), ("updated", "kept")]
    assert {state for _, _, state, _ in shown[:-2]} == {"forgotten"}
    assert "The ticket&#39;s content was forgotten" in shown[-2][3]
    assert cell(response, "subject") == "none" and "After the forgetting" in shown[-1][3]


def test_a_permanently_deleted_ticket_is_marked_forgotten(client):
    seed(client)
    purged = post(client, "zendesk", zendesk_event("permanently_deleted", "p1", updated_at="2025-01-10T00:00:00Z"))
    assert purged.json["status"] == "deleted"
    response = client.get(PAGE)
    assert 'data-test="ticket-forgotten">forgotten</span>' in response.get_data(as_text=True)
    assert cell(response, "purged-at").endswith("UTC")
    shown = events_of(response)
    assert [(outcome, state) for _, outcome, state, _ in shown[-2:]] == [("deleted", "forgotten"), ("forget", "record")]
    assert {state for _, _, state, _ in shown[:-1]} == {"forgotten"}


def test_a_scoped_token_gets_the_same_404_for_another_account_as_for_nothing(console, client):
    seed(client)
    post(client, "zendesk", {"ticket": {"id": "5", "subject": "in the scope"}}, **{"X-Zendesk-Account-Id": "4242"})
    scoped = console.test_client()
    sign_in(scoped, SCOPED)
    assert "in the scope" in cell(scoped.get("/console/tickets/zendesk/5?account=4242"), "subject")
    elsewhere = scoped.get(PAGE)
    nothing = scoped.get("/console/tickets/zendesk/404?account=4242")
    assert elsewhere.status_code == nothing.status_code == 404
    assert elsewhere.data == nothing.data and b"Ticket not found" in nothing.data
    assert b"Refund" not in elsewhere.data
    for path in ("/console/tickets/freshdesk/777?account=99", "/console/tickets/zendesk/5",
                 "/console/tickets/zendesk/777?account=4242"):
        assert scoped.get(path).data == nothing.data, path
    # every account for the full token, and the account defaults to none, as in the read API
    assert client.get(PAGE).status_code == 200
    assert client.get("/console/tickets/zendesk/777").status_code == 404


def test_what_vendors_sent_is_escaped_everywhere_on_the_page(client):
    script = '<script>alert("pwned")</script>'
    post(client, "zendesk", {"ticket": {
        "id": "777", "subject": f"Printer {script}", "requester": "<b>Eve</b> <eve@example.com>",
        "tags": "<i>tag</i>", "custom_fields": [{"id": "<u>field</u>", "value": script}],
        "latest_comment": '<img src=x onerror="alert(1)">', "updated_at": "2025-01-08T10:00:00Z"}}, **ACCOUNT)
    post(client, "zendesk", zendesk_event("subject_changed", "x1", updated_at="2025-01-08T11:00:00Z",
                                          event={"previous": script, "current": "<em>new</em>"}))
    response = client.get(PAGE)
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    for raw in ("<b>Eve</b>", "<i>tag</i>", "<u>field</u>", "<em>new</em>"):
        assert raw not in page, raw
    assert cell(response, "subject") == f"Printer {script}"
    assert "Printer &lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") >= 4  # the subject, the custom field, the diff, the payloads
    assert "&lt;img src=x onerror=" in page


def test_a_ticket_with_more_events_than_a_page_is_paged_by_id(client):
    total = tickets.PAGE_EVENTS + 5
    for n in range(total):
        answer = post(client, "zendesk", {"ticket": {"id": "777", "subject": f"step {n}",
                                                     "updated_at": f"2025-01-08T10:{n // 60:02d}:{n % 60:02d}Z"}},
                      **ACCOUNT)
        assert answer.status_code in (200, 201)
    first = client.get(PAGE)
    shown = [event_id for event_id, *_ in events_of(first)]
    assert len(shown) == tickets.PAGE_EVENTS and shown == sorted(shown)
    assert f"{total} event(s), oldest first" in first.get_data(as_text=True)
    following = re.search(r'href="([^"]+)" id="timeline-next"', first.get_data(as_text=True)).group(1)
    assert html.unescape(following) == f"/console/tickets/zendesk/777?account=99&after={shown[-1]}"
    second = client.get(html.unescape(following))
    rest = [event_id for event_id, *_ in events_of(second)]
    assert len(rest) == 5 and rest[0] > shown[-1] and 'id="timeline-next"' not in second.get_data(as_text=True)
    assert 'data-test="first-page"' in second.get_data(as_text=True)
    beyond = client.get(f"{PAGE}&after={rest[-1]}")
    assert beyond.status_code == 200 and f"No events after event #{rest[-1]}." in beyond.get_data(as_text=True)


def test_a_ticket_of_huge_payloads_is_paged_by_bytes(make_app, db):
    console = make_app(API_TOKENS=TOKEN, MAX_BODY_BYTES=str(4 * 1024 * 1024))
    client = console.test_client()
    sign_in(client, TOKEN)
    for n in range(3):  # about 1.5 MiB each: the page's 4 MiB hold two
        answer = post(client, "zendesk", {"ticket": {"id": "777", "updated_at": f"2025-01-08T1{n}:00:00Z"},
                                          "padding": str(n) * (1536 * 1024)}, **ACCOUNT)
        assert answer.status_code in (200, 201)
    first = client.get(PAGE)
    assert [outcome for _, outcome, _, _ in events_of(first)] == ["created", "updated"]
    assert "(as stored: too large to indent)" in events_of(first)[0][3]
    assert '<pre data-test="payload">{&#34;ticket&#34;: {' in events_of(first)[0][3]  # not indented
    following = re.search(r'href="([^"]+)" id="timeline-next"', first.get_data(as_text=True)).group(1)
    assert [event_id for event_id, *_ in events_of(client.get(html.unescape(following)))] == [3]


@pytest.mark.parametrize("query, message", [
    ("account=" + "a" * 101, "Query parameter &#39;account&#39; must be at most 100 characters"),
    ("account=%00", "Query parameter &#39;account&#39; holds a character no account has"),
    ("account=99&after=abc", "Query parameter &#39;after&#39; must be a whole number"),
    ("account=99&after=-1", "Query parameter &#39;after&#39; must be a whole number"),
    ("account=99&after=99999999999999999999", "Query parameter &#39;after&#39; must be a whole number")])
def test_bad_query_values_are_a_clear_message_not_a_500(client, query, message):
    seed(client)
    response = client.get(f"/console/tickets/zendesk/777?{query}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/console/tickets/zendesk/7%0077?account=99", "/console/tickets/zen%00desk/777",
                                  "/console/tickets/nosuchvendor/777?account=99"])
def test_an_id_no_ticket_can_have_is_not_found(client, path):
    seed(client)
    response = client.get(path)
    assert response.status_code == 404 and b"Ticket not found" in response.data


def test_a_database_outage_shows_the_banner(make_app, db):
    client = make_app(API_TOKENS=TOKEN, DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
                      DB_CONNECT_TIMEOUT="1", DB_POOL_TIMEOUT="0.5").test_client()
    sign_in(client, TOKEN)
    response = client.get(PAGE)
    assert response.status_code == 503 and b"PostgreSQL cannot be reached" in response.data


def test_the_diff_reads_every_shape_of_changes():
    assert diff({"status": {"previous": "open", "current": "solved"},
                 "tags": {"added": ["vip"], "removed": []},
                 "custom_fields": {"Region": {"previous": None, "current": {"code": "EU"}}, "Plan": "gold"},
                 "subject": {"current": "only the new value"},
                 "merged": ["1", "2"], "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}}}) == [
        Change("status", "change", "open", "solved"),
        Change("tags", "tags", "[]", '["vip"]'),
        Change("custom_fields.Region", "change", None, '{"code": "EU"}'),
        Change("custom_fields.Plan", "set", None, "gold"),
        Change("subject", "set", None, "only the new value"),
        Change("merged", "set", None, '["1", "2"]'),
        Change("deep.a.b.c.d", "set", None, '{"e": 1}')]
    assert diff("not an object") == [Change("changes", "set", None, "not an object")]
    assert tickets.parsed("[" * 100_000 + "]" * 100_000).startswith("[[[")  # too deep: shown as text
    assert tickets.redaction(None).startswith("A redaction's record")


def test_the_timeline_marks_are_reachable_by_keyboard_and_tables_have_headers(client):
    seed(client)
    page = client.get(PAGE).get_data(as_text=True)
    assert page.count("<summary>payload</summary>") == 7  # <details>: folded, opened with the keyboard
    assert page.count('<th scope="col">Field</th>') == page.count("<table") - 1  # all but the state's row headers
    assert '<th scope="row">Subject</th>' in page
    assert csrf_of(client.get(PAGE))  # the frame's sign-out form carries the token
