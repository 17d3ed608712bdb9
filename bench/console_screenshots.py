"""`make screenshots`: the README's pictures of the console, made anew.

Starts a throwaway PostgreSQL and Redis, the service under gunicorn in production mode
with an operator token, and sends it a small day of real vendor deliveries (fixtures from
tests/vendors/: creates, updates, comments public and private, a stale retry, bodies that
end in quarantine), then signs in with a real headless Chromium (tests/browser.py: Debian's
chromium and chromium-driver) and saves the overview, the events list, a ticket's
timeline and the quarantine as PNGs in docs/console/ (or --out). Needs the test tools
(`make install`) and the browser (`apt-get install chromium chromium-driver`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import Browser  # noqa: E402
from processes import Gunicorn  # noqa: E402
from signing import AUTH_ENV, SOURCES_KEY, fixture, post_http  # noqa: E402

from devserver import PostgresServer, RedisServer  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402

TOKEN = "screenshots-operator-token-7d3f1a9e"
#: (vendor, fixture, extra headers): a day of deliveries, in order.
DELIVERIES = [
    ("zendesk", "event_ticket_created", {}),
    ("zendesk", "event_ticket_status_changed", {}),
    ("zendesk", "event_ticket_comment_added", {}),
    ("freshdesk", "admin_flat_closed", {}),
    ("helpscout", "v2_convo_created", {"X-HelpScout-Event": "convo.created"}),
    ("helpscout", "v2_convo_agent_reply", {"X-HelpScout-Event": "convo.agent.reply.created"}),
    ("front", "rule_inbound_message_full", {}),
    ("front", "rule_comment_full", {}),
    ("intercom", "ticket_created", {}),
    ("intercom", "ticket_note_created", {}),
    ("jira", "jira_issue_created__cloud_2024_with_changelog", {}),
    ("hubspot", "life_01_creation", {}),
]
#: Bodies every vendor refuses: they land in quarantine.
REFUSED = [("freshdesk", b'{"ticket": {"subject": "no id"}}'), ("zendesk", b'{"ticket": {"status": "open"}}')]


def seed(url: str) -> None:
    for vendor, case, headers in DELIVERIES:
        try:
            body = fixture(vendor, case)
        except FileNotFoundError:
            continue  # a fixture renamed since: the picture just has one event fewer
        post_http(url, vendor, body, **headers)
    for vendor, body in REFUSED:
        post_http(url, vendor, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="console-screenshots-"))
    pg = PostgresServer(work / "postgres", durable=False).start()
    redis = RedisServer(work / "redis").start()
    service = None
    try:
        url = pg.create_database("screenshots")
        migrate(url)
        service = Gunicorn({"APP_ENV": "production", "DATABASE_URL": url, "REDIS_URL": redis.url(),
                            "SOURCES_ENCRYPTION_KEY": SOURCES_KEY, "API_TOKENS": TOKEN,
                            "RATE_LIMIT_PER_MINUTE": "100000", **AUTH_ENV}, workers=2, log_dir=work).start()
        seed(service.url)
        browser = Browser(service.url, args.out)
        try:
            browser.sign_in(TOKEN)
            created = json.loads(fixture("zendesk", "event_ticket_created"))
            ticket, account = created["detail"]["id"], created["account_id"]
            for name, path in (("overview", "/console/"), ("events", "/console/events"),
                               ("ticket", f"/console/tickets/zendesk/{ticket}?account={account}"),
                               ("quarantine", "/console/quarantine")):
                browser.driver.set_window_size(1280, 1500 if name == "ticket" else 800)  # the timeline too
                browser.open(path)
                print(browser.shot(name))
        finally:
            browser.close()
        return 0
    finally:
        if service:
            service.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
