"""The console's quarantine page (ingestion/web/console/quarantine.py, quarantine_bulk.py):
entries shown with their headers and body, filtered and paged; one replayed and its
result shown; a bulk replay counted, confirmed, advanced to done or cancelled; a scoped
token confined to its account; CSRF on every POST; nothing secret logged. Against the
real PostgreSQL, with deliveries really refused by the webhook path first."""

from __future__ import annotations

import html
import json
import logging
import re

import pytest

from ingestion.normalize import ticket_fields
from ingestion.web.console import quarantine as listing
from ingestion.web.console import quarantine_reading as page
from ingestion.web.console import quarantine_bulk as bulk
from signing import SECRET_VALUES, fixture, post
from test_console import csrf_of, sign_in

TOKEN = "quarantine-console-token-7c1d9e3f5a"
SCOPED = "quarantine-scoped-token-2b8e4f6a9c"
#: Refused today (no id the normalizer knows); read once the normalizer learns `caseNumber`.
LEARNABLE = {"ticket": {"caseNumber": 77, "subject": "Learned later", "status": "open"}}
REFUSED = {"ticket": {"subject": "no id"}}


def readable(n: int | str) -> bytes:
    """A Freshdesk body today's normalizer reads (kept as if an older one had refused it)."""
    return json.dumps({"ticketId": f"q-{n}", "title": f"Readable {n}"}).encode()


@pytest.fixture
def console(make_app, db):
    db.execute("TRUNCATE console_replays RESTART IDENTITY")
    return make_app(API_TOKENS=f"{TOKEN} {SCOPED}@freshdesk/acme")


@pytest.fixture
def storage(console):
    return console.extensions["ingestion"].storage


@pytest.fixture
def operator(console):
    client = console.test_client()
    sign_in(client, TOKEN)
    return client


@pytest.fixture
def scoped(console):
    client = console.test_client()
    sign_in(client, SCOPED)
    return client


def keep(storage, body: bytes, vendor: str = "freshdesk", account: str = "", reason: str = "invalid_field",
         headers: dict | None = None) -> int:
    """An entry as the webhook path stores one (ingestion/quarantine.py)."""
    entry_id, _ = storage.quarantine(vendor=vendor, account=account, status=422, reason=reason,
                                     error="an older normalizer refused it", body=body, headers=headers or {},
                                     auth_method="hmac", request_id="req-kept", max_entries=10_000)
    return entry_id


def ids_on(response) -> list[int]:
    return [int(n) for n in re.findall(rb'id="entry-(\d+)"', response.data)]


def waiting(db) -> list[int]:
    return [r["id"] for r in db.execute("SELECT id FROM quarantine ORDER BY id").fetchall()]


def form_of(response) -> dict[str, str]:
    """The hidden fields of the page's confirmation form."""
    return dict(re.findall(rb'type="hidden" name="([a-z_]+)" value="([^"]*)"', response.data.split(b"<main")[1]))


def confirm(client, query: str = "") -> tuple[int, str]:
    """Count, then confirm: (the count shown, the job page's path)."""
    page_ = client.get(f"/console/quarantine/bulk{query}")
    assert page_.status_code == 200
    fields = {k.decode(): v.decode() for k, v in form_of(page_).items()}
    answer = client.post("/console/quarantine/bulk", data=fields)
    assert answer.status_code == 303, answer.data
    return int(fields["count"]), answer.headers["Location"]


def advance(client, job_path: str):
    return client.post(job_path + "/advance", data={"csrf_token": csrf_of(client.get(job_path))},
                       headers={"HX-Request": "true"})


def counts(fragment) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in re.findall(rb'data-test="replay-(state|done|ingested|failed)"[^>]*>([^<]+)<',
                                                          fragment.data)}


