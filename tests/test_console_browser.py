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
