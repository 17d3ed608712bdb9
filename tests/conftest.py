"""Test fixtures: real PostgreSQL (and later Redis) started by this test run, the app
under the Flask test client, and helpers to look at what was stored.

Servers listen on free ports of 127.0.0.1 and are stopped at the end of the session;
no test ever talks to a server it did not start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from ingestion import create_app
from ingestion.vendors import load_settings
from devserver import PostgresServer, RedisServer
from ingestion.storage.migrate import migrate
from signing import AUTH_ENV, SOURCES_KEY


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ingestion-tests-"))
    os.chmod(path, 0o755)  # PostgreSQL runs as an unprivileged user when we are root
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(workdir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(workdir / "postgres", durable=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> str:
    url = postgres.create_database("ingestion_test")
    migrate(url)
    return url


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(workdir: Path) -> Iterator[RedisServer]:
    """A Redis only this test uses, so it can stop, pause and restart it.
    Persistent, so what it held before a restart is still there after."""
    server = RedisServer(Path(tempfile.mkdtemp(prefix="redis-", dir=workdir)), persistent=True).start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.resume()
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url())
    client.flushall()
    client.close()
    return redis_server.url()


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to inspect storage; every test starts from empty tables."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("UPDATE event_history SET trimmed_before = '-infinity'")
        conn.execute("TRUNCATE tickets, events, event_keys, deliveries, quarantine, rebuild_progress, redactions, reconcile_cursors, "
                     "sources, account_ids, console_replays RESTART IDENTITY CASCADE")
        yield conn


def make_env(database_url: str, **overrides: str) -> dict[str, str]:
    # Limits high enough not to interfere, unless a test is about them; no Redis unless a
    # test asks (the database semantics are checked without the duplicate fast path).
    env = {"APP_ENV": "production", "DATABASE_URL": database_url, "LOG_LEVEL": "INFO",
           "RATE_LIMIT_PER_MINUTE": "1000000", "SOURCES_ENCRYPTION_KEY": SOURCES_KEY, **AUTH_ENV}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


@pytest.fixture
def make_app(database_url: str):
    """Build an app from an environment (production with every auth method, by default)."""
    apps = []

    def build(**overrides: str):
        app = create_app(load_settings(make_env(database_url, **overrides)))
        app.testing = False  # keep the real error handlers: a bug must surface as our JSON 500
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["ingestion"].storage.close()


@pytest.fixture
def app(make_app, db):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def add_source(app):
    """add_source(vendor, account, method, secret=None, name="default"): a source
    credential, stored as `python -m ingestion sources add` stores it (secret None: the
    environment variable's link, `--env`). The app's workers see it at once (its cache
    starts empty for each test's app)."""
    services = app.extensions["ingestion"]

    def add(vendor: str, account: str, method: str, secret: str | None = None, name: str = "default") -> None:
        sealed = services.sources.box.seal(secret) if secret is not None else None
        assert services.storage.add_credential(vendor, account, method, "env" if secret is None else name, sealed)

    return add
