"""`python bench/app_cpu.py`: the CPU one create costs the app's own code, the service's
against the plain reference's, with no gunicorn, no load generator and nothing else
competing for the cores.

Each app is imported in this process as its WSGI callable (the service in production
mode with real signatures, the plain app with its Basic credentials and flask-limiter),
on a throwaway PostgreSQL (fsync off) and Redis, and called directly with `make bench`'s
create bodies, built as WSGI environs beforehand. After a warm-up, `--requests` creates
are timed with time.process_time(): this process's CPU only, so what PostgreSQL and Redis
spend serving it is not counted, and the client side of both round trips is. The two
apps run in turns, `--rounds` times, each in a process of its own; the medians are
printed. What this separates from `bench/cpu.py`: the application code's own cost, where
cpu.py counts a gunicorn worker under wrk (parsing, the access line, the kernel) and the
effect of other processes on it. Nothing is asserted (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import harness  # noqa: E402
import psycopg  # noqa: E402

from devserver import PostgresServer, RedisServer  # noqa: E402
from ingestion.storage.migrate import migrate  # noqa: E402


def environ(line: str) -> dict:
    from werkzeug.test import EnvironBuilder

    path, *rest = line.split("\t")
    pairs = rest[:-1]
    headers = {pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)}
    built = EnvironBuilder(path=path, method="POST", headers=headers, data=rest[-1].encode()).get_environ()
    built["REMOTE_ADDR"] = "127.0.0.1"
    return built


def measure(target: str, requests: int, warm_up: int) -> float:
    """In a child process (set up by main): CPU microseconds per create of one app."""
    if target == "service":
        from ingestion.services import EXTENSION
        from wsgi import app

        app.extensions[EXTENSION].start_worker()  # what gunicorn's post_worker_init does
    else:
        import plain_app

        plain_app.pool.open()
        app = plain_app.app
    prefix = f"{target}-{time.monotonic_ns()}"
    lines = [harness.signed_line("freshdesk" if n % 2 == 0 else "zendesk", f"{prefix}-{n}", f"Ticket {n}",
                                 basic_auth=target == "plain") for n in range(warm_up + requests)]
    environs = [environ(line) for line in lines]
    statuses: dict[str, int] = {}

    def start_response(status, headers, exc_info=None):
        statuses[status] = statuses.get(status, 0) + 1

    def call(env):
        body = app(env, start_response)
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()

    for env in environs[:warm_up]:
        call(env)
    started = time.process_time()
    for env in environs[warm_up:]:
        call(env)
    spent = time.process_time() - started
    assert set(statuses) == {"201 CREATED"}, statuses
    return spent / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["service", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(measure(args.child, args.requests, 500))
        return
    with tempfile.TemporaryDirectory(prefix="ingestion-app-cpu-") as work:
        os.chmod(work, 0o755)
        pg = PostgresServer(Path(work) / "pg", durable=False).start()
        redis = RedisServer(Path(work) / "redis").start()
        try:
            url = pg.create_database("bench")
            migrate(url)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(harness.PLAIN_TABLES)
            env = {**os.environ, **harness.service_env(url, redis.url()), **harness.plain_env(url, redis.url())}
            per: dict[str, list[float]] = {"service": [], "plain": []}
            for round_ in range(args.rounds):
                for target in (("service", "plain") if round_ % 2 == 0 else ("plain", "service")):
                    metrics = Path(work) / f"metrics-{target}-{round_}"
                    metrics.mkdir()
                    out = subprocess.run([sys.executable, __file__, "--child", target, "--requests", str(args.requests)],
                                         env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}, check=True,
                                         capture_output=True, text=True).stdout
                    per[target].append(float(out.split()[-1]))
            service, plain = (statistics.median(per[t]) for t in ("service", "plain"))
            print(f"app CPU per create, in process, {args.requests} creates x {args.rounds} rounds (medians):")
            print(f"  service {service:6.0f} us   (rounds {', '.join(f'{v:.0f}' for v in per['service'])})")
            print(f"  plain   {plain:6.0f} us   (rounds {', '.join(f'{v:.0f}' for v in per['plain'])})")
            print(f"  service / plain {service / plain:.2f}x of the CPU")
        finally:
            redis.stop()
            pg.stop()


if __name__ == "__main__":
    main()