def test_entries_show_reason_error_headers_and_body_folded_never_a_credential(console, operator, storage, db):
    refused = post(console.test_client(), "freshdesk", REFUSED, **{"X-Request-Id": "req-refused-1"})
    assert refused.status_code == 422
    real = refused.json["quarantine_id"]
    # an entry stored before the header rule: the page filters again
    old = keep(storage, b'{"x": "\xff <script>alert(1)</script> \x00"}', reason="not_utf8",
               headers={"authorization": "Basic c2VjcmV0OnNlY3JldA==", "x-freshdesk-signature": "sig",
                        "x-request-id": "req-old"})
    response = operator.get("/console/quarantine")
    assert response.status_code == 200 and ids_on(response) == [old, real]  # newest first
    text = response.get_data(as_text=True)
    assert "invalid_field" in text and "not_utf8" in text and "<details" in text and "req-refused-1" in text
    assert "Basic c2VjcmV0" not in text and "authorization" not in text.lower()
    assert "x-freshdesk-signature" not in text and "req-old" in text
    for secret in SECRET_VALUES:
        assert secret not in text
    # not UTF-8: escaped, and nothing of the body is markup
    assert r"\xff &lt;script&gt;alert(1)&lt;/script&gt; \u0000" in text and "<script>alert" not in text
    assert "{&#34;ticket&#34;: {&#34;subject&#34;: &#34;no id&#34;}}" in text
    whole = operator.get(f"/console/quarantine/{old}")
    assert whole.status_code == 200 and b"req-kept" in whole.data and b"not UTF-8" in whole.data


