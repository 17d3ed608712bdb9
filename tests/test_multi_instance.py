"""The service behind a real nginx, on loopback, with PostgreSQL and Redis of this test run:
two instances behind deploy/nginx/ingestion.conf (the docker compose edge), and one
behind deploy/k8s/nginx-sidecar.conf (the Kubernetes web pod's sidecar).
`make test-multi` (CI installs Debian's nginx for it)."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import make_env
from nginx_harness import (SLOW_CLIENT_TIMEOUT, Nginx, Sidecar, answered, client_at, close_all, closed_within,
                           per_address_limit, read_response, still_open)
from processes import Gunicorn
from signing import FRESHDESK_URL, ZENDESK_URL, signed, url_for

pytestmark = pytest.mark.multi_instance


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
    reason = b"Bad request: nginx could not read it (a malformed request line, header or path, such as an encoded NUL)"
    assert garbage.startswith(b"HTTP/1.1 400 ") and garbage.endswith(b'{"error": "' + reason + b'"}\n'), garbage
    assert b"\r\nContent-Type: application/json\r\n" in garbage
    # A review's case: an encoded NUL in a path, which nginx refuses before the app could
    # say why, answered a bare "Bad request".
    assert_json_error(get("/api/v1/tickets/freshdesk/a%00b"), 400, reason.decode())

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
