"""The production command: what `python -m ingestion` (the `ingestion` console script)
offers. Development tooling (`python -m devserver`) is not part of it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingestion._version import __version__
from ingestion.cli import main
from conftest import make_env
from signing import SOURCES_KEY

ROOT = Path(__file__).resolve().parent.parent


def test_the_production_command_offers_only_production_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    commands = re.findall(r"^  (\S+)\s", result.output.split("Commands:")[1], re.MULTILINE)
    assert sorted(commands) == ["backfill", "maintain", "migrate", "prune", "rebuild", "reconcile", "redact", "relay", "replay",
                               "sources"]


def test_it_tells_its_version():
    result = CliRunner().invoke(main, ["--version"])
    assert (result.exit_code, result.output.strip()) == (0, f"helpdesk-ingestion {__version__}")


def test_importing_the_whole_package_never_imports_the_dev_tooling():
    code = ("import pkgutil, importlib, sys, ingestion\n"
            "for m in pkgutil.walk_packages(ingestion.__path__, 'ingestion.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('devserver', 'tests', 'bench')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


#: Every one-shot command, as an operator would type it.
ONE_SHOT = [["migrate"], ["prune"], ["replay"], ["replay", "--dry-run"], ["rebuild"],
            ["rebuild", "--ticket", "zendesk/1"], ["redact", "--email", "ana@example.com"],
            ["redact", "--ticket", "zendesk/1"], ["reconcile", "--once"], ["backfill", "zendesk", "--since", "2025-01-01"],
            ["sources", "list"], ["sources", "disable", "zendesk", "1"], ["sources", "enable", "zendesk", "1"],
            ["sources", "retire", "zendesk", "1", "--method", "signing"], ["sources", "remove", "zendesk", "1"],
            ["sources", "add", "zendesk", "1", "--method", "basic", "--env"], ["sources", "rewrap"],
            ["sources", "rotate", "zendesk", "1", "--method", "signing"], ["sources", "unbind", "zendesk", "1"],
            ["maintain"]]


def unreachable_database() -> str:
    """A database URL nothing answers on: a port bound and never listened on."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    unreachable_database.held = sock  # kept bound for the test session: nobody else takes it
    return f"postgresql://nobody@127.0.0.1:{port}/ingestion"


@pytest.fixture(scope="module")
def outage_env():
    return {**os.environ, "APP_ENV": "production", "DATABASE_URL": unreachable_database(), "DB_POOL_TIMEOUT": "0.5",
            "ZENDESK_API_EMAIL": "agent@example.com", "ZENDESK_API_TOKEN": "zd-api-7Hq2Lx9PwK4m",
            "ZENDESK_API_URL": "http://127.0.0.1:9/", "ZENDESK_API_ACCOUNT": "1",
            "SOURCES_ENCRYPTION_KEY": SOURCES_KEY}


@pytest.mark.parametrize("command", ONE_SHOT, ids=[" ".join(c) for c in ONE_SHOT])
def test_every_command_meets_a_database_outage_with_one_line_and_status_1(outage_env, command):
    """Before, replay said so in a line while rebuild and redact printed a traceback."""
    result = subprocess.run([sys.executable, "-m", "ingestion", *command], env=outage_env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, input="Zr8Kp3Vq6Wn2-Xq7r2Lm9Pw4k\n")
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    # One line on stderr, the whole of it: no traceback, and no log line of the pool's
    # failed attempts above it (there were two before).
    assert result.stderr.splitlines() == ["Error: database unavailable (DATABASE_URL): what this step had not finished is unchanged; "
                      "run the command again once it answers"], result.stderr
    assert "Traceback" not in result.stderr


def test_the_reconciler_waits_out_a_database_outage_without_a_traceback(outage_env):
    """The other daemon: `reconcile` without --once logs each failed pass and goes on."""
    import signal
    import time

    reconciler = subprocess.Popen([sys.executable, "-m", "ingestion", "reconcile"], cwd=ROOT, stderr=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env={**outage_env, "RECONCILE_INTERVAL": "60"})
    time.sleep(4)
    reconciler.send_signal(signal.SIGTERM)
    _, stderr = reconciler.communicate(timeout=30)
    assert reconciler.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert any('"level": "WARNING"' in line or '"level": "ERROR"' in line for line in stderr.splitlines()), stderr


def test_the_relay_waits_out_a_database_outage_without_a_traceback(outage_env):
    """A daemon does not exit on an outage: it logs one JSON line per attempt and retries."""
    import signal
    import time

    relay = subprocess.Popen([sys.executable, "-m", "ingestion", "relay"], cwd=ROOT, stderr=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env={**outage_env, "REDIS_URL": "redis://127.0.0.1:9/0"})
    time.sleep(4)
    relay.send_signal(signal.SIGTERM)
    _, stderr = relay.communicate(timeout=30)
    assert relay.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert any('"message": "database unavailable for the relay; retrying"' in line for line in stderr.splitlines())


#: Arguments as a shell passes bytes that are not UTF-8 (`$'\xff'`).
NOT_TEXT = os.fsdecode(b"\xff")
BAD_BYTES = [["rebuild", "--ticket", f"freshdesk/{NOT_TEXT}"],
             ["rebuild", "--ticket", "freshdesk/1", "--account", NOT_TEXT],
             ["redact", "--email", f"{NOT_TEXT}@x.com"], ["redact", "--ticket", f"freshdesk/{NOT_TEXT}"],
             ["sources", "disable", "freshdesk", NOT_TEXT]]


@pytest.mark.parametrize("command", BAD_BYTES, ids=[" ".join(c).encode("utf-8", "replace").decode() for c in BAD_BYTES])
def test_an_argument_that_is_not_utf8_gets_one_line_and_status_1(database_url, command):
    """A review's case: these reached PostgreSQL and ended in an UnstorablePayload traceback."""
    result = subprocess.run([sys.executable, "-m", "ingestion", *command], cwd=ROOT, capture_output=True,
                            env={**os.environ, **make_env(database_url)}, timeout=60)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if not line.startswith("{")][-1].endswith("not valid UTF-8 text")


@pytest.mark.parametrize("command, says", [
    (["replay", "--id", "9" * 20], "is not in the range"),  # was the database's "bigint out of range"
    (["replay", "--since", "2026-01-02", "--until", "2026-01-01"], "--since must be before --until"),
    (["backfill", "nobody", "--since", "2026-01-01"], "unknown vendor 'nobody'"),
])
def test_an_argument_no_run_can_use_is_refused_saying_why(database_url, db, command, says):
    """A review's cases: the first reached PostgreSQL, the second did nothing and said
    nothing, the third said the vendor had no API configured."""
    result = subprocess.run([sys.executable, "-m", "ingestion", *command], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **make_env(database_url)}, timeout=60)
    assert result.returncode in (1, 2) and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_secret_on_standard_input_that_is_not_utf8_is_refused_in_one_line(database_url):
    result = subprocess.run([sys.executable, "-m", "ingestion", "sources", "add", "freshdesk", "acme4", "--method",
                             "hmac"], cwd=ROOT, input=b"\xff\xfe-secret-0123456789\n", capture_output=True,
                            env={**os.environ, **make_env(database_url)}, timeout=60)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 1 and "Traceback" not in stderr, stderr
    assert "not UTF-8 text" in stderr
