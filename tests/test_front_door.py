"""The front door as deployed: the attack table of tests/raw_http.py against the shipped
nginx configurations in front of gunicorn's stock sync worker, as production exposes
them (deploy/nginx/ingestion.conf for compose and `docker run`, deploy/k8s/nginx-sidecar.conf
for Kubernetes). For every attack, on (workers x 2) connections at once: /health answers
within 2 s during it, no gunicorn worker dies, the attacker gets a 4xx or a closed
connection (or, for the corners of HTTP/1.1 that are not attacks, a normal answer), every
answer is JSON, and no request hidden in a body ever reaches the app.

The review that removed the hand-written framing found, against it: a negative chunk size
hung both workers until gunicorn killed them (/health: 30.8 s); chunk sizes, chunk lines,
trailers and heads past its limits held workers (19.6 s); 1-byte chunks cost quadratic
CPU (18.8 s). bench/front_door.py prints the figures. `make test-multi`.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass

import pytest
import requests

from conftest import make_env
from nginx_harness import SLOW_CLIENT_TIMEOUT, Nginx, Sidecar, client_at
from processes import Gunicorn
from raw_http import ATTACKS, SMUGGLED, Attack, classify, head, launch, read_all, responses
from signing import FRESHDESK_URL, signed

pytestmark = pytest.mark.multi_instance

WORKERS = 2
HEALTH_WITHIN = 2.0


@dataclass
class Front:
    """What a deployment exposes: nginx (one of the shipped configs) before one gunicorn."""

    app: Gunicorn
    nginx: Nginx | Sidecar
    address: tuple[str, int]
    tls: bool

    @property
    def url(self) -> str:
        return self.nginx.url

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=10)
        if not self.tls:
            return sock
        context = ssl.create_default_context(cafile=self.nginx.certificate)
        context.maximum_version = ssl.TLSVersion.TLSv1_2  # no session tickets after the handshake
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, verify=self.nginx.verify, timeout=10, **kwargs)

    def stop(self) -> None:
        self.nginx.stop()
        self.app.stop()


def start_front(kind: str, database_url: str, redis_url: str, workdir, **env: str) -> Front:
    if not shutil.which("nginx"):
        pytest.fail("nginx is required for the front-door tests: apt-get install nginx")
    proxies = "1" if kind == "edge" else "2"  # as deployed: compose's edge; ingress + sidecar
    app = Gunicorn(make_env(database_url, REDIS_URL=redis_url, TRUSTED_PROXY_COUNT=proxies, **env),
                   workers=WORKERS, log_dir=workdir).start()
    try:
        directory = workdir / f"{kind}-{time.monotonic_ns()}"
        if kind == "edge":
            nginx = Nginx(directory, [app.port])
            front = Front(app, nginx, ("127.0.0.1", nginx.https), tls=True)
        else:
            nginx = Sidecar(directory, app.port)
            front = Front(app, nginx, ("127.0.0.1", nginx.port), tls=False)
    except BaseException:
        app.stop()
        raise
    deadline = time.monotonic() + 30
    while len(app.worker_pids()) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.1)
    return front


@pytest.fixture(scope="module", params=["edge", "sidecar"])
def front(request, database_url, redis_server, workdir):
    started = start_front(request.param, database_url, redis_server.url(), workdir)
    yield started
    started.stop()


def health_seconds(front: Front) -> float:
    started = time.monotonic()
    response = front.get("/health")
    assert response.status_code == 200, response.text
    return time.monotonic() - started


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_an_attack_leaves_health_answering_no_worker_dead_and_the_attacker_refused(front, attack: Attack):
    workers = set(front.app.worker_pids())
    running = launch(attack, front.connect, 2 * WORKERS)
    try:
        latencies = []
        for _ in range(3):
            latencies.append(health_seconds(front))
            time.sleep(0.3)
        answers = running.outcomes(SLOW_CLIENT_TIMEOUT + 3)
    finally:
        running.end()

    assert max(latencies) < HEALTH_WITHIN, latencies
    got = [classify(answer) for answer in answers]
    assert set(got) <= attack.allowed, got
    for answer in answers:
        heads = [headers for status, headers in responses(answer or b"") if status >= 200]
        assert all(headers.get("content-type") == "application/json" for headers in heads), answer
        if attack.responses > 1:
            assert [status for status, _ in responses(answer)] == [200] * attack.responses, answer
    time.sleep(0.2)
    assert set(front.app.worker_pids()) == workers, "a worker died (the arbiter replaced it)"
    assert SMUGGLED not in front.app.log(), "a request hidden in a body reached the app"
    assert "WORKER TIMEOUT" not in front.app.log()


def test_100_continue_is_answered_before_the_body_is_sent(front, db):
    """A client that asks first waits for `100 Continue` before sending its body (curl does
    for bodies over 1 KiB). It came only after the whole body had arrived, which such a
    client never sends: the request waited out the read deadline."""
    body, headers = signed("freshdesk", {"id": "asked-first", "subject": "x" * 2000})
    lines = [f"{name}: {value}" for name, value in headers.items()]
    with front.connect() as sock:
        sock.sendall(head(f"Content-Length: {len(body)}", "Expect: 100-continue", *lines, path=FRESHDESK_URL))
        sock.settimeout(2.0)
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        sock.sendall(body)
        answer = read_all(sock, 5.0)
    [(status, response_headers)] = [found for found in responses(answer) if found[0] >= 200]
    assert (status, response_headers["content-type"]) == (201, "application/json")
    assert db.execute("SELECT count(*) AS n FROM tickets WHERE external_id = 'asked-first'").fetchone()["n"] == 1


def test_an_http_version_nginx_does_not_speak_is_a_json_505(front):
    with front.connect() as sock:
        sock.sendall(b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n")
        answer = read_all(sock, 5.0)
    [(status, headers)] = responses(answer)
    assert (status, headers["content-type"]) == (505, "application/json")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"error": "HTTP version not supported"}


@pytest.mark.parametrize("path", ["//api/v1/ingest/webhook/freshdesk", "/api/v1/ingest/webhook//freshdesk",
                                  "/api/v1//tickets/freshdesk/1", "//health",
                                  "/api/v1/ingest/webhook", "/api/v1/tickets", "/api/v1/ingest/webhook?x=1"])
def test_a_path_with_double_slashes_or_without_its_last_is_a_json_404(front, path):
    """nginx matches its locations on the merged path and passes the path as sent; the
    app answered a 308 with an HTML body. A prefix location's path without its last slash
    was nginx's own HTML 301."""
    body, headers = signed("freshdesk", {"id": "double-slash"})
    response = requests.post(front.url + path, data=body, headers=headers, verify=front.nginx.verify, timeout=10,
                             allow_redirects=False)
    assert response.status_code in (404, 405) and response.headers["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"}


