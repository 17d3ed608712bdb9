"""`make bench-console`: how fast the operator console's pages answer on a large history.

Issue 22's target: every console page answers in under 300 ms p95 on a database of
1,000,000 tickets and 10,000,000 events. This seeds that database the way `make bench
--scale` does (bench/seeding.py: seed_history, in a durable PostgreSQL), adds what the
other pages show (10,000 quarantined deliveries, reconcile cursors, one busy ticket with
500 events), runs `python -m ingestion migrate` so the console's indexes exist, starts
the service under gunicorn in production mode with two API tokens (one for every
account, one scoped to zendesk/acme), signs in to /console as a browser does (the
login form's csrf_token, then the token; the session cookie), and requests each page
sequentially, after a warm-up, many times:

- the overview;
- the events list: unfiltered, by vendor, by account, by event type, by a rare outcome,
  by time range, by ticket id, by requester e-mail, by payload containment (a common
  and a rare value), combined filters, and a deep page (the `older` link followed);
- a ticket's page: an ordinary one and the busy one;
- the quarantine list, filtered, and its bulk replay's count;
- with the scoped token: the overview, the events, the quarantine and its count.

It prints p50, p95 and the longest per page against the target, and the status codes
seen. Nothing is asserted: the figures are printed for a human (docs/performance.md);
tests never assert wall-clock limits. `--tickets N --events-per-ticket M` runs smaller.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import start_service
from bench.seeding import (ACCOUNTS, BUSY_EVENTS, SCOPE, SEED_PREFIX, seed_account, seed_console,
                           seed_history, seed_vendor)
from devserver import PostgresServer, RedisServer

TARGET_P95_MS = 300


class Browser:
    """A signed-in console session, as a browser keeps it. The session cookie is `Secure`
    in production, which TLS at the proxy in front of the service satisfies; here the
    browser talks to gunicorn on loopback, so it sends the cookie over plain HTTP, as the
    proxy would have passed it on (requests' own jar keeps Secure cookies off http://)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.http = requests.Session()
        form = self.request("GET", "/console/login")
        form.raise_for_status()
        signed_in = self.request("POST", "/console/login", {"csrf_token": self.csrf(form.text), "token": token})
        if signed_in.status_code != 303:
            raise RuntimeError(f"sign-in refused: {signed_in.status_code}")

    def request(self, method: str, path: str, form: dict | None = None) -> requests.Response:
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        return self.http.request(method, self.base + path, data=form, allow_redirects=False, timeout=60,
                                 headers={"Cookie": cookie} if cookie else {})

    def get(self, path: str) -> requests.Response:
        return self.request("GET", path)

    @staticmethod
    def csrf(page: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


class ApiClient:
    """The read API's client: the token as a Bearer header, no session (as an integration calls it)."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.http = base, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, form: dict | None = None) -> requests.Response:
        return self.http.request(method, self.base + path, data=form, allow_redirects=False, timeout=60)


@dataclass
class Page:
    name: str
    path: str
    browser: Browser | ApiClient
    method: str = "GET"
    form: dict | None = None

    def request(self) -> requests.Response:
        return self.browser.request(self.method, self.path, self.form)


def older(browser: Browser, path: str, times: int) -> str | None:
    """The events page `times` pages back: the `older` link followed as an operator
    would (None: a page without one)."""
    for _ in range(times):
        page = browser.get(path).text
        link = next((tag for tag in re.findall(r"<a\s[^>]*>", page) if 'rel="next"' in tag), None)
        if not link:
            return None
        path = html.unescape(re.search(r'href="([^"]+)"', link).group(1))
    return path


def events(**filters: str) -> str:
    return "/console/events" + ("?" + urlencode(filters) if filters else "")


def pages(full: Browser, scoped: Browser, tickets: int, per_ticket: int, api: ApiClient | None = None) -> list[Page]:
    """Every page measured, with the filters an operator would use on the seeded data."""
    middle = tickets // 2 + 1
    ticket_path = (f"/console/tickets/{seed_vendor(middle)}/{SEED_PREFIX}{middle}"
                   f"?{urlencode({'account': seed_account(middle, ACCOUNTS)})}")
    busy_path = f"/console/tickets/{seed_vendor(1)}/{SEED_PREFIX}1?{urlencode({'account': seed_account(1, ACCOUNTS)})}"
    hour_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 3600))
    two_weeks_ago = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 14 * 86400))
    day_later = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 13 * 86400))
    found = [
        Page("overview", "/console/", full),
        Page("events", events(), full),
        Page("events: vendor", events(vendor="zendesk"), full),
        Page("events: account", events(vendor=SCOPE[0], account=SCOPE[1]), full),
        Page("events: event type", events(event_type="ticket.comment_added"), full),
        Page("events: outcome (stale)", events(outcome="stale"), full),
        Page("events: last hour", events(**{"from": hour_ago}), full),
        Page("events: a day 2 weeks ago", events(**{"from": two_weeks_ago, "until": day_later}), full),
        Page("events: ticket id", events(external_id=f"{SEED_PREFIX}{middle}"), full),
        Page("events: requester e-mail", events(email=f"requester{middle % 50000}@example.com"), full),
        Page("events: payload (common)", events(contains='{"ticket": {"status": "pending"}}'), full),
        Page("events: payload (rare)", events(contains=f'{{"ticket": {{"id": "{SEED_PREFIX}{middle}"}}}}'), full),
        Page("events: combined", events(vendor="zendesk", event_type="ticket.updated", outcome="updated",
                                        contains='{"ticket": {"status": "open"}}', **{"from": two_weeks_ago}), full),
        Page("events: combined, few match", events(vendor=seed_vendor(middle), event_type="ticket.comment_added",
                                                   email=f"requester{middle % 50000}@example.com",
                                                   **{"from": two_weeks_ago}), full),
        # Each matches many events, together none (no event both creates a ticket and is stale).
        Page("events: combined, none match", events(event_type="ticket.created", outcome="stale"), full),
        Page("events: 5 pages back", older(full, events(), 5) or "", full),
        Page("events: vendor, 5 pages back", older(full, events(vendor="freshdesk"), 5) or "", full),
        Page(f"ticket ({per_ticket} events)", ticket_path, full),
        Page(f"ticket (busy, {BUSY_EVENTS}+ events)", busy_path, full),
        Page("quarantine", "/console/quarantine", full),
        Page("quarantine: reason", "/console/quarantine?" + urlencode({"reason": "too_deep"}), full),
        Page("quarantine: bulk replay count", "/console/quarantine/bulk?" + urlencode({"vendor": "zendesk"}), full),
        Page("scoped: overview", "/console/", scoped),
        Page("scoped: events", events(), scoped),
        Page("scoped: events, payload", events(contains='{"ticket": {"status": "pending"}}'), scoped),
        Page("scoped: quarantine", "/console/quarantine", scoped),
        Page("scoped: bulk replay count", "/console/quarantine/bulk", scoped),
    ]
    if api is not None:  # the read API, on the same history (issue 24: its p95 on a large partitioned one)
        ticket_api = (f"/api/v1/tickets/{seed_vendor(middle)}/{SEED_PREFIX}{middle}"
                      f"?{urlencode({'account': seed_account(middle, ACCOUNTS)})}")
        busy_api = f"/api/v1/tickets/{seed_vendor(1)}/{SEED_PREFIX}1?{urlencode({'account': seed_account(1, ACCOUNTS)})}"
        ticket_events = ticket_api.replace("?", "/events?", 1)
        found += [Page("read API: a ticket", ticket_api, api),
                  Page(f"read API: its events ({per_ticket})", ticket_events, api),
                  Page(f"read API: events (busy, {BUSY_EVENTS}+)", busy_api.replace("?", "/events?", 1), api)]
    return found


def measure(page: Page, warmup: int, count: int) -> tuple[list[float], Counter, int]:
    """`count` timed requests after `warmup` untimed ones: the times in ms, the statuses,
    and what the last answer listed (a fast page that shows nothing is no figure: the
    column says what was on it)."""
    for _ in range(warmup):
        page.request()
    times, statuses = [], Counter()
    for _ in range(count):
        started = time.perf_counter()
        response = page.request()
        times.append((time.perf_counter() - started) * 1000)
        statuses[response.status_code] += 1
    return times, statuses, shown(response.text)


def shown(page: str) -> int:
    """What a page listed: a ticket's timeline entries, or else its tables' rows of data
    (the read API: its events, or the one ticket)."""
    if page.startswith("{"):
        body = json.loads(page)
        return len(body["events"]) if "events" in body else 1
    return len(re.findall(r'<li class="event\b', page)) or len(re.findall(r"<tr\b[^>]*>\s*<td", page))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--events-per-ticket", type=int, default=10)
    parser.add_argument("--days", type=int, default=30, help="the history's span (365: twelve months of events)")
    parser.add_argument("--quarantined", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page, one after another")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests per page first")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--only", help="measure only the pages whose name contains this")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ingestion-bench-console-"))
    os.chmod(work, 0o755)
    pg = PostgresServer(work / "postgres", durable=True).start()
    redis = RedisServer(work / "redis").start()
    service = None
    try:
        url = pg.create_database("bench_console")
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "ingestion", "migrate"], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url, "APP_ENV": "development"})
        print(f"PostgreSQL {pg.bindir}, durable; python -m ingestion migrate {time.monotonic() - started:.1f}s")
        with psycopg.connect(url, autocommit=True) as conn:  # the months the history spans, as maintain makes them
            from datetime import UTC, datetime, timedelta

            from ingestion.storage import partitions

            partitions.ensure_months(conn, datetime.now(UTC) - timedelta(days=args.days + 1), datetime.now(UTC))
        seconds = seed_history(url, args.tickets, args.events_per_ticket, ACCOUNTS, days=args.days)
        print(f"seeded {args.tickets:,} tickets and {args.tickets * args.events_per_ticket:,} events "
              f"(accounts {ACCOUNTS}) in {seconds:.0f}s", flush=True)
        started = time.monotonic()
        seed_console(url, args.tickets, args.quarantined)
        print(f"seeded {args.quarantined:,} quarantined deliveries, 3 reconcile cursors, a ticket with "
              f"{BUSY_EVENTS} more events in {time.monotonic() - started:.0f}s", flush=True)
        with psycopg.connect(url) as conn:
            size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        token, scoped_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        service = start_service(url, redis, args.workers, work / "service.log", env={
            "API_TOKENS": f"{token},{scoped_token}@{SCOPE[0]}/{SCOPE[1]}"})
        full, scoped = Browser(service.url, token), Browser(service.url, scoped_token)
        measured = [p for p in pages(full, scoped, args.tickets, args.events_per_ticket, ApiClient(service.url, token))
                    if not args.only or args.only in p.name]
        print(f"database {size}; service: gunicorn, production, {args.workers} sync workers; "
              f"{args.warmup} warm-up then {args.requests} requests per page, one at a time\n")
        print(f"  {'page':<36}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'rows':>6}   "
              f"{'p95 < ' + str(TARGET_P95_MS) + ' ms':<14}statuses")
        missed = []
        for page in measured:
            if not page.path:
                print(f"  {page.name:<36}   (no `older` link to follow: not measured)")
                continue
            times, statuses, rows = measure(page, args.warmup, args.requests)
            p95 = percentile(times, 0.95)
            verdict = "met" if p95 < TARGET_P95_MS else "MISSED"
            if set(statuses) != {200}:
                verdict = "not all 200"  # a redirect or an error page is not the page
            if verdict != "met":
                missed.append(page.name)
            codes = ", ".join(f"{code} x{n}" for code, n in sorted(statuses.items()))
            print(f"  {page.name:<36}{statistics.median(times):>9.1f}{p95:>9.1f}{max(times):>9.1f}{rows:>6}   "
                  f"{verdict:<14}{codes}", flush=True)
        print(f"\n{len(measured) - len(missed)} of {len(measured)} pages answered 200 under {TARGET_P95_MS} ms p95"
              + (f"; missed: {', '.join(missed)}" if missed else ""))
    finally:
        if service is not None:
            service.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
