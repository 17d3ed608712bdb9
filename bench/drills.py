"""`make drills`: fault drills under steady load, against the targets of README: Proof under load and fault.

Starts a durable PostgreSQL, a Redis with an append-only file fsynced on every write (so a
SIGKILL loses nothing it acknowledged), the service under gunicorn (4 workers,
production mode, real signatures) and the relay. For each drill, eight clients send
webhooks (new tickets and updates) for 25 s while a fault is injected after 5 s:

  redis-killed    Redis SIGKILLed, restarted 10 s later
  postgres        PostgreSQL stopped (fast shutdown), started again 5 s later
  worker-killed   a gunicorn worker SIGKILLed, then another 5 s later
  redis-stalled   Redis SIGSTOPped (accepts connections, never answers), SIGCONT 10 s later

Then it waits for the relay to drain and reports, per drill: answers by status, the
longest request, tickets answered 2xx vs found in PostgreSQL, stream entries vs
stored events (every outcome but stale), and the drill's own figures (503 latency and recovery time
for PostgreSQL; metrics totals vs answers for the killed worker; breaker transitions for
Redis). Exits 1 if any request got a 5xx other than 503, or any 2xx ticket or event is
missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis as redis_py
import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import FRESHDESK_SECRET, ZENDESK_SECRET, Server, signed_line  # noqa: E402
from devserver import PostgresServer, RedisServer  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402

CLIENTS, DURATION, FAULT_AT = 8, 25.0, 5.0


@dataclass
class Answer:
    started: float
    elapsed: float
    status: int  # 0: no HTTP answer (connection reset by a dying worker)
    ticket_id: str | None = None
    retry_after: str | None = None


@dataclass
class Load:
    url: str
    prefix: str
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self, number: int) -> None:
        session = requests.Session()
        n = 0
        while not self.stop.is_set():
            n += 1
            ticket = f"{self.prefix}-{number}-{n // 3 if n % 3 == 2 else n}"  # every third an update
            subject = f"subject {n}"
            path, *headers, body = signed_line("freshdesk" if n % 2 else "zendesk", ticket, subject).split("\t")
            started = time.monotonic()
            try:
                response = session.post(self.url + path, data=body.encode(), timeout=30,
                                        headers=dict(zip(headers[::2], headers[1::2])))
                status = response.status_code
                ticket_id = response.json().get("ticket_id") if status < 300 else None
                retry_after = response.headers.get("Retry-After")
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                # (A worker killed while it sent the answer cuts the body off half-way:
                # requests raises ChunkedEncodingError, not a ConnectionError. No answer,
                # like a closed connection, and the client goes on.)
                status, ticket_id, retry_after = 0, None, None
            with self.lock:
                self.answers.append(Answer(started, time.monotonic() - started, status, ticket_id, retry_after))

    def run(self, fault) -> None:
        threads = [threading.Thread(target=self.client, args=(c,)) for c in range(CLIENTS)]
        self.t0 = time.monotonic()
        for thread in threads:
            thread.start()
        fault(self)
        remaining = DURATION - (time.monotonic() - self.t0)
        time.sleep(max(0.0, remaining))
        self.stop.set()
        for thread in threads:
            thread.join()


class Stack:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.pg = PostgresServer(work / "postgres", durable=True).start()
        self.redis = RedisServer(work / "redis", persistent=True, fsync_always=True).start()
        self.url = self.pg.create_database("drills")
        migrate(self.url)
        env = {"APP_ENV": "production", "DATABASE_URL": self.url, "REDIS_URL": self.redis.url(),
               "GUNICORN_WORKERS": "4", "RATE_LIMIT_PER_MINUTE": "1000000000",
               "FRESHDESK_WEBHOOK_SECRET": FRESHDESK_SECRET, "ZENDESK_SIGNING_SECRET": ZENDESK_SECRET,
               "CIRCUIT_BREAKER_TIMEOUT": "3", "CIRCUIT_BREAKER_THRESHOLD": "5", "REDIS_TIMEOUT": "0.25"}
        self.service = Server("service", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                              env, ROOT, work / "service.log")
        self.relay = subprocess.Popen([sys.executable, "-m", "ingestion", "relay"], cwd=ROOT,
                                      env={**os.environ, **env, "PROMETHEUS_MULTIPROC_DIR": ""},
                                      stdout=open(work / "relay.log", "wb"), stderr=subprocess.STDOUT)

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.service.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def scrape(self) -> dict:
        response = requests.get(self.service.url + "/metrics", timeout=10)
        response.raise_for_status()  # a refused scrape is a failure of its own, not a parse error
        text = response.text
        return {f.name: f for f in text_string_to_metric_families(text)}

    def backlog(self) -> int:
        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT count(*) FROM events WHERE published_at IS NULL "
                                "AND outcome <> 'stale'").fetchone()[0]

    def stop(self) -> None:
        self.relay.terminate()
        self.relay.wait(20)
        self.service.stop()
        self.redis.resume() if self.redis.running else None
        self.redis.stop()
        self.pg.stop()


def requests_total(families: dict) -> float:
    return sum(s.value for s in families["ingestion_http_requests"].samples
               if s.name == "ingestion_http_requests_total" and "/api/" in s.labels["endpoint"])


def breaker_transitions(log: Path, offset: int) -> list[str]:
    """The breaker transitions the workers logged since `offset` (bytes into the log)."""
    with open(log, "rb") as text:
        text.seek(offset)
        records = [json.loads(line) for line in text.read().decode().splitlines() if line.strip()]
    return [r["to"] for r in records if r.get("breaker") == "redis"]


def drill_redis_killed(stack: Stack, load: Load) -> dict:
    time.sleep(FAULT_AT)
    stack.redis.process.kill()
    stack.redis.process.wait()
    time.sleep(10)
    stack.redis.start()
    return {}


def drill_redis_stalled(stack: Stack, load: Load) -> dict:
    time.sleep(FAULT_AT)
    stack.redis.pause()
    time.sleep(10)
    stack.redis.resume()
    return {}


def drill_worker_killed(stack: Stack, load: Load) -> dict:
    for _ in range(2):
        time.sleep(FAULT_AT)
        os.kill(stack.workers()[0], signal.SIGKILL)
    return {}


def drill_postgres(stack: Stack, load: Load) -> dict:
    time.sleep(FAULT_AT)
    stack.pg.stop()
    load.down_at = time.monotonic()
    time.sleep(5)
    stack.pg.start()
    load.back_at = time.monotonic()
    return {}


def report(name: str, stack: Stack, load: Load, before: dict, log_offset: int) -> bool:
    answers = load.answers
    statuses = Counter(a.status for a in answers)
    accepted = {a.ticket_id for a in answers if 200 <= a.status < 300}
    deadline = time.monotonic() + 60
    while stack.backlog() and time.monotonic() < deadline:
        time.sleep(0.5)
    with psycopg.connect(stack.url) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT id FROM tickets WHERE external_id LIKE %s", (load.prefix + "-%",))}
        events = {r[0] for r in conn.execute(
            "SELECT e.id FROM events e JOIN tickets t ON t.id = e.ticket_id "
            "WHERE e.outcome <> 'stale' AND t.external_id LIKE %s", (load.prefix + "-%",))}
    entries = [int(fields[b"event_id"]) for _, fields in redis_py.Redis.from_url(stack.redis.url()).xrange(
        "ingestion:tickets") if fields[b"external_id"].decode().startswith(load.prefix + "-")]
    lost_tickets = accepted - stored
    lost_events = events - set(entries)
    server_errors = sum(count for status, count in statuses.items() if status >= 500 and status != 503)
    print(f"\n{name}")
    print(f"  answers: {dict(sorted(statuses.items()))}   (0 = connection closed by a dying worker, no answer)")
    print(f"  longest request: {max(a.elapsed for a in answers):.2f} s")
    print(f"  tickets: {len(accepted)} answered 2xx, {len(accepted & stored)} of them in PostgreSQL, {len(lost_tickets)} lost")
    print(f"  events: {len(events)} stored (created/updated/recorded), {len(set(entries))} in the stream "
          f"({len(entries) - len(set(entries))} duplicates: at-least-once), {len(lost_events)} missing")
    ok = not lost_tickets and not lost_events and server_errors == 0
    if name == "postgres":
        during = [a for a in answers if load.down_at <= a.started < load.back_at]
        unavailable = [a for a in during if a.status == 503]
        first_ok = min((a.started + a.elapsed for a in answers if a.started >= load.back_at and a.status < 300),
                       default=float("nan"))
        retry = Counter(a.retry_after for a in unavailable)
        print(f"  outage: {len(unavailable)} answered 503 (Retry-After {dict(retry)}), longest {max((a.elapsed for a in during), default=0):.2f} s (target <= 2 s)")
        print(f"  recovery: first 2xx {first_ok - load.back_at:.2f} s after PostgreSQL accepted connections (target <= 5 s)")
        ok = ok and max((a.elapsed for a in during), default=0) <= 2.0 and first_ok - load.back_at <= 5.0
    if name == "worker-killed":
        after = stack.scrape()
        counted = requests_total(after) - requests_total(before)
        answered = sum(count for status, count in statuses.items() if status)
        in_flight = [s.value for s in after["ingestion_http_requests_in_flight"].samples][0]
        print(f"  metrics: {counted:.0f} requests counted, {answered} answered, {statuses[0]} cut off; "
              f"in flight now {in_flight:.0f}; workers now {len(stack.workers())}")
        # A worker killed between counting a request and sending its answer counts one
        # request nobody received; never fewer than answered.
        ok = ok and answered <= counted <= answered + statuses[0] and in_flight == 0 and len(stack.workers()) == 4
    if name.startswith("redis"):
        transitions = breaker_transitions(stack.work / "service.log", log_offset)
        print(f"  breaker transitions logged by the workers: {Counter(transitions)}")
        time.sleep(4)
        state = [s.value for s in stack.scrape()["ingestion_circuit_breaker_state"].samples][0]
        print(f"  breaker state now: {state:.0f} (0 closed)")
    print(f"  verdict: {'ok' if ok else 'FAILED'}")
    return ok


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ingestion-drills-"))
    os.chmod(work, 0o755)
    stack = Stack(work)
    drills = {"redis-killed": drill_redis_killed, "postgres": drill_postgres,
              "worker-killed": drill_worker_killed, "redis-stalled": drill_redis_stalled}
    only = sys.argv[1:] or list(drills)
    results = []
    try:
        print(f"{CLIENTS} clients, {DURATION:.0f} s per drill, fault after {FAULT_AT:.0f} s; service: 4 sync workers")
        for name in only:
            load = Load(stack.service.url, f"{name}-{int(time.time())}")
            before = stack.scrape()
            log_offset = (work / "service.log").stat().st_size
            load.run(lambda l, name=name: drills[name](stack, l))
            time.sleep(2)
            results.append(report(name, stack, load, before, log_offset))
    finally:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{sum(results)}/{len(results)} drills met their targets")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
