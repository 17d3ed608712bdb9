"""The console's door (ingestion/web/console/access.py): sign-in with an API token, the
session cookie's manners, CSRF on every POST, the Content-Security-Policy, scopes, the
development banner, production without tokens, a database outage, and the vendored htmx."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest

from ingestion.web.console import ago
from ingestion.web.console.access import CSP

TOKEN = "console-operator-token-5f1e9a0c7b"
SCOPED = "console-scoped-token-8d2c4b6a1e"
ROOT = Path(__file__).resolve().parent.parent
PAGES = ["/console/", "/console/events", "/console/quarantine", "/console/tickets/freshdesk/1"]


def csrf_of(response) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', response.data).group(1).decode()


def sign_in(client, token: str = TOKEN):
    form = client.get("/console/login")
    return client.post("/console/login", data={"token": token, "csrf_token": csrf_of(form)})


@pytest.fixture
def console(make_app, db):
    return make_app(API_TOKENS=f"{TOKEN} {SCOPED}@zendesk/4242")


@pytest.mark.parametrize("path", PAGES)
def test_no_page_works_without_a_session(console, path):
    response = console.test_client().get(path)
    assert response.status_code == 303 and response.headers["Location"].startswith("/console/login?next=")


def test_signing_in_sets_a_strict_httponly_secure_expiring_cookie_holding_no_token(console):
    client = console.test_client()
    response = sign_in(client)
    assert (response.status_code, response.headers["Location"]) == (303, "/console/")
    cookie = response.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/console", "Expires="):
        assert attribute in cookie, attribute
    assert TOKEN not in cookie
    assert client.get("/console/events").status_code == 200


def test_a_wrong_token_is_refused_and_starts_no_session(console):
    client = console.test_client()
    response = sign_in(client, "not-a-configured-token-at-all")
    assert response.status_code == 401 and b"not one of API_TOKENS" in response.data
    assert client.get("/console/").status_code == 303


def test_sign_in_returns_to_the_page_asked_for_but_never_off_the_console(console):
    client = console.test_client()
    form = client.get("/console/login?next=/console/quarantine")
    response = client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf_of(form),
                                                   "next": "/console/quarantine"})
    assert response.headers["Location"] == "/console/quarantine"
    other = console.test_client()
    form = other.get("/console/login")
    response = other.post("/console/login", data={"token": TOKEN, "csrf_token": csrf_of(form),
                                                  "next": "https://evil.example.com/"})
    assert response.headers["Location"] == "/console/"


def test_a_post_without_the_csrf_token_is_refused(console):
    client = console.test_client()
    assert client.post("/console/login", data={"token": TOKEN}).status_code == 403  # sign-in too
    sign_in(client)
    assert client.post("/console/logout").status_code == 403
    assert client.post("/console/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/console/").status_code == 200  # still signed in
    page = client.get("/console/")
    assert client.post("/console/logout", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert client.get("/console/").status_code == 303


@pytest.mark.parametrize("path", ["/console/login", "/console/static/console.css"])
def test_every_console_response_carries_the_strict_policy_and_is_not_cached(console, path):
    response = console.test_client().get(path)
    assert response.headers["Content-Security-Policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    assert response.headers["X-Frame-Options"] == "DENY"
    # pages are never stored; the static files are revalidated (Flask's no-cache)
    assert response.headers["Cache-Control"] == ("no-store" if path == "/console/login" else "no-cache")


def test_no_template_holds_inline_script_or_style():
    for template in (ROOT / "ingestion/web/console/templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert "<style" not in text and " style=" not in text and "javascript:" not in text, template
        assert not re.search(r"\bon[a-z]+=", text), template  # no event handler attributes


def test_removing_a_token_ends_its_sessions(make_app, db):
    client = make_app(API_TOKENS=TOKEN).test_client()
    sign_in(client)
    cookie = client.get_cookie("ingestion_console", path="/console")
    assert client.get("/console/").status_code == 200
    rotated = make_app(API_TOKENS="another-operator-token-3a9f7c", CONSOLE_SESSION_KEY=None).test_client()
    rotated.set_cookie(cookie.key, cookie.value, path="/console")
    assert rotated.get("/console/").status_code == 303


def test_an_expired_session_is_signed_out(make_app, db, monkeypatch):
    client = make_app(API_TOKENS=TOKEN).test_client()
    sign_in(client)
    later = time.time() + 9 * 3600  # past the default 8 hours
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/console/").status_code == 303


def test_the_scope_comes_from_the_configuration_and_is_shown(console):
    client = console.test_client()
    sign_in(client, SCOPED)
    assert b"scope zendesk/4242" in client.get("/console/").data
    everything = console.test_client()
    sign_in(everything)
    assert b"all accounts" in everything.get("/console/").data


def test_production_without_tokens_has_no_console(make_app, db):
    client = make_app().test_client()
    assert client.get("/console/").status_code == 404
    assert client.get("/console/login").status_code == 404


def test_development_without_tokens_is_open_with_a_banner(make_app, db):
    client = make_app(APP_ENV="development").test_client()
    response = client.get("/console/")
    assert response.status_code == 200 and b"open to anyone who reaches it" in response.data


def test_the_sign_in_is_rate_limited_like_the_api(make_app, db):
    client = make_app(API_TOKENS=TOKEN, RATE_LIMIT_PER_MINUTE="20").test_client()
    statuses = [client.get("/console/login").status_code for _ in range(5)]
    assert statuses[0] == 200 and 429 in statuses


def test_a_database_outage_shows_a_banner_not_a_500(make_app, db):
    client = make_app(API_TOKENS=TOKEN, DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
                      DB_CONNECT_TIMEOUT="1", DB_POOL_TIMEOUT="0.5").test_client()
    sign_in(client)
    response = client.get("/console/tickets/freshdesk/1")
    assert response.status_code == 503  # the page's frame with the banner, and Retry-After
    assert b"PostgreSQL cannot be reached" in response.data and response.headers["Retry-After"]


def test_the_vendored_htmx_is_the_pinned_release():
    path = ROOT / "ingestion/web/console/static/htmx-2.0.4.min.js"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == \
        "e209dda5c8235479f3166defc7750e1dbcd5a5c1808b7792fc2e6733768fb447"
    assert "e209dda5c8235479f3166defc7750e1dbcd5a5c1808b7792fc2e6733768fb447" in \
        (ROOT / "ingestion/web/console/static/VENDORED.md").read_text()


def test_times_read_as_words_on_hover():
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
    assert [ago(now - timedelta(seconds=s), now) for s in (5, 180, 7200, 3 * 86400)] == [
        "5 s ago", "3 min ago", "2 h ago", "3 d ago"]


def test_a_next_with_a_line_break_goes_to_the_overview_not_a_500(console):
    client = console.test_client()
    form = client.get("/console/login?next=/console/%0d%0aSet-Cookie:%20x=1")
    response = client.post("/console/login", data={"token": TOKEN, "csrf_token": csrf_of(form),
                                                   "next": "/console/\r\nSet-Cookie: x=1"})
    assert (response.status_code, response.headers["Location"]) == (303, "/console/")
    assert client.get("/console/login?next=/console/%0d%0aX:%201").status_code == 303


@pytest.mark.parametrize("method, path", [("GET", "/console/nope"), ("GET", "/console//events"),
                                          ("PUT", "/console/events")])
def test_refusals_under_console_that_no_console_route_answers_carry_its_headers(console, method, path):
    response = console.test_client().open(path, method=method)
    assert response.status_code in (404, 405)
    assert response.headers["Content-Security-Policy"] == CSP and response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path, opened", [
    ("/console", True), ("/console/events", True), ("/health", False),
    ("/webhooks/freshdesk", False), ("/consoles", False), ("/api/v1/tickets/freshdesk/1", False),
])
def test_the_session_is_opened_only_on_the_console_paths_its_cookie_is_sent_to(console, path, opened):
    from flask import session
    from flask.sessions import NullSession

    with console.test_request_context(path):
        assert isinstance(session._get_current_object(), NullSession) is not opened


def test_a_console_cookie_sent_to_a_webhook_path_is_neither_read_nor_rewritten(console):
    client = console.test_client()
    sign_in(client)
    cookie = client.get_cookie("ingestion_console", path="/console")
    assert cookie is not None
    client.set_cookie("ingestion_console", cookie.value, path="/")
    response = client.get("/health")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert client.get("/console/events").status_code == 200
