"""`make bench`: the service against two reference apps, side by side, same gunicorn.

Starts a durable PostgreSQL and a Redis on loopback, the service (production mode, real
signatures, rate limit set too high to interfere), bench/reference_app.py (bare Flask +
psycopg: an upper bound) and bench/plain_app.py (the service's features written the
plain documented way: flask-limiter's decorator on Redis, GunicornPrometheusMetrics,
python-json-logger, Basic auth, an upsert and a delivery row in one transaction) under
the same gunicorn worker model and count, then drives them alternately with wrk for
several rounds and prints requests/s, p50 and p99 per scenario, with the ratios (medians
over rounds):

- creates: every request a new ticket (HMAC-signed Freshdesk and Zendesk-signed bodies);
- redeliveries: the same already-stored tickets again (the duplicate fast path);
- creates, and new events on stored tickets, with 1,000,000 tickets and 10,000,000
  events stored vs an empty database (`--scale`);
- worker RSS before and after 200,000 requests (`--memory`).

Nothing is asserted: the figures are printed for a human (and docs/performance.md).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devserver import PostgresServer, RedisServer, free_port  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402

FRESHDESK_SECRET = "bench-freshdesk-secret"
ZENDESK_SECRET = "bench-zendesk-secret"
PLAIN_USER, PLAIN_PASSWORD = "bench", "bench-basic-password"
REFERENCE_TABLE = """
CREATE TABLE IF NOT EXISTS reference_tickets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source text NOT NULL, external_id text NOT NULL, subject text, payload jsonb,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, external_id))
"""
PLAIN_TABLES = """
CREATE TABLE IF NOT EXISTS plain_tickets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source text NOT NULL, external_id text NOT NULL, subject text, status text, payload jsonb,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, external_id));
CREATE TABLE IF NOT EXISTS plain_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ticket_id uuid NOT NULL, source text NOT NULL,
    external_id text NOT NULL, outcome text NOT NULL, received_at timestamptz NOT NULL DEFAULT now());
