"""The service behind a real nginx, on loopback, with PostgreSQL and Redis of this test run:
two instances behind deploy/nginx/ingestion.conf (the docker compose edge), and one
behind deploy/k8s/nginx-sidecar.conf (the Kubernetes web pod's sidecar).
`make test-multi` (CI installs Debian's nginx for it)."""

from __future__ import annotations

import os
import select
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from conftest import make_env
from devserver import free_port
from processes import ROOT, Gunicorn
from signing import FRESHDESK_URL, ZENDESK_URL, signed, url_for

pytestmark = pytest.mark.multi_instance

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

    def __init__(self, directory: Path, upstreams: list[int]) -> None:
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
        (self.dir / "ingestion.conf").write_text(for_installed_nginx(with_quick_timeouts(conf)))
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

    def __init__(self, directory: Path, upstream: int) -> None:
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
        conf = with_quick_timeouts(conf)
        if os.geteuid() == 0:
            conf = "user nobody nogroup;\n" + conf
        self.run(conf + "\ndaemon off;\n")

    def connect(self, source: str = "127.0.0.1", handshake: bool = True) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10, source_address=(source, 0))


@pytest.fixture
def start_stack(database_url, redis_url, db, workdir):
    if not shutil.which("nginx"):
        pytest.fail("nginx is required for the multi-instance tests: apt-get install nginx")
    running = []

    def start(rate_limit: str = "100"):
        env = make_env(database_url, REDIS_URL=redis_url, TRUSTED_PROXY_COUNT="1", RATE_LIMIT_PER_MINUTE=rate_limit)
        apps = [Gunicorn(env, workers=2, log_dir=workdir).start() for _ in range(2)]
        nginx = Nginx(workdir / f"nginx-{time.monotonic_ns()}", [app.port for app in apps])
        running.append((nginx, apps))
        return nginx, apps

    yield start
    for nginx, apps in running:
        nginx.stop()
        for app in apps:
            app.stop()


@pytest.fixture
def stack(start_stack):
    return start_stack()


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


def post(nginx, vendor, payload, session=requests, **headers):
    body, auth = signed(vendor, payload)
    url = nginx.url + url_for(vendor)
    return session.post(url, data=body, headers={**auth, **headers}, verify=nginx.verify, timeout=30)


def served_by(app: Gunicorn, request_ids: set[str]) -> set[str]:
    return {r["request_id"] for r in app.records() if r.get("logger") == "gunicorn.access"} & request_ids


def webhooks_served(*apps: Gunicorn, expected: int) -> int:
    """How many webhook requests the apps logged, once `expected` have been (access lines
    are written just after the response) or 5 s have passed."""
    deadline = time.monotonic() + 5
    while True:
        served = sum(1 for app in apps for r in app.records()
                     if r.get("logger") == "gunicorn.access" and r.get("path", "").startswith("/api/"))
        if served >= expected or time.monotonic() > deadline:
            return served
        time.sleep(0.1)


# Slow clients: a request line and half a header; or a whole header and part of the body.
HEADER_STALL = f"POST {FRESHDESK_URL} HTTP/1.1\r\nHost: ingest.example.com\r\nContent-Ty".encode()


def body_stall(forwarded_for: str | None = None) -> bytes:
    forwarded = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
    return (f"POST {FRESHDESK_URL} HTTP/1.1\r\nHost: ingest.example.com\r\nContent-Type: application/json\r\n"
            f"{forwarded}Content-Length: 1000\r\n\r\n").encode() + b'{"id": "stall'


def stall(nginx, data: bytes, source: str = "127.0.0.1") -> socket.socket:
    sock = nginx.connect(source)
    sock.sendall(data)
    return sock


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