def test_the_edge_redirects_plain_http_to_https_in_json(database_url, redis_server, workdir):
    front = start_front("edge", database_url, redis_server.url(), workdir)
    try:
        response = requests.post(f"http://127.0.0.1:{front.nginx.http}{FRESHDESK_URL}?x=1", data=b"{}", timeout=10,
                                 allow_redirects=False)
    finally:
        front.stop()
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://127.0.0.1{FRESHDESK_URL}?x=1"
    assert response.headers["Content-Type"] == "application/json"
    assert "https" in response.json()["error"].lower()


def test_the_sidecars_metrics_port_believes_no_forwarded_header(database_url, redis_server, workdir):
    """The metrics port passed the client's X-Forwarded-For on to the app, which reads the
    client from it (TRUSTED_PROXY_COUNT=2): claiming an allowed address turned a 403 into
    a 200. Now the scraper's own address is what METRICS_ALLOWED_NETWORKS sees."""
    front = start_front("sidecar", database_url, redis_server.url(), workdir,
                        METRICS_ALLOWED_NETWORKS="127.0.0.2/32, 10.0.0.0/8")
    metrics = f"http://127.0.0.1:{front.nginx.metrics_port}/metrics"
    allowed = client_at("127.0.0.2")  # a second loopback address is a second client
    try:
        for claimed in ("127.0.0.2", "10.1.2.3", "127.0.0.2, 10.1.2.3", "10.1.2.3, 127.0.0.2"):
            refused = requests.get(metrics, headers={"X-Forwarded-For": claimed}, timeout=10)
            assert refused.status_code == 403 and refused.headers["Content-Type"] == "application/json", claimed
        served = allowed.get(metrics, timeout=10)
        assert served.status_code == 200 and "ingestion_http_requests_total" in served.text
        # Through the public port the client is still the one the ingress appended.
        assert requests.get(front.url + "/metrics", timeout=10).status_code == 404
    finally:
        front.stop()
    assert re.search(r"403", front.app.log())


def client_the_app_saw(front: Front, request_id: str) -> str:
    """The client address the app logged for the request with this id (its access line)."""
    def access_line(record: dict) -> bool:
        return record.get("request_id") == request_id and "remote_addr" in record

    found = [r["remote_addr"] for r in front.app.wait_for_log(access_line) if access_line(r)]
    assert found, f"no access line for {request_id}"
    return found[0]


def test_a_client_outside_the_trusted_proxies_is_its_own_address_whatever_it_forwards(front):
    """A review's case: the sidecar passed a direct client's own X-Forwarded-For on, and the
    app (trusting two hops) read its rate-limit address from it. 127.0.0.3 stands for a
    client reaching nginx directly (the harness trusts 127.0.0.1 as the ingress)."""
    session = client_at("127.0.0.3")
    for n, forged in enumerate(("6.6.6.6", "6.6.6.6, 7.7.7.7", "10.1.2.3, 10.1.2.4, 10.1.2.5")):
        request_id = f"forged-{front.nginx.__class__.__name__}-{n}-{time.monotonic_ns()}"
        session.post(front.url + FRESHDESK_URL, data=b"{}", verify=front.nginx.verify, timeout=10,
                     headers={"X-Forwarded-For": forged, "X-Request-ID": request_id})
        assert client_the_app_saw(front, request_id) == "127.0.0.3", forged


