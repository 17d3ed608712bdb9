"""A real gunicorn running the app, for end-to-end tests; stops itself when done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from devserver import free_port

ROOT = Path(__file__).resolve().parent.parent


class Gunicorn:
    def __init__(self, env: dict[str, str], workers: int = 2, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": str(workers), **env}
        self.log_path = (log_dir or Path("/tmp")) / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Gunicorn":
        self.log_path.write_bytes(b"")
        self._log = open(self.log_path, "ab")  # O_APPEND: the workers' lines never overwrite each other
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                requests.get(f"{self.url}/health", timeout=5)
                return self
            except (requests.ConnectionError, requests.Timeout):  # still booting, on a busy machine
                time.sleep(0.1)
        self.stop()  # never leave a master (and its workers) behind a failed start
        raise RuntimeError(f"gunicorn did not answer in {timeout}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict]:
        """The log as JSON records; fails if any line is not one JSON object."""
        return [json.loads(line) for line in self.log().splitlines() if line.strip()]

    def wait_for_log(self, predicate, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            records = self.records()
            if any(predicate(r) for r in records) or time.monotonic() > deadline:
                return records
            time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