def test_a_long_body_is_previewed_in_the_list_and_whole_on_its_page(console, operator, storage):
    body = ("{\"note\": \"" + "é" * page.PREVIEW_BYTES + "\"}").encode()
    entry = keep(storage, body)
    listed = operator.get("/console/quarantine").get_data(as_text=True)
    assert "é" * 100 in listed and "é" * (page.PREVIEW_BYTES // 2 + 1) not in listed
    assert f"/console/quarantine/{entry}\">the whole entry" in listed
    assert "é" * page.PREVIEW_BYTES in operator.get(f"/console/quarantine/{entry}").get_data(as_text=True)


def test_shown_body_reads_text_escapes_the_rest_and_a_cut_character():
    assert page.shown_body("añb".encode(), 4) == {"text": "añb", "encoding": "utf-8", "cut": False, "size": 4}
    assert page.shown_body("añ".encode()[:2], 3)["text"] == "a"  # cut inside ñ: the preview ends before it
    assert page.shown_body(b"a\xffb\x1b", 4) == {"text": "a\\xffb\\u001b", "encoding": "escaped", "cut": False,
                                                  "size": 4}


def test_filters_combine_in_the_url_and_pages_are_keyset(console, operator, storage, db, monkeypatch):
    fresh = [keep(storage, readable(n)) for n in range(3)]
    zen = keep(storage, b"{}", vendor="zendesk", reason="not_object")
    acme = keep(storage, b"{}", account="acme", reason="not_object")
    db.execute("UPDATE quarantine SET received_at = '2026-01-01T10:00:00Z' WHERE id = %s", (fresh[0],))
    assert ids_on(operator.get("/console/quarantine?vendor=zendesk")) == [zen]
    assert ids_on(operator.get("/console/quarantine?vendor=freshdesk&reason=not_object")) == [acme]
    assert ids_on(operator.get("/console/quarantine?vendor=freshdesk&account=acme")) == [acme]
    assert ids_on(operator.get("/console/quarantine?until=2026-01-02")) == [fresh[0]]
    assert fresh[0] not in ids_on(operator.get("/console/quarantine?since=2026-01-01T10:00:01"))
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    first = operator.get("/console/quarantine?vendor=freshdesk")
    assert ids_on(first) == [acme, fresh[2]]
    older = re.search(rb'href="([^"]+)" rel="next"', first.data).group(1).decode().replace("&amp;", "&")
    assert "vendor=freshdesk" in older and f"before={fresh[2]}" in older
    second = operator.get(older)
    assert ids_on(second) == [fresh[1], fresh[0]] and b'rel="next"' not in second.data


@pytest.mark.parametrize("query, message", [
    ("vendor=nobody", "must be one of"), ("since=yesterday", "UTC time like"), ("until=2026-13-01", "UTC time like"),
    ("since=2026-02-01&until=2026-01-01", "before 'until'"), ("reason=DROP%20TABLE", "is a label"),
    ("before=abc", "entry id"), ("before=99999999999999999999", "entry id"), ("account=" + "a" * 201, "200")])
def test_a_bad_filter_is_a_message_on_the_page_not_a_500(operator, query, message):
    for path in ("/console/quarantine", "/console/quarantine/bulk"):
        if path.endswith("bulk") and query.startswith("before"):
            continue
        response = operator.get(f"{path}?{query}")
        assert response.status_code == 400 and message in html.unescape(response.get_data(as_text=True)), path


def test_replaying_an_entry_the_normalizer_now_reads_ingests_it_and_links_the_ticket(
        console, operator, db, monkeypatch):
    entry = post(console.test_client(), "freshdesk", LEARNABLE).json["quarantine_id"]
    monkeypatch.setattr(ticket_fields, "ID", (*ticket_fields.ID, "casenumber"))  # the normalizer learned
    csrf = csrf_of(operator.get("/console/quarantine"))
    response = operator.post(f"/console/quarantine/{entry}/replay", data={"csrf_token": csrf})
    assert response.status_code == 200
    assert b'data-outcome="created"' in response.data and b"left the quarantine" in response.data
    assert b'href="/console/tickets/freshdesk/77"' in response.data
    assert waiting(db) == []
    event = db.execute("SELECT outcome, request_id FROM events").fetchone()
    assert event == {"outcome": "created", "request_id": f"replay-{entry}"}


def test_a_batch_entry_is_replayed_whole_as_the_command_does(console, operator, storage, db):
    batch = json.loads(fixture("hubspot", "life_01_creation"))
    entry = keep(storage, json.dumps([batch]).encode(), vendor="hubspot")
    response = operator.post(f"/console/quarantine/{entry}/replay",
                             data={"csrf_token": csrf_of(operator.get("/console/quarantine"))})
    assert b'data-outcome="batch"' in response.data and b"1 created" in response.data
    link = f'href="/console/tickets/hubspot/{batch["objectId"]}?account={batch["portalId"]}"'  # (its portal)
    assert link.encode() in response.data


def test_an_entry_that_still_fails_is_shown_with_its_new_reason(console, operator, storage, db):
    entry = keep(storage, json.dumps(REFUSED).encode(), reason="not_json")  # refused once for another cause
    response = operator.post(f"/console/quarantine/{entry}/replay",
                             data={"csrf_token": csrf_of(operator.get("/console/quarantine"))})
    assert response.status_code == 200 and b'data-outcome="failed"' in response.data
    assert b'data-test="new-reason">invalid_field<' in response.data and b"after 1 failed replay" in response.data
    row = db.execute("SELECT reason, attempts FROM quarantine WHERE id = %s", (entry,)).fetchone()
    assert row == {"reason": "invalid_field", "attempts": 1}


def test_every_post_without_the_csrf_token_is_refused_and_changes_nothing(console, operator, storage, db):
    entry = keep(storage, readable(1))
    _, job = confirm(operator)
    for path in (f"/console/quarantine/{entry}/replay", "/console/quarantine/bulk", job + "/advance", job + "/cancel"):
        assert operator.post(path, data={"count": "1", "max_id": str(entry)}).status_code == 403, path
        assert operator.post(path, data={"csrf_token": "forged"}).status_code == 403, path
    assert waiting(db) == [entry]
    assert db.execute("SELECT state, done FROM console_replays").fetchall() == [{"state": "running", "done": 0}]
    anonymous = console.test_client()
    assert anonymous.post(f"/console/quarantine/{entry}/replay").status_code == 401


def test_a_bulk_replay_counts_confirms_and_progresses_to_done(console, operator, storage, db, monkeypatch):
    monkeypatch.setattr(bulk, "BATCH", 3)
    good = [keep(storage, readable(n)) for n in range(4)]
    bad = keep(storage, json.dumps(REFUSED).encode())
    other = keep(storage, readable("zen"), vendor="zendesk")
    shown, job = confirm(operator, "?vendor=freshdesk")
    assert shown == 5 and re.fullmatch(r"/console/quarantine/replays/\d+", job)
    later = keep(storage, readable("later"))  # after the confirmation: not part of it
    assert b'hx-post="' + job.encode() + b'/advance"' in operator.get(job).data
    fragment = advance(operator, job)
    assert counts(fragment) == {"state": "running", "done": "3", "ingested": "3", "failed": "0"}
    assert b"<html" not in fragment.data and b'hx-trigger="every 2s' in fragment.data  # htmx swaps it, polls on
    fragment = advance(operator, job)
    assert counts(fragment) == {"state": "done", "done": "5", "ingested": "4", "failed": "1"}
    assert b"hx-post" not in fragment.data  # polling stops
    assert waiting(db) == [bad, other, later]
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == len(good)
    listed = operator.get("/console/quarantine").data
    assert f'href="{job}"'.encode() in listed and b"state-done" in listed


def test_cancelling_midway_replays_nothing_after(console, operator, storage, db, monkeypatch):
    monkeypatch.setattr(bulk, "BATCH", 2)
    entries = [keep(storage, readable(n)) for n in range(5)]
    _, job = confirm(operator)
    assert counts(advance(operator, job))["done"] == "2"
    cancelled = operator.post(job + "/cancel", data={"csrf_token": csrf_of(operator.get(job))})
    assert cancelled.status_code == 303
    fragment = advance(operator, job)
    assert counts(fragment) == {"state": "cancelled", "done": "2", "ingested": "2", "failed": "0"}
    assert waiting(db) == entries[2:]
    assert b"replay-cancel" not in operator.get(job).data


def test_without_javascript_continue_advances_one_batch_per_post(console, operator, storage, db, monkeypatch):
    """Also: a job nobody polls waits where it stands, and its page resumes it."""
    monkeypatch.setattr(bulk, "BATCH", 2)
    [keep(storage, readable(n)) for n in range(3)]
    _, job = confirm(operator)
    assert f'href="{job}"'.encode() in operator.get("/console/quarantine").data  # resumable from the page
    page_ = operator.get(job)
    assert b'id="replay-continue"' in page_.data
    answer = operator.post(job + "/advance", data={"csrf_token": csrf_of(page_)})
    assert (answer.status_code, answer.headers["Location"]) == (303, job)
    assert len(waiting(db)) == 1
    operator.post(job + "/advance", data={"csrf_token": csrf_of(page_)})
    operator.post(job + "/advance", data={"csrf_token": csrf_of(page_)})
    assert waiting(db) == [] and b'data-state="done"' in operator.get(job).data


def test_a_confirmation_never_replays_more_than_the_count_seen(console, operator, storage, db):
    [keep(storage, readable(n)) for n in range(3)]
    page_ = operator.get("/console/quarantine/bulk")
    fields = {k.decode(): v.decode() for k, v in form_of(page_).items()}
    forged = operator.post("/console/quarantine/bulk", data={**fields, "count": "1"})
    assert forged.status_code == 409 and b"more entries than the 1 you confirmed" in forged.data
    assert db.execute("SELECT count(*) AS n FROM console_replays").fetchone()["n"] == 0
    missing = operator.post("/console/quarantine/bulk", data={"csrf_token": fields["csrf_token"]})
    assert missing.status_code == 400 and b"lacks its" in missing.data


def test_two_polls_at_once_never_take_the_same_entry(console, operator, storage, db):
    first, second = keep(storage, readable(1)), keep(storage, readable(2))
    _, path = confirm(operator)
    job = storage.console_replay(int(path.rsplit("/", 1)[1]), None)
    taken, entry = storage.console_replay_claim(job, 60)
    assert taken and entry["id"] == first
    assert storage.console_replay_claim(job, 60) == (False, None)  # held: the other poll takes nothing
    db.execute("UPDATE console_replays SET claimed_until = now() - interval '1 s'")  # its holder died
    taken, entry = storage.console_replay_claim(job, 60)
    assert taken and entry["id"] == first  # taken again, from where the job stands
    storage.console_replay_finish(job["id"], first, failed=False)
    assert storage.console_replay_claim(job, 60)[1]["id"] == second


def test_a_scoped_token_sees_counts_and_replays_its_account_only(console, operator, scoped, storage, db):
    mine = [keep(storage, readable(n), account="acme") for n in range(2)]
    theirs = keep(storage, readable("globex"), account="globex")
    zen = keep(storage, readable("zen"), vendor="zendesk", account="acme")
    assert ids_on(scoped.get("/console/quarantine")) == mine[::-1]
    assert ids_on(scoped.get("/console/quarantine?account=globex")) == []
    assert b'name="vendor"' not in scoped.get("/console/quarantine").data
    assert scoped.get(f"/console/quarantine/{theirs}").status_code == 404
    csrf = csrf_of(scoped.get("/console/quarantine"))
    assert scoped.post(f"/console/quarantine/{theirs}/replay", data={"csrf_token": csrf}).status_code == 404
    assert scoped.post(f"/console/quarantine/{zen}/replay", data={"csrf_token": csrf}).status_code == 404
    assert db.execute("SELECT attempts FROM quarantine WHERE id = %s", (theirs,)).fetchone()["attempts"] == 0
    assert b"Nothing matches" in scoped.get("/console/quarantine/bulk?vendor=zendesk").data
    assert re.search(rb'data-test="bulk-count">2<', scoped.get("/console/quarantine/bulk").data)
    # a forged confirmation (any count, every id, another account) replays this account's entries only
    nothing = scoped.post("/console/quarantine/bulk", data={"csrf_token": csrf, "account": "globex", "count": "99",
                                                            "max_id": str(2**63 - 1)})
    assert b"Nothing left to replay" in nothing.data
    forged = scoped.post("/console/quarantine/bulk", data={"csrf_token": csrf, "count": "99", "max_id": str(2**63 - 1)})
    job = forged.headers["Location"]
    for _ in range(3):
        state = counts(advance(scoped, job))
    assert state == {"state": "done", "done": "2", "ingested": "2", "failed": "0"}
    assert waiting(db) == [theirs, zen]
    # another scope's job: as if it did not exist
    _, everything = confirm(operator)
    for response in (scoped.get(everything), scoped.post(everything + "/advance", data={"csrf_token": csrf}),
                     scoped.post(everything + "/cancel", data={"csrf_token": csrf})):
        assert response.status_code == 404
    assert everything.encode() not in scoped.get("/console/quarantine").data
    assert db.execute("SELECT state, done FROM console_replays WHERE scope_vendor IS NULL").fetchone() == {
        "state": "running", "done": 0}


def test_unknown_ids_are_404_never_a_500(operator):
    csrf = csrf_of(operator.get("/console/quarantine"))
    for entry in ("999999", "abc", "0", "-1", "99999999999999999999", "1" * 5000):
        assert operator.get(f"/console/quarantine/{entry}").status_code == 404
        assert operator.post(f"/console/quarantine/{entry}/replay", data={"csrf_token": csrf}).status_code == 404
        assert operator.get(f"/console/quarantine/replays/{entry}").status_code == 404


def test_the_actions_log_ids_and_outcomes_nothing_secret(console, operator, storage, caplog):
    secret_body = b'{"ticketId": "log-1", "title": "Ms. Jane Privacy", "requester": {"email": "jane@example.com"}}'
    entry = keep(storage, secret_body, headers={"x-request-id": "req-log"})
    with caplog.at_level(logging.DEBUG):
        csrf = csrf_of(operator.get("/console/quarantine"))
        operator.post(f"/console/quarantine/{entry}/replay", data={"csrf_token": csrf})
        keep(storage, secret_body.replace(b"log-1", b"log-2"))
        _, job = confirm(operator)
        advance(operator, job)
        operator.post(job + "/cancel", data={"csrf_token": csrf})
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "console replay" in logged and "console bulk replay confirmed" in logged
    for secret in (TOKEN, SCOPED, csrf, "Jane Privacy", "jane@example.com", *SECRET_VALUES):
        assert secret not in logged


def test_a_database_outage_shows_the_banner(make_app, db):
    client = make_app(API_TOKENS=TOKEN, DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
                      DB_CONNECT_TIMEOUT="1", DB_POOL_TIMEOUT="0.5").test_client()
    sign_in(client, TOKEN)
    for path in ("/console/quarantine", "/console/quarantine/bulk", "/console/quarantine/1"):
        response = client.get(path)
        assert response.status_code == 503 and b"PostgreSQL cannot be reached" in response.data, path


def test_a_second_confirmation_leads_to_the_running_job_and_replays_nothing_twice(console, operator, storage, db):
    """A double click or a second tab posts the confirmation again: one job per scope runs
    at a time, so the second is sent to the first (found by the attacker review)."""
    failing = keep(storage, json.dumps(REFUSED).encode())
    fields = {k.decode(): v.decode() for k, v in form_of(operator.get("/console/quarantine/bulk")).items()}
    first = operator.post("/console/quarantine/bulk", data=fields).headers["Location"]
    second = operator.post("/console/quarantine/bulk", data=fields).headers["Location"]
    assert second == first and db.execute("SELECT count(*) AS n FROM console_replays").fetchone()["n"] == 1
    for _ in range(2):
        advance(operator, first)
    assert db.execute("SELECT attempts FROM quarantine WHERE id = %s", (failing,)).fetchone()["attempts"] == 1


def test_the_job_covers_what_the_server_counted_not_the_forms_max_id(console, operator, storage, db):
    keep(storage, readable(1))
    fields = {k.decode(): v.decode() for k, v in form_of(operator.get("/console/quarantine/bulk")).items()}
    job = operator.post("/console/quarantine/bulk", data={**fields, "max_id": str(2**63 - 1)}).headers["Location"]
    late = keep(storage, readable(2))  # arrived after the confirmation
    for _ in range(2):
        advance(operator, job)
    assert waiting(db) == [late]
    assert db.execute("SELECT max_id, done FROM console_replays").fetchone() == {"max_id": late - 1, "done": 1}


def test_an_entry_that_breaks_the_replay_is_counted_failed_and_the_job_goes_on(console, operator, storage, db,
                                                                               monkeypatch):
    from ingestion import replaying

    broken, fine = keep(storage, readable(1)), keep(storage, readable(2))
    real = replaying.replay_one

    def replay_one(services_, normalizers, entry, dry_run, splitters=None):
        if entry["id"] == broken:
            raise RuntimeError("a normalizer bug")
        return real(services_, normalizers, entry, dry_run, splitters=splitters)

    monkeypatch.setattr(replaying, "replay_one", replay_one)
    _, job = confirm(operator)
    for _ in range(2):
        assert advance(operator, job).status_code == 200
    assert counts(advance(operator, job)) == {"state": "done", "done": "2", "ingested": "1", "failed": "1"}
    assert waiting(db) == [broken] and fine not in waiting(db)
