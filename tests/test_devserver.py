"""`make run` (`python -m devserver`): the relay is a helper, so killing it costs stream
lag at most; it is started again and the webhooks never stop (a review's case: the whole
service, PostgreSQL and Redis with it, went down with the relay)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import make_env
from devserver._common import free_port

pytestmark = pytest.mark.gunicorn

ROOT = Path(__file__).resolve().parent.parent


def relays(parent: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(parent), "-f", "ingestion relay"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_a_killed_relay_is_started_again_and_the_webhooks_go_on(database_url, redis_url, tmp_path):
    bind = f"127.0.0.1:{free_port()}"
    env = {**os.environ, **make_env(database_url, REDIS_URL=redis_url), "BIND": bind, "APP_ENV": "development",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    devserver = subprocess.Popen([sys.executable, "-m", "devserver", "--data-dir", str(tmp_path / "data")], cwd=ROOT,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not relays(devserver.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        [first] = relays(devserver.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while relays(devserver.pid) in ([], [first]) and time.monotonic() < deadline:
            time.sleep(0.2)
        [second] = relays(devserver.pid)
        assert second != first and devserver.poll() is None
        assert requests.get(f"http://{bind}/health", timeout=10).status_code == 200
    finally:
        devserver.send_signal(signal.SIGINT)
        output = devserver.communicate(timeout=60)[0]
    assert "relay exited (-9); starting it again" in output