"""


def signed_line(vendor: str, ticket_id: str, subject: str, basic_auth: bool = False,
                ticket: dict | None = None) -> str:
    """One request for requests.lua: path, header pairs, body, tab-separated. Signed as the
    vendor signs, or with Basic credentials (the plain reference checks those). `ticket`:
    the ticket object to send instead of a whole new ticket."""
    body = json.dumps({"ticket": ticket or {
        "id": ticket_id, "subject": subject, "status": "open", "priority": "normal",
        "description": "<p>The printer is on fire</p>", "tags": ["bench", "printer"],
        "updated_at": "2025-02-03T10:15:00Z"}})
    if basic_auth:
        headers = ["Authorization", "Basic " + base64.b64encode(f"{PLAIN_USER}:{PLAIN_PASSWORD}".encode()).decode()]
    elif vendor == "freshdesk":
        headers = ["X-Freshdesk-Signature", hmac.new(FRESHDESK_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()]
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hmac.new(ZENDESK_SECRET.encode(), stamp.encode() + body.encode(), hashlib.sha256).digest()
        headers = ["X-Zendesk-Webhook-Signature", base64.b64encode(digest).decode(),
                   "X-Zendesk-Webhook-Signature-Timestamp", stamp]
    headers += ["Content-Type", "application/json"]
    return "\t".join([f"/api/v1/ingest/webhook/{vendor}", *headers, body])


def write_requests(path: Path, prefix: str, count: int, distinct: int | None = None, basic_auth: bool = False) -> Path:
    """`count` lines; with `distinct`, only that many tickets, repeated (redeliveries)."""
    with open(path, "w") as out:
        for n in range(count):
            k = n % distinct if distinct else n
            vendor = "freshdesk" if k % 2 == 0 else "zendesk"
            out.write(signed_line(vendor, f"{prefix}-{k}", f"Ticket {k}", basic_auth) + "\n")
    return path


def write_events(path: Path, tickets: list[tuple[str, str]], count: int) -> Path:
    """`count` new events (a status change with a comment, newer than anything stored) for
    tickets that exist, given as (vendor, external id), taken at random."""
    rng = random.Random(len(tickets))
    base = datetime.now(timezone.utc)
    with open(path, "w") as out:
        for n in range(count):
            vendor, external_id = tickets[rng.randrange(len(tickets))]
            stamp = (base + timedelta(milliseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ticket = {"id": external_id, "status": "pending", "updated_at": stamp,
                      "latest_comment": f"Event {n}: the printer is still on fire"}
            out.write(signed_line(vendor, external_id, "", ticket=ticket) + "\n")
    return path


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "BIND": f"127.0.0.1:{self.port}"}
        log.write_bytes(b"")
        self.log = open(log, "ab")  # O_APPEND: the workers' lines never overwrite each other
        self.process = subprocess.Popen(command, cwd=cwd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.post(self.url + "/api/v1/ingest/webhook/none", timeout=2)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"{name} did not start; see {log}")
                time.sleep(0.2)

    def worker_rss_kib(self) -> list[int]:
        pids = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout.split()
        rss = []
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            rss.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)))
        return sorted(rss)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


@dataclass
class Bench:
    work: Path
    pg: PostgresServer
    redis: RedisServer
    url: str
    service: Server
    reference: Server | None
    plain: Server | None = None


def start_service(url: str, redis: RedisServer, workers: int, log: Path, name: str = "service",
                  tree: Path = ROOT) -> Server:
    """The service under gunicorn.conf.py: production mode, real secrets, a rate limit too
    high to refuse anything. `tree`: another checkout of the service to run instead."""
    return Server(name, [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], {
        "DATABASE_URL": url, "GUNICORN_WORKERS": str(workers), "APP_ENV": "production", "REDIS_URL": redis.url(),
        "RATE_LIMIT_PER_MINUTE": "1000000000", "PYTHONPATH": str(tree),
        "FRESHDESK_WEBHOOK_SECRET": FRESHDESK_SECRET, "ZENDESK_SIGNING_SECRET": ZENDESK_SECRET,
    }, tree, log)


def start_other_tree(bench: "Bench", tree: Path, workers: int) -> Server:
    """The service of another checkout (`git worktree add /tmp/before <commit>`), on a
    database of its own that its own migrations made: what a change is measured against."""
    url = bench.pg.create_database("bench_other")
    subprocess.run([sys.executable, "-m", "ingestion", "migrate"], cwd=tree, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(tree), "DATABASE_URL": url, "APP_ENV": "development"})
    return start_service(url, bench.redis, workers, bench.work / "other.log", "other", tree)


@contextmanager
def bench_setup(prefix: str, workers: int, with_reference: bool = True) -> Iterator[Bench]:
    """A durable PostgreSQL and a Redis in a fresh directory, the schema and the reference
    table, the service (production mode, real secrets, a limit too high to refuse
    anything) and the reference app under gunicorn with `workers` sync workers each;
    all stopped and removed afterwards. Shared by run.py and cpu.py."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(work, 0o755)
    pg = PostgresServer(work / "postgres", durable=True).start()
    redis = RedisServer(work / "redis").start()
    servers: list[Server] = []
    try:
        url = pg.create_database("bench")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(REFERENCE_TABLE)
            conn.execute(PLAIN_TABLES)
        common = {"DATABASE_URL": url, "GUNICORN_WORKERS": str(workers)}
        servers.append(start_service(url, redis, workers, work / "service.log"))
        if with_reference:
            servers.append(Server("reference", [sys.executable, "-m", "gunicorn", "-c", "reference.gunicorn.conf.py",
                                                "reference_app:app"], common, ROOT / "bench", work / "reference.log"))
            metrics_dir = work / "plain-metrics"
            metrics_dir.mkdir()
            servers.append(Server("plain", [sys.executable, "-m", "gunicorn", "-c", "plain.gunicorn.conf.py",
                                            "plain_app:app"],
                                  {**common, "REDIS_URL": redis.url(), "PLAIN_BASIC_AUTH": f"{PLAIN_USER}:{PLAIN_PASSWORD}",
                                   # a limit too high to refuse anything, as the service's
                                   "PLAIN_LIMIT": "100000000 per 6 second", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                                   "PLAIN_METRICS_PORT": str(free_port())},
                                  ROOT / "bench", work / "plain.log"))
        yield Bench(work, pg, redis, url, servers[0], servers[1] if with_reference else None,
                    servers[2] if with_reference else None)
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def wrk(url: str, request_file: Path, seconds: int, connections: int, threads: int = 2) -> dict:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s",
         str(ROOT / "bench" / "requests.lua"), url, "--", str(request_file), str(threads)],
        capture_output=True, text=True, check=True).stdout
    result = dict(re.findall(r"(\w+)=([\d.]+)", re.search(r"^RESULT (.*)$", out, re.M).group(1)))
    statuses = dict(re.findall(r"(\d+)=(\d+)", re.search(r"^STATUSES(.*)$", out, re.M).group(1)))
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(result["rps"]), "p50": float(result["p50"]), "p99": float(result["p99"]),
            "n": int(result["n"]), "statuses": statuses, "socket_errors": errors.group(1) if errors else ""}


