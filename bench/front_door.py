"""`make bench-front-door`: how /health fares while the front door is attacked.

Runs every attack of tests/raw_http.py (the review's framing attacks, request smuggling
and desync shapes, slow clients) against one target, on (workers x 2) connections at
once, holds it for --hold seconds while /health is asked every half second through the
same target, and prints per attack: the slowest and median /health answer, how many
gunicorn workers died (the master replaced them), and what the attacker got.

Targets:
- `edge`: deploy/nginx/ingestion.conf (docker compose's front, TLS) before gunicorn;
- `sidecar`: deploy/k8s/nginx-sidecar.conf (the Kubernetes pod's front) before gunicorn;
- `direct`: gunicorn alone, as `make run` serves on 127.0.0.1 (no deployment exposes it:
  README, Deployment). Printed for comparison, not a target.

nginx runs with the deployed timeouts (10 s), so a hold of 12 s sees slow clients cut.
Nothing is asserted: tests/test_front_door.py asserts the shorter version in `make test-multi`.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from devserver import PostgresServer, RedisServer  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402
from nginx_harness import Nginx, Sidecar  # noqa: E402
from processes import Gunicorn  # noqa: E402
from raw_http import ATTACKS, SMUGGLED, classify, launch  # noqa: E402
from signing import AUTH_ENV  # noqa: E402


class Target:
    def __init__(self, kind: str, database_url: str, redis_url: str, workers: int, work: Path) -> None:
        proxies = {"direct": "0", "sidecar": "2", "edge": "1"}[kind]
        env = {"APP_ENV": "production", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "TRUSTED_PROXY_COUNT": proxies, "RATE_LIMIT_PER_MINUTE": "1000000", **AUTH_ENV}
        self.app = Gunicorn(env, workers=workers, log_dir=work).start()
        self.front = None
        self.verify: str | bool = True
        if kind == "direct":
            self.url, self.address, self.tls = self.app.url, ("127.0.0.1", self.app.port), False
        elif kind == "sidecar":
            self.front = Sidecar(work / "sidecar", self.app.port, quick=False)
            self.url, self.address, self.tls = self.front.url, ("127.0.0.1", self.front.port), False
        else:
            self.front = Nginx(work / "edge", [self.app.port], quick=False)
            self.url, self.address, self.tls = self.front.url, ("127.0.0.1", self.front.https), True
            self.verify = self.front.certificate
        deadline = time.monotonic() + 30
        while len(self.app.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=10)
        if not self.tls:
            return sock
        context = ssl.create_default_context(cafile=self.verify)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def health(self, timeout: float = 60) -> tuple[float, bool]:
        """(seconds to the answer, whether it was an answer: a 200 or 503 JSON, not a reset)."""
        started = time.monotonic()
        try:
            response = requests.get(self.url + "/health", verify=self.verify, timeout=timeout)
            answered = response.headers.get("Content-Type") == "application/json"
        except requests.RequestException:
            answered = False
        return time.monotonic() - started, answered

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()
        self.app.stop()


def probe_during(target: Target, hold: float) -> list[tuple[float, bool]]:
    """/health every half second while the attack is held; a probe started inside the
    window is waited for whatever it takes."""
    latencies: list[tuple[float, bool]] = []
    end = time.monotonic() + hold
    while time.monotonic() < end:
        latencies.append(target.health())
        time.sleep(0.5)
    return latencies


def run(target: Target, connections: int, hold: float, only: set[str] | None) -> None:
    print(f"  {'attack':<32}{'/health max s':>14}{'median s':>10}{'deaths':>8}   attacker got")
    for attack in ATTACKS:
        if only and attack.name not in only:
            continue
        before = set(target.app.worker_pids())
        running = launch(attack, target.connect, connections)
        try:
            latencies = probe_during(target, hold)
            got = [classify(answer) for answer in running.outcomes(2.0)]
        finally:
            running.end()
        time.sleep(0.5)
        deaths = len(before - set(target.app.worker_pids()))
        smuggled = SMUGGLED in target.app.log()
        summary = ", ".join(f"{what} x{got.count(what)}" for what in sorted(set(got)))
        failed = sum(1 for _, answered in latencies if not answered)
        seconds = [elapsed for elapsed, _ in latencies]
        print(f"  {attack.name:<32}{max(seconds):>14.2f}{statistics.median(seconds):>10.2f}{deaths:>8}   "
              f"{summary}{f'; /health failed {failed}x' if failed else ''}"
              f"{'  SMUGGLED REQUEST REACHED THE APP' if smuggled else ''}", flush=True)
        # Let the workers the arbiter replaced boot before the next attack.
        deadline = time.monotonic() + 30
        while len(target.app.worker_pids()) < len(before) and time.monotonic() < deadline:
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=["edge", "sidecar", "direct"], action="append",
                        help="repeatable; default: edge and sidecar")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hold", type=float, default=12.0, help="seconds each attack is held")
    parser.add_argument("--only", action="append", help="run only this attack (repeatable)")
    args = parser.parse_args()
    targets = args.target or ["edge", "sidecar"]
    if {"edge", "sidecar"} & set(targets) and not shutil.which("nginx"):
        sys.exit("nginx not found: apt-get install nginx")
    work = Path(tempfile.mkdtemp(prefix="ingestion-front-door-"))
    work.chmod(0o755)
    pg = PostgresServer(work / "postgres", durable=False).start()
    redis = RedisServer(work / "redis").start()
    try:
        url = pg.create_database("front_door")
        migrate(url)
        for kind in targets:
            connections = args.workers * 2
            print(f"\n{kind}: {args.workers} gunicorn workers, each attack on {connections} connections, "
                  f"held {args.hold:g} s, /health every 0.5 s", flush=True)
            (work / kind).mkdir()
            target = Target(kind, url, redis.url(), args.workers, work / kind)
            try:
                print(f"  /health at rest: {target.health()[0]:.3f} s")
                run(target, connections, args.hold, set(args.only or ()))
            finally:
                target.stop()
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    threading.excepthook = lambda hook: None  # a feeder cut off by the server is expected
    main()
