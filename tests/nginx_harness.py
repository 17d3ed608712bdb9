"""A real nginx running the shipped configurations (deploy/), adapted for loopback ports
and paths, and raw-socket helpers to talk to it: shared by the multi-instance tests
(`make test-multi`) and the front-door bench (bench/front_door.py)."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from devserver import free_port

ROOT = Path(__file__).resolve().parent.parent

DEPLOY = ROOT / "deploy"
#: The harness' copies of the configs give up on a silent client after this many seconds
#: instead of the deployed 10, to keep the tests quick (tests/test_deploy_files.py checks
#: the deployed values).
SLOW_CLIENT_TIMEOUT = 3


def per_address_limit() -> int:
    """The deployed limit of requests in flight per client address (the same in both configs)."""
    limit = re.search(r"limit_conn ingestion_per_ip (\d+);", (DEPLOY / "nginx" / "ingestion.conf").read_text())
    assert limit, "no limit_conn in deploy/nginx/ingestion.conf"
    return int(limit[1])


def nginx_version() -> tuple[int, ...]:
    banner = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr  # "nginx version: nginx/1.22.1"
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", banner)
    assert match, banner
    return tuple(int(part) for part in match.groups())


def for_installed_nginx(conf: str) -> str:
    """The deployed config enables HTTP/2 with `http2 on;`, the syntax of nginx 1.25.1 and
    later (compose runs 1.27, where `listen ... http2` is deprecated). Debian 12's nginx,
    which CI installs, is 1.22 and refuses that directive: for an nginx older than 1.25.1
    only, say the same thing the old way, as a parameter of the `listen ... ssl` lines."""
    if "http2 on;" not in conf or nginx_version() >= (1, 25, 1):
        return conf
    conf = re.sub(r"\n[ \t]*http2 on;", "", conf)
    return replaced(conf, r"(listen [^;\n]* ssl);", r"\1 http2;")


def replaced(conf: str, pattern: str, replacement: str) -> str:
    """re.sub that fails when the deployed file no longer says what the harness adapts."""
    conf, count = re.subn(pattern, replacement, conf)
    assert count, f"{pattern!r} is no longer in the deployed config"
    return conf


def with_quick_timeouts(conf: str) -> str:
    return replaced(conf, r"(client_(?:header|body)_timeout\s+)10s;", rf"\g<1>{SLOW_CLIENT_TIMEOUT}s;")


class LocalNginx:
    """A real nginx running a config adapted from deploy/ for loopback ports and paths."""

    url: str
    verify: str | bool = True

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.process: subprocess.Popen | None = None

    def run(self, nginx_conf: str) -> None:
        (self.dir / "nginx.conf").write_text(nginx_conf)
        self.process = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                        stdout=open(self.dir / "stdout.log", "wb"),
                                        stderr=open(self.dir / "stderr.log", "wb"))
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(self.url + "/health", verify=self.verify, timeout=2)  # any answer will do
                return
            except requests.ConnectionError:
                assert self.process.poll() is None and time.monotonic() < deadline, (self.dir / "stderr.log").read_text()
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Nginx(LocalNginx):
    """deploy/nginx/ingestion.conf with local upstreams, ports and a self-signed certificate."""

    def __init__(self, directory: Path, upstreams: list[int], quick: bool = True) -> None:
        super().__init__(directory)
        self.https, self.http = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.https}"
        self.certificate = self.verify = str(self.dir / "fullchain.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.dir / "privkey.pem"), "-out", str(self.dir / "fullchain.pem")],
                       check=True, capture_output=True)
        conf = (DEPLOY / "nginx" / "ingestion.conf").read_text()
        servers = "".join(f"    server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;\n" for port in upstreams)
        conf = replaced(conf, r"(    server app\d:8080[^\n]*\n)+", servers)
        conf = replaced(conf, r"\n\s*listen \[::\]:\d+[^;]*;", "")
        conf = replaced(conf, r"listen 80;", f"listen 127.0.0.1:{self.http};")
        conf = replaced(conf, r"listen 443 ssl", f"listen 127.0.0.1:{self.https} ssl")
        conf = replaced(conf, re.escape("/etc/nginx/certs/"), f"{self.dir}/")
        conf = replaced(conf, re.escape("/var/log/nginx/access.log"), f"{self.dir}/access.log")
        (self.dir / "ingestion.conf").write_text(for_installed_nginx(with_quick_timeouts(conf) if quick else conf))
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        temp = " ".join(f"{kind}_temp_path {self.dir}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # Like the official image's nginx.conf, which includes the MIME types.
        mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
        self.run(f"""
{user}
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    {mime}
    default_type application/octet-stream;
    access_log {self.dir}/access.log;
    {temp}
    include {self.dir}/ingestion.conf;
}}
""")

    def connect(self, source: str = "127.0.0.1", handshake: bool = True) -> socket.socket:
        """A TLS connection to the HTTPS port, from `source` (any 127.x address is ours)."""
        sock = socket.create_connection(("127.0.0.1", self.https), timeout=10, source_address=(source, 0))
        if not handshake:
            return sock
        context = ssl.create_default_context(cafile=self.certificate)
        # TLS 1.2 (which the config allows): a TLS 1.3 server sends session tickets after
        # the handshake, which would make an unanswered connection look readable.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context.wrap_socket(sock, server_hostname="127.0.0.1")


class Sidecar(LocalNginx):
    """deploy/k8s/nginx-sidecar.conf, the whole nginx.conf of the pod's sidecar, in front of
    one local gunicorn; the test plays the ingress controller (it writes X-Forwarded-For)."""

    def __init__(self, directory: Path, upstream: int, quick: bool = True) -> None:
        super().__init__(directory)
        self.port, self.metrics_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = (DEPLOY / "k8s" / "nginx-sidecar.conf").read_text()
        conf = replaced(conf, r"(?<![\w/])/tmp/", f"{self.dir}/")  # the pod's emptyDir
        conf = replaced(conf, r"listen 8080;", f"listen 127.0.0.1:{self.port};")
        conf = replaced(conf, r"listen 9102;", f"listen 127.0.0.1:{self.metrics_port};")
        conf = replaced(conf, r"server 127\.0\.0\.1:8081;", f"server 127.0.0.1:{upstream};")
        conf = replaced(conf, r"access_log /dev/stdout", f"access_log {self.dir}/access.log")
        conf = replaced(conf, r"(\n[ \t]*set_real_ip_from [^;]+;)+", "\n    set_real_ip_from 127.0.0.1;")
        if quick:
            conf = with_quick_timeouts(conf)
        if os.geteuid() == 0:
            conf = "user nobody nogroup;\n" + conf
        self.run(conf + "\ndaemon off;\n")

    def connect(self, source: str = "127.0.0.1", handshake: bool = True) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10, source_address=(source, 0))


def read_response(sock: socket.socket, wait: float) -> bytes | None:
    """What the server sent within `wait` seconds; b"" (or what came before) once it closed
    or reset the connection; None if it sent nothing and the connection is still open."""
    sock.settimeout(wait)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if length and len(body) >= int(length[1]):
                return data
    except TimeoutError:
        return data or None
    except (ConnectionError, ssl.SSLError):
        return data


def answered(socks: list[socket.socket], wait: float) -> dict[socket.socket, bytes]:
    """What the server answered within `wait` seconds, on the sockets it answered (or
    closed: b"")."""
    deadline, answers = time.monotonic() + wait, {}
    while (left := deadline - time.monotonic()) > 0 and len(answers) < len(socks):
        readable, _, _ = select.select([sock for sock in socks if sock not in answers], [], [], left)
        for sock in readable:
            answer = read_response(sock, 0.05)
            if answer is not None:
                answers[sock] = answer
    return answers


def closed_within(socks: list[socket.socket], deadline: float) -> list[bool]:
    """For each socket: did the server close (or reset) it before `deadline` (monotonic)?"""
    return [read_response(sock, max(0.01, deadline - time.monotonic())) is not None for sock in socks]


def still_open(socks: list[socket.socket]) -> bool:
    return not answered(socks, 0.2)


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


class FromAddress(HTTPAdapter):
    """requests from another loopback address: a second client, as far as nginx can tell."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_at(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("https://", FromAddress(address))
    session.mount("http://", FromAddress(address))
    return session
