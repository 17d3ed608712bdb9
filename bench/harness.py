"""What the benches share: the servers under test, the signed request files, wrk.

A durable PostgreSQL and a Redis on loopback (devserver/), the service under gunicorn in
production mode with real signatures (the rate limit set too high to interfere), the
bare and plain reference apps under the same gunicorn worker model; request files for
bench/requests.lua; wrk and its parsed result. bench/run.py, cpu.py, drills.py and
fuzz.py build on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devserver import PostgresServer, RedisServer, free_port
from ingestion.storage.migrate import migrate

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
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
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
    base = datetime.now(UTC)
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
    #: Every server started for this bench, stopped when it ends (start_other_tree's too).
    servers: list[Server] = field(default_factory=list)


def service_env(url: str, redis_url: str) -> dict[str, str]:
    """The service's settings in every bench: production mode, the bench's real secrets, a
    rate limit too high to refuse anything."""
    return {"DATABASE_URL": url, "APP_ENV": "production", "REDIS_URL": redis_url,
            "RATE_LIMIT_PER_MINUTE": "1000000000", "FRESHDESK_WEBHOOK_SECRET": FRESHDESK_SECRET,
            "ZENDESK_SIGNING_SECRET": ZENDESK_SECRET}


def plain_env(url: str, redis_url: str) -> dict[str, str]:
    """The plain reference's settings: its Basic credentials, a limit too high to refuse
    anything, as the service's."""
    return {"DATABASE_URL": url, "REDIS_URL": redis_url, "PLAIN_BASIC_AUTH": f"{PLAIN_USER}:{PLAIN_PASSWORD}",
            "PLAIN_LIMIT": "100000000 per 6 second"}


def start_service(url: str, redis: RedisServer, workers: int, log: Path, name: str = "service",
                  tree: Path = ROOT, env: dict[str, str] | None = None) -> Server:
    """The service under gunicorn.conf.py: production mode, real secrets, a rate limit too
    high to refuse anything. `tree`: another checkout of the service to run instead;
    `env`: more settings (API_TOKENS for the console)."""
    return Server(name, [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], {
        **service_env(url, redis.url()), "GUNICORN_WORKERS": str(workers), "PYTHONPATH": str(tree), **(env or {}),
    }, tree, log)


def start_other_tree(bench: Bench, tree: Path, workers: int) -> Server:
    """The service of another checkout (`git worktree add /tmp/before <commit>`), on a
    database of its own that its own migrations made: what a change is measured against."""
    url = bench.pg.create_database("bench_other")
    subprocess.run([sys.executable, "-m", "ingestion", "migrate"], cwd=tree, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(tree), "DATABASE_URL": url, "APP_ENV": "development"})
    # Its own Redis database: the two trees must not answer each other's redeliveries
    # from one duplicate cache (a ticket stored through one would never reach the other's
    # database), nor count one rate-limit window.
    server = start_service(url, bench.redis, workers, bench.work / "other.log", "other", tree,
                           env={"REDIS_URL": bench.redis.url(db=1)})
    bench.servers.append(server)  # stopped with the others (it was left running before)
    return server


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
                                  {**common, **plain_env(url, redis.url()), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                                   "PLAIN_METRICS_PORT": str(free_port())},
                                  ROOT / "bench", work / "plain.log"))
        yield Bench(work, pg, redis, url, servers[0], servers[1] if with_reference else None,
                    servers[2] if with_reference else None, servers)
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
    result = dict(re.findall(r"(\w+)=([\d.]+)", re.search(r"^RESULT (.*)$", out, re.MULTILINE).group(1)))
    statuses = dict(re.findall(r"(\d+)=(\d+)", re.search(r"^STATUSES(.*)$", out, re.MULTILINE).group(1)))
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
