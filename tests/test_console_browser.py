"""The console in a real headless Chromium against the service under gunicorn (make
test-browser): what an operator does, with screenshots of each page kept under the run's
temporary folder (the folder is printed; `python bench/console_screenshots.py` makes the
README's from the same pages)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import requests

from browser import Browser
from processes import Gunicorn
from signing import AUTH_ENV, SOURCES_KEY, post_http

pytestmark = pytest.mark.browser

TOKEN = "browser-operator-token-2b7e9f4c1a"
SCOPED = "browser-scoped-token-6c1d8a3f5e"


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="console-screenshots-"))
    yield folder
    print(f"\nconsole screenshots: {folder}")


@pytest.fixture(scope="module")
def service(database_url, workdir):
    server = Gunicorn({"APP_ENV": "production", "DATABASE_URL": database_url, "SOURCES_ENCRYPTION_KEY": SOURCES_KEY,
                       "API_TOKENS": f"{TOKEN} {SCOPED}@zendesk/4242", "RATE_LIMIT_PER_MINUTE": "100000",
                       **AUTH_ENV}, workers=2, log_dir=workdir).start()
    yield server
    server.stop()


@pytest.fixture
def browser(service, screenshots, db):
    opened = Browser(service.url, screenshots)
    yield opened
    opened.close()


def test_no_page_opens_without_a_session_and_signing_in_leads_to_it(browser, service):
    browser.open("/console/events")
    assert "/console/login" in browser.driver.current_url
    browser.shot("sign-in")
    browser.sign_in(TOKEN, here=True)
    assert browser.driver.current_url.endswith("/console/events")
    assert browser.console_errors() == []


def test_a_post_without_the_csrf_token_is_refused(service, db):
    session = requests.Session()
    form = session.get(service.url + "/console/login")
    assert form.status_code == 200
    refused = session.post(service.url + "/console/login", data={"token": TOKEN}, allow_redirects=False)
    assert refused.status_code == 403


def test_a_wrong_token_is_refused_in_the_page(browser):
    browser.open("/console/login")
    field = browser.driver.find_element("id", "token")
    field.send_keys("not-an-operator-token-at-all")
    field.submit()
    browser.wait_for_text("not one of API_TOKENS")
    assert "/console/login" in browser.driver.current_url


def test_the_pages_load_without_a_policy_violation_and_are_kept_as_screenshots(browser, service):
    post_http(service.url, "freshdesk", {"ticket": {"id": 501, "subject": "Printer on fire", "status": "open"}})
    browser.sign_in(TOKEN)
    for name, path in (("overview", "/console/"), ("events", "/console/events"),
                       ("ticket", "/console/tickets/freshdesk/501"), ("quarantine", "/console/quarantine")):
        browser.open(path)
        browser.shot(name)
        assert browser.console_errors() == [], name
    assert all((browser.screenshots / f"{name}.png").stat().st_size > 1000
               for name in ("overview", "events", "ticket", "quarantine"))


def test_the_browser_holds_no_token_in_its_cookie(browser):
    browser.sign_in(TOKEN)
    cookies = browser.driver.get_cookies()
    console = [c for c in cookies if c["name"] == "ingestion_console"]
    assert console and console[0]["httpOnly"] and console[0]["sameSite"] == "Strict"
    assert all(TOKEN not in c["value"] for c in cookies)
    assert os.environ.get("API_TOKENS") is None  # the test run never exports the tokens


# --- the operator's flows ---------------------------------------------------------------

def keep(database_url: str, body: bytes, account: str = "") -> int:
    """A quarantined delivery as the webhook path keeps one, that today's normalizer reads
    (as if an older one had refused it): what replay is for."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "INSERT INTO quarantine (vendor, account, status, reason, error, body, headers, auth_method, request_id) "
            "VALUES ('freshdesk', %s, 422, 'invalid_field', 'an older normalizer refused it', %s, '{}', 'hmac', "
            "'req-kept') RETURNING id", (account, body)).fetchone()[0]


def readable(n: int) -> bytes:
    return f'{{"ticketId": "q-{n}", "title": "Readable {n}"}}'.encode()


