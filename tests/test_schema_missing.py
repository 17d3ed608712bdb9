"""A database that answers but holds no schema (a wrong database in DATABASE_URL, or
`migrate` not run): /health says so with a 503 instead of "healthy", webhooks get a 503
naming the fix, and a command ends in one line saying to migrate, never "unavailable"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import make_env
from ingestion import create_app
from ingestion.vendors import load_settings
from signing import post

ROOT = Path(__file__).resolve().parent.parent

FIX = "The database has no schema for this release: run `python -m ingestion migrate`"


def test_health_webhooks_and_reads_say_the_schema_is_missing(postgres):
    empty = postgres.create_database("never_migrated")
    app = create_app(load_settings(make_env(empty)))
    app.testing = False
    client = app.test_client()
    health = client.get("/health")
    assert (health.status_code, health.json["status"], health.json["checks"]["database"]) == (
        503, "unhealthy", "no schema")
    answer = post(client, "freshdesk", {"id": "lost?", "subject": "x"})
    assert (answer.status_code, answer.json) == (503, {"error": FIX})
    assert 1 <= int(answer.headers["Retry-After"]) <= 59


def test_a_command_on_a_database_without_schema_says_to_migrate_in_one_line(postgres):
    empty = postgres.create_database("never_migrated_cli")
    done = subprocess.run([sys.executable, "-m", "ingestion", "rebuild"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, **make_env(empty)})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "no schema" in last and "migrate" in last and "Traceback" not in done.stderr
