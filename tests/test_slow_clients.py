"""Slow and stalled clients straight to gunicorn (as in a pod without a proxy in front):
they may hold a buffer, never a worker (ingestion/server/worker.py)."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import make_env
from processes import Gunicorn
from signing import FRESHDESK_URL, freshdesk_hmac, signed

pytestmark = pytest.mark.gunicorn

WORKERS = 2
READ_TIMEOUT = 3


@pytest.fixture(scope="module")
def server(database_url, workdir):
    env = make_env(database_url, REQUEST_READ_TIMEOUT=str(READ_TIMEOUT), MAX_BODY_BYTES=str(64 * 1024))
    gunicorn = Gunicorn(env, workers=WORKERS, log_dir=workdir).start()
    deadline = time.monotonic() + 30
    while len(gunicorn.worker_pids()) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.1)
    yield gunicorn
    gunicorn.stop()


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT + 5)


def read_response(conn: socket.socket) -> tuple[int, dict, bytes]:
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    return int(status_line.split()[1]), dict(line.split(": ", 1) for line in lines), body


def head_of(body: bytes, headers: dict[str, str], extra: str = "") -> bytes:
    lines = [f"POST {FRESHDESK_URL} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", extra,
             *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\r\n".join(line for line in lines if line) + "\r\n\r\n").encode()


def timed_health(server) -> float:
    started = time.monotonic()
    response = requests.get(server.url + "/health", timeout=10)
    assert response.status_code == 200
    return time.monotonic() - started


def test_stalled_and_slow_connections_leave_health_answering_and_get_408(server, db):
    """Before: five connections sending half a header held all five workers until the
    arbiter killed them at 30 s; /health took 30.2 s."""
    workers = sorted(server.worker_pids())
    half_header = [connect(server) for _ in range(WORKERS * 2)]
    for conn in half_header:
        conn.sendall(f"POST {FRESHDESK_URL} HTTP/1.1\r\nHost: x\r\n".encode())
    body, headers = signed("freshdesk", {"id": "slow-body", "subject": "trickled"})
    slow_body = [connect(server) for _ in range(WORKERS * 2)]
    for conn in slow_body:
        conn.sendall(head_of(body, headers) + body[:5])

    latencies = []
    for _ in range(6):
        latencies.append(timed_health(server))
        time.sleep(0.3)
    body2, headers2 = signed("freshdesk", {"id": "while-stalled"})
    created = requests.post(server.url + FRESHDESK_URL, data=body2, headers=headers2, timeout=10)

    answers = [read_response(conn) for conn in half_header + slow_body]
    assert max(latencies) < 2.0, latencies
    assert created.status_code == 201
    for status, response_headers, payload in answers:
        assert (status, response_headers["Content-Type"]) == (408, "application/json")
        assert str(READ_TIMEOUT) in json.loads(payload)["error"]
    assert sorted(server.worker_pids()) == workers  # nobody was killed for a timeout
    assert "WORKER TIMEOUT" not in server.log()


def test_a_request_trickling_in_within_the_deadline_is_served(server, db):
    body, headers = signed("freshdesk", {"id": "in-pieces", "subject": "sent a few bytes at a time"})
    data = head_of(body, headers) + body
    with connect(server) as conn:
        for start in range(0, len(data), 40):
            conn.sendall(data[start:start + 40])
            time.sleep(0.02)
        status, _, payload = read_response(conn)
    assert (status, json.loads(payload)["status"]) == (201, "created")


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def test_a_chunked_body_is_served_and_one_past_the_limit_is_413(server, db):
    """Before: a 2 MiB chunked body whose first MiB parsed got 201 (Werkzeug cut it at the
    limit), and an HMAC over the first MiB alone passed."""
    small, small_headers = signed("freshdesk", {"id": "chunked-ok", "subject": "x" * 3000})
    first = json.dumps({"id": "chunked-big", "subject": "y" * (64 * 1024 - 100)}).encode()
    big = first + b" " * (64 * 1024)  # whitespace after the object: still one JSON document
    for payload, auth, expected in [(small, small_headers, 201),
                                    (big, freshdesk_hmac(first), 413),
                                    (big, freshdesk_hmac(big), 413)]:
        head = (f"POST {FRESHDESK_URL} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in auth.items()) + "\r\n").encode()
        with connect(server) as conn:
            conn.sendall(head + chunked(payload))
            status, response_headers, answer = read_response(conn)
        assert (status, response_headers["Content-Type"]) == (expected, "application/json"), answer
    assert db.execute("SELECT count(*) AS n FROM tickets WHERE external_id = 'chunked-big'").fetchone()["n"] == 0


def test_a_transfer_coding_the_service_does_not_decode_is_501(server, db):
    body, headers = signed("freshdesk", {"id": "gzip-te"})
    head = (f"POST {FRESHDESK_URL} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    with connect(server) as conn:
        conn.sendall(head + chunked(body))
        status, _, answer = read_response(conn)
    assert status == 501 and "gzip" in json.loads(answer)["error"]


def test_many_clients_at_once_are_all_served(server, db):
    """The buffering keeps the sync worker's behaviour under ordinary concurrency."""
    def one(n):
        body, headers = signed("freshdesk", {"id": f"crowd-{n}"})
        return requests.post(server.url + FRESHDESK_URL, data=body, headers=headers, timeout=20).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(64)))
    assert statuses == [201] * 64


def test_a_request_sent_just_after_its_connection_is_served_under_steady_load(database_url, workdir, db):
    """With new connections arriving all the time, a connection whose request comes a
    moment after it was accepted must still be read (it once waited for a lull in the
    arrivals and got a 408 at its deadline: wrk saw one in each bench run)."""
    env = make_env(database_url, REQUEST_READ_TIMEOUT=str(READ_TIMEOUT))
    gunicorn = Gunicorn(env, workers=1, log_dir=workdir).start()
    stop = time.monotonic() + READ_TIMEOUT + 3

    def hammer(_):
        """One request after another, each on a new connection (as sync gunicorn serves)."""
        served = 0
        while time.monotonic() < stop:
            with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=10) as conn:
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                served += read_response(conn)[0] == 200
        return served

    try:
        with ThreadPoolExecutor(8) as pool:
            load = [pool.submit(hammer, n) for n in range(7)]
            time.sleep(0.5)  # the load is steady
            late = connect(gunicorn)
            time.sleep(0.3)  # accepted by now, its request not sent yet
            started = time.monotonic()
            late.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = read_response(late)
            waited = time.monotonic() - started
            assert sum(f.result() for f in load) > 100  # the load really was steady
    finally:
        gunicorn.stop()
    assert status == 200 and waited < READ_TIMEOUT, (status, waited)