def assert_json_error(response: requests.Response, status: int, message: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    if message is not None:
        assert body["error"] == message
    assert response.headers["Server"] == "nginx"  # server_tokens off: no version


# The edge nginx of docker compose.

def test_the_rate_limit_is_global_across_instances_and_cannot_be_spoofed(stack):
    nginx, apps = stack
    responses = [post(nginx, "freshdesk", {"id": f"rl-{n}"}, **{"X-Forwarded-For": f"10.0.0.{n}"}) for n in range(14)]
    assert [r.status_code for r in responses] == [201] * 10 + [429] * 4
    assert responses[-1].json() == {"error": "Rate limit exceeded. Please try again later."}
    ids = {r.headers["X-Request-ID"] for r in responses}
    time.sleep(0.5)
    assert all(served_by(app, ids) for app in apps), "both instances should have served some of them"


def test_concurrent_duplicates_through_both_instances_make_one_ticket(stack, db):
    nginx, apps = stack
    body, headers = signed("zendesk", {"ticket": {"id": "mi-1", "subject": "storm"}})
    barrier = threading.Barrier(8)

    def one(_):
        barrier.wait()
        return requests.post(nginx.url + ZENDESK_URL, data=body, headers=headers, verify=nginx.certificate, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(one, range(8)))
    assert Counter(r.json()["status"] for r in responses) == {"created": 1, "already_exists": 7}
    assert len({r.json()["ticket_id"] for r in responses}) == 1
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 1


def test_the_request_id_flows_from_nginx_into_the_logs(stack):
    nginx, apps = stack
    generated = post(nginx, "freshdesk", {"id": "rid-1"})
    given = post(nginx, "freshdesk", {"id": "rid-2"}, **{"X-Request-ID": "from-the-vendor-42"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])  # nginx's $request_id
    assert given.headers["X-Request-ID"] == "from-the-vendor-42"
    time.sleep(0.5)
    logged = set().union(*(served_by(app, {generated.headers["X-Request-ID"], "from-the-vendor-42"}) for app in apps))
    assert logged == {generated.headers["X-Request-ID"], "from-the-vendor-42"}


def test_stopping_one_instance_mid_load_loses_no_accepted_ticket(start_stack, db):
    # One client address through nginx, so a limit no burst of this test can reach.
    nginx, apps = start_stack(rate_limit="1000000")
    accepted, statuses, after_stop = [], Counter(), []
    lock = threading.Lock()
    stopped = threading.Event()

    def sender(worker):
        for n in range(150):
            response = post(nginx, "freshdesk", {"id": f"stop-{worker}-{n}"})
            with lock:
                statuses[response.status_code] += 1
                if response.status_code < 300:
                    accepted.append(response.json()["ticket_id"])
                    if stopped.is_set():
                        after_stop.append(response.headers["X-Request-ID"])

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    while len(accepted) < 60:
        time.sleep(0.01)
    apps[0].stop()  # graceful: in-flight requests finish, new connections go to the other
    stopped.set()
    for thread in threads:
        thread.join()

    assert len(after_stop) > 100, "the load should have continued well after the stop"
    assert served_by(apps[1], set(after_stop)) == set(after_stop)
    stored = {str(row["id"]) for row in db.execute("SELECT id FROM tickets")}
    assert set(accepted) <= stored
    assert statuses == {201: 450}, statuses


def test_stalled_clients_hold_nginx_not_gunicorn_and_are_cut_after_the_header_timeout(stack):
    """More half-sent headers than the per-address limit, from the webhook's own address,
    and a few connections stuck in the TLS handshake: nginx holds them, not one gunicorn
    worker is taken, so a webhook from that same address still succeeds at once (a request
    whose header never ended is not a request: limit_conn does not count it). nginx resets
    each of them once client_header_timeout passes."""
    nginx, apps = stack
    stalled = [stall(nginx, HEADER_STALL) for _ in range(per_address_limit() + 8)]
    stalled += [nginx.connect(handshake=False) for _ in range(3)]
    last_stall = time.monotonic()
    try:
        started = time.monotonic()
        response = post(nginx, "freshdesk", {"id": "past-the-stalls"})
        assert response.status_code == 201, response.text
        assert time.monotonic() - started < 2
        assert still_open(stalled), "nginx answered or closed a stalled connection early"

        closed = closed_within(stalled, last_stall + SLOW_CLIENT_TIMEOUT + 3)
        assert all(closed), f"{closed.count(False)} stalled connections outlived client_header_timeout"
        assert time.monotonic() - last_stall >= SLOW_CLIENT_TIMEOUT - 0.5
    finally:
        close_all(stalled)
    assert webhooks_served(*apps, expected=1) == 1  # only the real one reached gunicorn


def test_requests_in_flight_are_capped_per_client_address_with_a_json_429(stack):
    """Whole headers and a trickle of body, from one address (127.0.0.2): nginx buffers each
    body, so gunicorn never sees them; past the per-address limit nginx refuses more at once
    with 429 JSON and Retry-After, while another address (127.0.0.1) is served as usual.
    When client_body_timeout has reset the stalled ones, the address is served again."""
    nginx, apps = stack
    attacker = client_at("127.0.0.2")
    stalled = [stall(nginx, body_stall(), source="127.0.0.2") for _ in range(per_address_limit() + 5)]
    last_stall = time.monotonic()
    try:
        refused = answered(stalled, 0.5)
        assert len(refused) == 5, f"{len(refused)} answered at once, not the 5 over the limit"
        answers = list(refused.values())
        assert all(answer.startswith(b"HTTP/1.1 429 ") for answer in answers), answers
        assert all(answer.endswith(b'{"error": "Too many concurrent requests from this address, please retry later"}\n')
                   for answer in answers), answers

        over = post(nginx, "freshdesk", {"id": "over-the-limit"}, session=attacker)
        assert_json_error(over, 429, "Too many concurrent requests from this address, please retry later")
        assert 1 <= int(over.headers["Retry-After"]) < 60
        assert "X-RateLimit-Limit" not in over.headers  # nginx's answer, not the app's
        assert post(nginx, "freshdesk", {"id": "someone-else"}).status_code == 201
        assert time.monotonic() - last_stall < SLOW_CLIENT_TIMEOUT, "too slow to prove anything"

        waiting = [sock for sock in stalled if sock not in refused]
        assert all(closed_within(waiting, last_stall + SLOW_CLIENT_TIMEOUT + 3)), "client_body_timeout"
        assert post(nginx, "freshdesk", {"id": "served-again"}, session=attacker).status_code == 201
    finally:
        close_all(stalled)
    assert webhooks_served(*apps, expected=2) == 2


def test_nginx_offers_http2_and_answers_its_own_errors_in_json_without_its_version(stack):
    nginx, apps = stack
    context = ssl.create_default_context(cafile=nginx.certificate)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with context.wrap_socket(nginx.connect(handshake=False), server_hostname="127.0.0.1") as sock:
        assert sock.selected_alpn_protocol() == "h2"

    get = lambda path, **headers: requests.get(nginx.url + path, headers=headers, verify=nginx.certificate, timeout=10)  # noqa: E731
    assert_json_error(get("/metrics"), 404, "Not found")
    assert_json_error(get("/no/such/page.html"), 404, "Not found")  # not text/html, whatever the extension
    assert_json_error(get("/_ingestion_error"), 404, "Not found")  # internal only
    assert_json_error(get(FRESHDESK_URL + "/" + "x" * 9000), 414)
    assert_json_error(get("/health", **{"X-Padding": "x" * 9000}), 431)

    body, auth = signed("freshdesk", b'{"id": "big", "pad": "' + b"x" * (1024 * 1024) + b'"}')
    too_big = requests.post(nginx.url + FRESHDESK_URL, data=body, headers=auth, verify=nginx.certificate, timeout=30)
    assert_json_error(too_big, 413, "Request body too large")

    sock = nginx.connect()
    try:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        garbage = read_response(sock, 5)
    finally:
        sock.close()
    assert garbage.startswith(b"HTTP/1.1 400 ") and garbage.endswith(b'{"error": "Bad request"}\n'), garbage
    assert b"\r\nContent-Type: application/json\r\n" in garbage

    served = post(nginx, "freshdesk", {"id": "server-header"})
    assert served.status_code == 201 and served.headers["Server"] == "nginx"
    assert webhooks_served(*apps, expected=1) == 1


def test_with_no_instance_reachable_nginx_answers_503_json_with_retry_after(stack):
    nginx, apps = stack
    for app in apps:
        app.stop()
    started = time.monotonic()
    response = post(nginx, "zendesk", {"ticket": {"id": "nobody-home"}}, **{"X-Request-ID": "outage-1"})
    assert time.monotonic() - started < 5
    assert_json_error(response, 503, "Service unavailable, please retry later")
    assert 1 <= int(response.headers["Retry-After"]) < 60  # Zendesk retries only under 60 s
    assert response.headers["X-Request-ID"] == "outage-1"
    assert_json_error(requests.get(nginx.url + "/health", verify=nginx.certificate, timeout=10), 503)


def test_the_apps_own_429_passes_through_unchanged(start_stack):
    nginx, apps = start_stack(rate_limit="10")  # a burst of one request per client address
    assert post(nginx, "freshdesk", {"id": "first"}).status_code == 201
    through = post(nginx, "freshdesk", {"id": "second"})
    # The app sees the same client directly (no X-Forwarded-For, the peer is 127.0.0.1).
    body, auth = signed("freshdesk", {"id": "third"})
    direct = requests.post(apps[0].url + FRESHDESK_URL, data=body, headers=auth, timeout=10)
    assert through.status_code == direct.status_code == 429
    assert through.content == direct.content
    assert through.json() == {"error": "Rate limit exceeded. Please try again later."}
    for name in ("Content-Type", "X-RateLimit-Limit", "X-RateLimit-Remaining"):
        assert through.headers[name] == direct.headers[name], name
    assert 1 <= int(through.headers["Retry-After"]) <= 6


def test_the_apps_own_503_passes_through_unchanged(database_url, workdir):
    """An instance whose database cannot be reached answers 503 with its own Retry-After
    (7 here, nginx's own is 10) and body; nginx passes both on."""
    if not shutil.which("nginx"):
        pytest.fail("nginx is required for the multi-instance tests: apt-get install nginx")
    with socket.socket() as reserved:  # bound, never listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        unreachable = re.sub(r"@127\.0\.0\.1:\d+/", f"@127.0.0.1:{reserved.getsockname()[1]}/", database_url)
        assert unreachable != database_url
        app = Gunicorn(make_env(unreachable, RETRY_AFTER_SECONDS="7", DB_POOL_TIMEOUT="0.5"), workers=1, log_dir=workdir).start()
        nginx = Nginx(workdir / f"nginx-{time.monotonic_ns()}", [app.port])
        try:
            response = post(nginx, "freshdesk", {"id": "db-down"})
        finally:
            nginx.stop()
            app.stop()
    assert response.status_code == 503, response.text
    assert response.json() == {"error": "Database unavailable, please retry later"}
    assert response.headers["Retry-After"] == "7"


# The Kubernetes web pod: nginx-sidecar.conf in front of one gunicorn on loopback.

@pytest.fixture
def sidecar(database_url, redis_url, db, workdir):
    if not shutil.which("nginx"):
        pytest.fail("nginx is required for the multi-instance tests: apt-get install nginx")
    # As in deploy/k8s: two proxies (the ingress, played by the test, and the sidecar).
    env = make_env(database_url, REDIS_URL=redis_url, TRUSTED_PROXY_COUNT="2", RATE_LIMIT_PER_MINUTE="10")
    app = Gunicorn(env, workers=2, log_dir=workdir).start()
    try:
        nginx = Sidecar(workdir / f"sidecar-{time.monotonic_ns()}", app.port)
    except BaseException:
        app.stop()
        raise
    yield nginx, app
    nginx.stop()
    app.stop()


def test_the_sidecar_config_runs_and_proxies_webhooks_probes_and_metrics(sidecar):
    nginx, app = sidecar
    response = post(nginx, "freshdesk", {"id": "through-the-sidecar"}, **{"X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 201, response.text
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert response.headers["Server"] == "nginx"

    live = requests.get(nginx.url + "/health/live", timeout=5)
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    assert requests.get(nginx.url + "/health", timeout=5).json()["status"] == "healthy"
    assert_json_error(requests.get(nginx.url + "/metrics", timeout=5), 404, "Not found")
    assert_json_error(requests.get(nginx.url + "/openapi.yaml", timeout=5), 404, "Not found")
    metrics = requests.get(f"http://127.0.0.1:{nginx.metrics_port}/metrics", timeout=5)
    assert metrics.status_code == 200 and "ingestion_http_requests_total" in metrics.text

    body, auth = signed("freshdesk", b'{"id": "big", "pad": "' + b"x" * (1024 * 1024) + b'"}')
    assert_json_error(requests.post(nginx.url + FRESHDESK_URL, data=body, headers=auth, timeout=30), 413)


def test_stalled_clients_at_the_sidecar_leave_health_answering(sidecar):
    """Twice as many stalled headers, and as many stalled bodies, as gunicorn has workers:
    /health still answers at once (gunicorn never sees them), and nginx resets them all
    once its client timeouts pass."""
    nginx, app = sidecar
    workers = len(app.worker_pids())
    stalled = [stall(nginx, HEADER_STALL) for _ in range(2 * workers)]
    stalled += [stall(nginx, body_stall("198.51.100.20")) for _ in range(2 * workers)]
    last_stall = time.monotonic()
    try:
        started = time.monotonic()
        health = requests.get(nginx.url + "/health", timeout=5)
        assert health.status_code == 200 and time.monotonic() - started < 2
        assert post(nginx, "zendesk", {"ticket": {"id": "sidecar-stalls"}}).status_code == 201
        assert still_open(stalled)
        assert all(closed_within(stalled, last_stall + SLOW_CLIENT_TIMEOUT + 3))
    finally:
        close_all(stalled)
    assert webhooks_served(app, expected=1) == 1


def test_behind_ingress_and_sidecar_limits_key_on_the_client_the_ingress_saw(sidecar):
    """The ingress appends the client's address to X-Forwarded-For and the sidecar appends
    the ingress's: the app, with TRUSTED_PROXY_COUNT=2, rate-limits that client (never an
    address the client wrote itself), and the sidecar's limit_conn counts per client, not
    per ingress pod."""
    nginx, app = sidecar
    assert post(nginx, "freshdesk", {"id": "c1-a"}, **{"X-Forwarded-For": "198.51.100.7"}).status_code == 201
    spoofed = post(nginx, "freshdesk", {"id": "c1-b"}, **{"X-Forwarded-For": "203.0.113.99, 198.51.100.7"})
    assert spoofed.status_code == 429 and spoofed.headers["X-RateLimit-Limit"] == "1"  # the app's, burst of 1
    assert post(nginx, "freshdesk", {"id": "c2-a"}, **{"X-Forwarded-For": "198.51.100.8"}).status_code == 201

    stalled = [stall(nginx, body_stall("198.51.100.66")) for _ in range(per_address_limit())]
    try:
        assert still_open(stalled)
        over = post(nginx, "freshdesk", {"id": "c3"}, **{"X-Forwarded-For": "198.51.100.66"})
        assert_json_error(over, 429, "Too many concurrent requests from this address, please retry later")
        assert post(nginx, "freshdesk", {"id": "c4"}, **{"X-Forwarded-For": "198.51.100.9"}).status_code == 201
    finally:
        close_all(stalled)