def test_behind_a_trusted_ingress_the_client_is_the_one_it_appended(database_url, redis_server, workdir):
    """The sidecar behind the cluster's ingress (127.0.0.1 in the harness): the client is
    the right-most X-Forwarded-For entry, the ingress's own, never one a client wrote."""
    front = start_front("sidecar", database_url, redis_server.url(), workdir)
    try:
        request_id = f"ingress-{time.monotonic_ns()}"
        requests.post(front.url + FRESHDESK_URL, data=b"{}", timeout=10,
                      headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Request-ID": request_id})
        assert client_the_app_saw(front, request_id) == "203.0.113.9"
    finally:
        front.stop()


def test_the_edges_plain_http_health_check_forwards_the_client_as_443_does(database_url, redis_server, workdir):
    """A review's case: port 80's /health passed the client's X-Forwarded-For on unchanged,
    so the app logged whatever address the client wrote (and no request id of nginx's)."""
    front = start_front("edge", database_url, redis_server.url(), workdir)
    try:
        request_id = f"plain-health-{time.monotonic_ns()}"
        answer = requests.get(f"http://127.0.0.1:{front.nginx.http}/health", timeout=10,
                              headers={"X-Forwarded-For": "6.6.6.6", "X-Request-ID": request_id})
        assert answer.status_code == 200
        assert client_the_app_saw(front, request_id) == "127.0.0.1"
        assert front.get("/api/v1/tickets/freshdesk/1?token=EDGEQTOKEN").status_code == 401
        time.sleep(0.2)
        access = (front.nginx.dir / "access.log").read_text()
    finally:
        front.stop()
    # nginx's own access log is JSON with the path, never the query string
    requests_logged = [json.loads(line) for line in access.splitlines() if line.strip()]
    assert requests_logged and all("uri" in entry and "?" not in entry["uri"] for entry in requests_logged)
    assert "EDGEQTOKEN" not in access and "/api/v1/tickets/freshdesk/1" in access


def test_a_body_over_the_limit_is_a_json_413_over_http2_too(front, tmp_path):
    """Over HTTP/2 (what curl speaks to https by default) the redirect to nginx's JSON
    error page met the body limit again and nginx answered its HTML page instead."""
    body = tmp_path / "big.json"
    body.write_bytes(b'{"id": "big", "pad": "' + b"x" * (1024 * 1024 + 1) + b'"}')
    # (The sidecar listens in plain HTTP/1.1 behind the cluster's ingress: curl's HTTP/1.1 there.)
    version, said = (["--http2", "--cacert", str(front.nginx.certificate)], "2") if front.tls else (["--http1.1"], "1.1")
    result = subprocess.run(["curl", "-s", *version, "--data-binary", f"@{body}", "-H", "Content-Type: application/json",
                             "-o", "-", "-w", "\\n%{http_code} %{http_version} %{content_type}",
                             front.url + FRESHDESK_URL], capture_output=True, text=True, timeout=30)
    answer, _, status = result.stdout.rpartition("\n")
    assert status == f"413 {said} application/json", (status, answer[:200])
    assert set(json.loads(answer)) == {"error"}


def test_hubspot_signs_the_url_it_called_port_and_all_and_the_proxy_keeps_it(front):
    """The proxy passed `Host` without the port (nginx's $host), so a public URL with one
    (`docker run -p 8443:443`) made every HubSpot v3 signature fail."""
    path = "/api/v1/ingest/webhook/hubspot"
    body, headers = signed("hubspot", [{"eventId": 81, "subscriptionType": "ticket.creation", "objectId": 8181,
                                        "portalId": 62515, "occurredAt": int(time.time() * 1000)}],
                           front.url + path)
    assert ":" in front.url.split("//", 1)[1]  # the URL has a port
    response = requests.post(front.url + path, data=body, headers=headers, verify=front.nginx.verify, timeout=10)
    assert response.status_code in (200, 201), response.text


def test_nginx_never_echoes_a_request_id_the_app_would_not_keep(front):
    """nginx's own answers (a 404 of a path it refuses) echoed any X-Request-ID, 8 KB of
    it or with quotes; its catch-all 404 carried none at all."""
    for sent, kept in (("abc-123", True), ("has spaces", False), ("x" * 200, False), ('"quoted"', False)):
        response = front.get("/not-a-path-of-ours", headers={"X-Request-ID": sent})
        assert response.status_code == 404 and response.headers["Content-Type"] == "application/json"
        assert (response.headers.get("X-Request-ID") == sent) is kept and response.headers.get("X-Request-ID")