def test_an_operator_filters_the_events_opens_a_timeline_and_replays_an_entry(browser, service, database_url, db):
    from selenium.webdriver.common.by import By

    post_http(service.url, "freshdesk", {"ticket": {"id": 601, "subject": "Printer on fire", "status": "open"}})
    post_http(service.url, "freshdesk", {"ticket": {"id": 601, "status": "closed", "latest_comment": "Fixed"}})
    post_http(service.url, "zendesk", {"ticket": {"id": 602, "subject": "VPN down"}}, **{"X-Zendesk-Account-Id": "4242"})
    entry = keep(database_url, readable(1))
    browser.sign_in(TOKEN)

    browser.open("/console/events")
    browser.driver.find_element(By.ID, "filter-vendor").send_keys("freshdesk")
    browser.driver.find_element(By.ID, "apply-filters").click()
    browser.wait_for(lambda d: "vendor=freshdesk" in d.current_url)
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#event-rows tr[data-event-id]")
    assert len(rows) == 2 and "VPN" not in browser.text()
    browser.shot("events-filtered")

    browser.driver.find_element(By.LINK_TEXT, "601").click()
    browser.wait_for_text("Printer on fire")
    assert "closed" in browser.text() and "Fixed" in browser.text()
    browser.shot("ticket-timeline")

    browser.open("/console/quarantine")
    browser.driver.find_element(By.ID, f"replay-{entry}").click()
    browser.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-test="replay-result"]'))
    assert "created" in browser.text()
    browser.shot("replayed")
    assert db.execute("SELECT count(*) AS n FROM quarantine").fetchone()["n"] == 0
    assert db.execute("SELECT subject FROM tickets WHERE external_id = 'q-1'").fetchone()["subject"] == "Readable 1"
    assert browser.console_errors() == []


def test_a_bulk_replay_shows_its_progress_and_stops_when_cancelled(browser, service, database_url, db):
    from selenium.webdriver.common.by import By

    entries = [keep(database_url, readable(n)) for n in range(100, 160)]
    browser.sign_in(TOKEN)
    browser.open("/console/quarantine")
    browser.driver.find_element(By.ID, "bulk-replay").click()
    browser.wait_for(lambda d: d.find_elements(By.ID, "bulk-count"))
    assert "60" in browser.driver.find_element(By.ID, "bulk-count").text
    browser.driver.find_element(By.ID, "bulk-confirm").click()
    browser.wait_for(lambda d: d.find_elements(By.ID, "replay-cancel"))
    browser.shot("bulk-progress")
    browser.wait_for(lambda d: int(d.find_element(By.CSS_SELECTOR, '[data-test="replay-done"]').text or 0) > 0, 30)
    # the panel is swapped every poll: a button found just before a swap is found again
    browser.wait_for(lambda d: d.find_element(By.ID, "replay-cancel").click() is None)
    browser.wait_for(lambda d: "cancel" in d.find_element(By.CSS_SELECTOR, '[data-test="replay-state"]').text)
    done = db.execute("SELECT count(*) AS n FROM tickets WHERE external_id LIKE 'q-1%'").fetchone()["n"]
    import time

    time.sleep(4)  # two more polls' worth: nothing moves after the cancel
    assert db.execute("SELECT count(*) AS n FROM tickets WHERE external_id LIKE 'q-1%'").fetchone()["n"] == done
    assert 0 < done < len(entries)
    assert browser.console_errors() == []


def test_a_scoped_token_neither_sees_nor_replays_another_accounts_entries(browser, service, database_url, db):
    from selenium.webdriver.common.by import By

    post_http(service.url, "zendesk", {"ticket": {"id": 701, "subject": "Ours"}}, **{"X-Zendesk-Account-Id": "4242"})
    post_http(service.url, "freshdesk", {"ticket": {"id": 702, "subject": "Theirs"}})
    theirs = keep(database_url, readable(7))
    browser.sign_in(SCOPED)
    browser.open("/console/events")
    assert "701" in browser.text() and "702" not in browser.text()
    browser.open("/console/quarantine")
    assert not browser.driver.find_elements(By.ID, f"entry-{theirs}")
    browser.open(f"/console/quarantine/{theirs}")
    assert "No such quarantine entry" in browser.text()
    browser.open("/console/tickets/freshdesk/702")
    assert "404" in browser.text()
    # a replay posted by hand for their entry, with this session's CSRF token: 404, nothing replayed
    browser.open("/console/quarantine")
    csrf = browser.driver.find_element(By.CSS_SELECTOR, 'input[name="csrf_token"]').get_attribute("value")
    cookie = {c["name"]: c["value"] for c in browser.driver.get_cookies()}
    answer = requests.post(f"{service.url}/console/quarantine/{theirs}/replay", data={"csrf_token": csrf},
                           cookies=cookie, allow_redirects=False)
    assert answer.status_code == 404
    assert db.execute("SELECT count(*) AS n FROM quarantine").fetchone()["n"] == 1
