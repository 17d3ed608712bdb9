"""`python -m devserver` (what `make run` does): the whole service on this machine.

Starts a PostgreSQL and a Redis under `.data/` for whichever of DATABASE_URL / REDIS_URL
is not set, applies the migrations, then runs gunicorn (development mode, on 127.0.0.1:8080
unless BIND says otherwise), the relay and, when a vendor's API is configured
(ZENDESK_API_*, FRESHDESK_API_*), the reconciler, sharing one metrics directory. Ctrl-C
stops it all.
Development tooling: not part of the installed package or the image.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent
#: Seconds before a relay or reconciler that exited is started again (a crash loop stays slow).
HELPER_RESTART = 2


def local_servers(data_dir: Path) -> list:
    """Start PostgreSQL / Redis under data_dir for whichever URL is not already set."""
    started = []
    if not os.environ.get("DATABASE_URL"):
        pg = PostgresServer(data_dir / "postgres").start()
        started.append(pg)
        os.environ["DATABASE_URL"] = pg.create_database("ingestion")
        print(f"local PostgreSQL: {os.environ['DATABASE_URL']} (data in {pg.data_dir})", flush=True)
    if not os.environ.get("REDIS_URL"):
        redis = RedisServer(data_dir / "redis", persistent=True).start()
        started.append(redis)
        os.environ["REDIS_URL"] = redis.url()
        print(f"local Redis: {os.environ['REDIS_URL']} (data in {redis.data_dir})", flush=True)
    return started


def wait_until_serving(bind: str, timeout: float = 30) -> None:
    host, _, port = bind.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT / ".data"), help="where the local servers keep their data")
    data_dir = Path(parser.parse_args().data_dir)

    os.environ.setdefault("APP_ENV", "development")
    metrics_dir = data_dir / "metrics"  # shared by gunicorn and the relay
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    servers = local_servers(data_dir)
    children: list[subprocess.Popen] = []

    def stop() -> None:
        # A second Ctrl-C while stopping must not leave the local PostgreSQL running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        for server in reversed(servers):
            server.stop()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if subprocess.run([sys.executable, "-m", "ingestion", "migrate"], cwd=ROOT).returncode != 0:
            return 1
        children.append(subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                                         cwd=ROOT))
        bind = os.environ.get("BIND", "127.0.0.1:8080")  # development's default (ingestion/config.py)
        wait_until_serving(bind)  # it wipes the metrics directory first
        # The relay and the reconciler are helpers: one that exits (killed, crashed) is
        # started again after a pause, and the webhooks never stop for it (events wait in
        # the outbox meanwhile). gunicorn exiting stops everything.
        helpers = ["relay"]
        if os.environ.get("ZENDESK_API_TOKEN") or os.environ.get("FRESHDESK_API_KEY"):
            helpers.append("reconcile")
        children.extend(subprocess.Popen([sys.executable, "-m", "ingestion", name], cwd=ROOT) for name in helpers)
        print(f"serving on http://{bind} (Ctrl-C stops everything)", flush=True)
        while children[0].poll() is None:  # children[0]: gunicorn; the helpers after it
            time.sleep(0.5)
            for index, name in enumerate(helpers, start=1):
                if children[index].poll() is not None:
                    print(f"{name} exited ({children[index].returncode}); starting it again in {HELPER_RESTART} s",
                          file=sys.stderr, flush=True)
                    time.sleep(HELPER_RESTART)
                    children[index] = subprocess.Popen([sys.executable, "-m", "ingestion", name], cwd=ROOT)
        print("gunicorn exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping")
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