def replay(url: str, request_file: Path, times: int) -> None:
    """Send every line of a request file `times` times, in order per line (8 at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    lines = [line.rstrip("\n").split("\t") for line in open(request_file)]

    def send(fields: list[str]) -> None:
        headers = dict(zip(fields[1:-1:2], fields[2:-1:2]))
        for _ in range(times):
            requests.post(url + fields[0], data=fields[-1].encode(), headers=headers, timeout=30).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, lines))


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}


def show(title: str, rows: dict[str, list[dict]]) -> None:
    print(f"\n{title}")
    print(f"  {'target':<26}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}   per round req/s; statuses")
    for name, runs in rows.items():
        m = median_of(runs)
        detail = ", ".join(f"{r['rps']:.0f}" for r in runs)
        statuses = sorted({s for r in runs for s in r["statuses"]})
        print(f"  {name:<26}{m['rps']:>10.0f}{m['p50']:>10.2f}{m['p99']:>10.2f}   {detail}; {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Five rounds of 15 s: on a shared 2-core machine single rounds of the same pair vary by
    # about +-25% (docs/performance.md); the median of five is stable to a few percent.
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--scale", action="store_true", help="also measure with 1,000,000 tickets stored")
    parser.add_argument("--events-per-ticket", type=int, default=10, help="events seeded per ticket for --scale")
    parser.add_argument("--memory", action="store_true", help="also measure worker RSS over 200,000 requests")
    parser.add_argument("--compare-tree", type=Path,
                        help="also run the service of this other checkout, side by side (before/after a change)")
    parser.add_argument("--only", choices=["creates", "redeliveries", "none"],
                        help="run one scenario of the comparison (none: only --scale / --memory)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")

    with bench_setup("ingestion-bench-", args.workers) as bench:
        work, pg, redis, service = bench.work, bench.pg, bench.redis, bench.service
        reference = bench.reference
        print(f"PostgreSQL {pg.bindir}, durable; Redis {redis.binary}; {args.workers} sync workers each; "
              f"wrk -t2 -c{args.connections} -d{args.seconds}s; {args.rounds} rounds, alternating "
              "(the order turning each round; a CHECKPOINT before each run)")

        per_request_budget = 6000 * args.seconds  # more lines than a round can send: no repeats
        targets = {"bare (Flask+psycopg)": reference, "plain (documented way)": bench.plain, "service": service}
        if args.compare_tree:
            other = start_other_tree(bench, args.compare_tree.resolve(), args.workers)
            targets[f"service at {args.compare_tree.name}"] = other
        results: dict[str, dict[str, list[dict]]] = {"creates": {t: [] for t in targets},
                                                     "redeliveries": {t: [] for t in targets}}
        for server in targets.values() if args.only != "none" else ():  # redeliveries' tickets: stored, seen again
            stored = write_requests(work / "stored.tsv", "stored", 2000, basic_auth=server is bench.plain)
            replay(server.url, stored, times=2)
        def checkpoint() -> None:
            """Every run starts from a CHECKPOINT: a checkpoint falling inside one target's
            run (and the full-page images after it) would otherwise be that target's bad luck."""
            with psycopg.connect(bench.url, autocommit=True) as conn:
                conn.execute("CHECKPOINT")

        names = list(targets)
        for round_ in range(args.rounds if args.only != "none" else 0):
            # The order turns every round, so no target always runs right after the same one.
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                server = targets[name]
                basic = server is bench.plain
                if args.only in (None, "creates"):
                    fresh = write_requests(work / "creates.tsv", f"r{round_}-{server.name}", per_request_budget,
                                           basic_auth=basic)
                    checkpoint()
                    results["creates"][name].append(wrk(server.url, fresh, args.seconds, args.connections))
                if args.only in (None, "redeliveries"):
                    again = write_requests(work / "again.tsv", "stored", per_request_budget, distinct=2000,
                                           basic_auth=basic)
                    checkpoint()
                    results["redeliveries"][name].append(wrk(server.url, again, args.seconds, args.connections))

        bare, plain, svc, *others = list(targets)
        for scenario, rows in results.items():
            if all(rows.values()):
                show(scenario, rows)
        print("\nratios (medians)")

        def ratio(scenario: str, over: str, scenario_over: str | None = None) -> float:
            return median_of(results[scenario][svc])["rps"] / median_of(results[scenario_over or scenario][over])["rps"]

        if all(results["creates"].values()):
            print(f"  creates: service / plain              {ratio('creates', plain):.2f}x   (target >= 1.0)")
            print(f"  creates: service / bare               {ratio('creates', bare):.2f}x")
        if all(results["redeliveries"].values()):
            print(f"  redeliveries: service / plain         {ratio('redeliveries', plain):.2f}x")
            print(f"  redeliveries: service / bare          {ratio('redeliveries', bare):.2f}x")
        if all(results["creates"].values()) and all(results["redeliveries"].values()):
            print(f"  service redeliveries / creates        {ratio('redeliveries', svc, 'creates'):.2f}x   (target >= 1.5)")
        for other in others:
            for scenario in ("creates", "redeliveries"):
                if all(results[scenario].values()):
                    print(f"  {scenario}: service / {other:<22}{ratio(scenario, other):.2f}x")

        if args.scale:
            scale(bench, args)
        if args.memory:
            memory(service, work, args)


