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
from ingestion.config import Settings
from ingestion.localservers import PostgresServer
from ingestion.storage import apply_schema
from signing import AUTH_ENV


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
    apply_schema(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to inspect storage; every test starts from empty tables."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("TRUNCATE tickets, deliveries RESTART IDENTITY CASCADE")
        yield conn


def make_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {"APP_ENV": "production", "DATABASE_URL": database_url, "LOG_LEVEL": "INFO", **AUTH_ENV}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


@pytest.fixture
def make_app(database_url: str):
    """Build an app from an environment (production with every auth method, by default)."""
    apps = []

    def build(**overrides: str):
        app = create_app(Settings.from_env(make_env(database_url, **overrides)))
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
