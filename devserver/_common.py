"""What both local servers need: binaries' origin, ports, users, process handling."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

PG_USER = "ingestion-pg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def force_pip() -> bool:
    return os.environ.get("INGESTION_SERVER_BINARIES", "").lower() == "pip"


def server_user() -> pwd.struct_passwd | None:
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


def open_path_for_others(path: Path) -> None:
    """Let an unprivileged user reach `path` (as root): add o+x to each ancestor that lacks it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def wait_for(check, process: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; log {log}:\n{tail(log)}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready in {timeout}s; log {log}:\n{tail(log)}")


def stop_process(process: subprocess.Popen | None, how: int, timeout: float) -> None:
    """Ask a server we started to stop; kill it if it will not."""
    if process and process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no log)"