def scale(bench: Bench, args) -> None:
    """Creates on an empty table vs with 1,000,000 tickets stored, side by side: a second
    service instance on a second database holding the seed, the two driven alternately
    round by round (as the reference comparison is), so that the machine's drift and
    background writes fall on both alike. Both databases start from a CHECKPOINT, so no
    round pays for flushing the seed."""
    with psycopg.connect(bench.url, autocommit=True) as conn:
        conn.execute("TRUNCATE tickets, events, deliveries")
        conn.execute("CHECKPOINT")
    seeded_url = bench.pg.create_database("bench_seeded")
    migrate(seeded_url)
    with psycopg.connect(seeded_url, autocommit=True) as conn:
        started = time.monotonic()
        conn.execute("""
            INSERT INTO tickets (vendor, external_id, subject, description, status, priority, tags, vendor_updated_at)
            SELECT CASE WHEN n % 2 = 0 THEN 'freshdesk' ELSE 'zendesk' END, 'seed-' || n, 'Seeded ticket ' || n,
                   '<p>The printer is on fire</p>', 'open', 'normal', ARRAY['bench'], now()
              FROM generate_series(1, 1000000) AS n""")
        # Ten events per ticket, as a history accumulates: in ticket order, then by time.
        conn.execute("""
            INSERT INTO events (ticket_id, outcome, revision, event_type, dedup_key, comment_body, payload,
                                received_at, published_at)
            SELECT t.id, CASE WHEN g = 1 THEN 'created' ELSE 'recorded' END, 1, 'ticket.comment_added',
                   'body:' || md5(t.external_id || ':' || g), 'A comment on the printer fire, number ' || g,
                   jsonb_build_object('ticket', jsonb_build_object('id', t.external_id), 'comment', 'number ' || g),
                   now() - interval '1 day', now()
              FROM tickets t CROSS JOIN generate_series(1, %s) AS g
             ORDER BY g, t.id""", (args.events_per_ticket,))
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("VACUUM ANALYZE events")
        conn.execute("CHECKPOINT")
        print(f"\nseeded 1,000,000 tickets and {args.events_per_ticket * 1_000_000:,} events in "
              f"{time.monotonic() - started:.0f}s")
    seeded = start_service(seeded_url, bench.redis, args.workers, bench.work / "service-seeded.log", "seeded")
    # New events go to tickets the database holds: on the seeded one, any of the million
    # (an old ticket gets a comment: a random, mostly cold page of each index); on the
    # empty one, the tickets this measurement created (all it has).
    seed_tickets = [("freshdesk" if n % 2 == 0 else "zendesk", f"seed-{n}") for n in range(1, 1_000_001)]
    created: list[tuple[str, str]] = []
    try:
        targets = {"empty table": bench.service, "1,000,000 tickets": seeded}
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        event_runs: dict[str, list[dict]] = {name: [] for name in targets}
        for round_ in range(args.rounds):
            for name, server in targets.items():
                prefix = f"scale{round_}-{server.name}"
                fresh = write_requests(bench.work / "creates.tsv", prefix, 6000 * args.seconds)
                runs[name].append(wrk(server.url, fresh, args.seconds, args.connections))
                if server is bench.service:  # the tickets this round stored (wrk's threads split the lines)
                    with psycopg.connect(bench.url) as conn:
                        created += conn.execute("SELECT vendor, external_id FROM tickets WHERE external_id LIKE %s",
                                                (prefix + "-%",)).fetchall()
            for name, server in targets.items():
                events = write_events(bench.work / "events.tsv", created if server is bench.service else seed_tickets,
                                      6000 * args.seconds)
                event_runs[name].append(wrk(server.url, events, args.seconds, args.connections))
    finally:
        seeded.stop()
    seeded_with = f"1,000,000 tickets and {args.events_per_ticket * 1_000_000:,} events"
    show(f"service creates: empty tables vs {seeded_with}", runs)
    show(f"service new events on stored tickets: empty tables vs {seeded_with}", event_runs)
    for title, rows in (("creates", runs), ("new events", event_runs)):
        ratio = median_of(rows["1,000,000 tickets"])["rps"] / median_of(rows["empty table"])["rps"]
        print(f"  {title}: 1M / empty{'':<{24 - len(title)}}{ratio:.2f}x   (target >= 0.9)")


def memory(service: Server, work: Path, args) -> None:
    """Worker RSS before and after 200,000 requests (creates and redeliveries mixed)."""
    before = service.worker_rss_kib()
    sent = 0
    batch = 0
    while sent < 200_000:
        fresh = write_requests(work / "mem.tsv", f"mem{batch}", 40_000, distinct=None if batch % 2 else 5000)
        sent += wrk(service.url, fresh, 20, args.connections)["n"]
        batch += 1
    after = service.worker_rss_kib()
    print(f"\nworker RSS over {sent} requests (KiB, each worker)")
    print(f"  before: {before}")
    print(f"  after:  {after}")
    print(f"  growth: {[a - b for a, b in zip(after, before)]}")


if __name__ == "__main__":
    main()
