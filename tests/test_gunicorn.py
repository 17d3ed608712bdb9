"""End to end under a real gunicorn with several workers: concurrency, logs, config."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from conftest import make_env
from processes import ROOT, Gunicorn
from signing import (
    FRESHDESK_PASSWORD, FRESHDESK_URL, FRESHDESK_USER, SECRET_VALUES, ZENDESK_PASSWORD, ZENDESK_URL, ZENDESK_USER,
    basic, signed,
)

pytestmark = pytest.mark.gunicorn


@pytest.fixture(scope="module")
def server(database_url, workdir):
    gunicorn = Gunicorn(make_env(database_url), workers=4, log_dir=workdir).start()
    yield gunicorn
    gunicorn.stop()


def send_together(url, body, headers, count):
    """`count` threads release the same request at the same instant."""
    barrier = threading.Barrier(count)

    def one(_):
        barrier.wait()
        return requests.post(url, data=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_deliveries_of_one_ticket_create_one_row_with_one_id(server, db):
    """200 simultaneous deliveries of one ticket (a redelivery storm at its worst)."""
    body, headers = signed("zendesk", {"ticket": {"id": "4242", "subject": "storm"}})
    responses = send_together(server.url + ZENDESK_URL, body, headers, 200)

    assert Counter(r.status_code for r in responses) == {201: 1, 200: 199}
    assert Counter(r.json()["status"] for r in responses) == {"created": 1, "already_exists": 199}
    assert len({r.json()["ticket_id"] for r in responses}) == 1
    assert db.execute("SELECT count(*) AS n FROM tickets").fetchone()["n"] == 1
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 1
    assert db.execute("SELECT count(*) AS n FROM deliveries").fetchone()["n"] == 199  # the redeliveries' audit


def test_concurrent_versions_of_one_ticket_end_with_the_newest(server, db):
    def version(n):
        return signed("freshdesk", {"ticket": {"id": 777, "subject": f"v{n}",
                                               "updated_at": f"2025-03-01T10:00:{n:02d}Z"}})

    versions = [version(n) for n in range(30)]
    barrier = threading.Barrier(len(versions))

    def one(n):
        body, headers = versions[n]
        barrier.wait()
        return requests.post(server.url + FRESHDESK_URL, data=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(len(versions)) as pool:
        responses = list(pool.map(one, range(len(versions))))

    outcomes = Counter(r.json()["status"] for r in responses)
    assert outcomes["created"] == 1
    assert outcomes["created"] + outcomes["updated"] + outcomes["stale"] == 30
    row = db.execute("SELECT subject, revision FROM tickets").fetchone()
    assert row["subject"] == "v29"
    assert row["revision"] == 1 + outcomes["updated"]
    assert db.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 30  # every version is history


def test_logs_are_json_lines_carrying_the_request_id_and_no_secret(server, db):
    body, headers = signed("freshdesk", {"id": 31337, "subject": "log me"})
    response = requests.post(server.url + FRESHDESK_URL, data=body,
                             headers={**headers, "X-Request-ID": "trace-me-1"}, timeout=10)
    assert response.headers["X-Request-ID"] == "trace-me-1"
    zbody, zheaders = signed("zendesk", {"id": "31338"})
    credentials = [
        (FRESHDESK_URL, body, headers),
        (FRESHDESK_URL, body, basic(FRESHDESK_USER, FRESHDESK_PASSWORD)),
        (FRESHDESK_URL, body, basic(FRESHDESK_USER, "a-wrong-password")),
        (ZENDESK_URL, zbody, zheaders),
        (ZENDESK_URL, zbody, basic(ZENDESK_USER, ZENDESK_PASSWORD)),
        (ZENDESK_URL, zbody, {**zheaders, "X-Zendesk-Webhook-Signature": "bm90LXRoZS1zaWduYXR1cmU="}),
    ]
    answered = [requests.post(server.url + url, data=data, headers=h, timeout=10) for url, data, h in credentials]
    assert [r.status_code for r in answered] == [200, 200, 401, 201, 200, 401]

    last_id = answered[-1].headers["X-Request-ID"]
    records = server.wait_for_log(lambda r: r.get("request_id") == last_id and r["logger"] == "gunicorn.access")
    [access] = [r for r in records if r.get("request_id") == "trace-me-1"]  # one line per request
    assert (access["logger"], access["status"], access["method"]) == ("gunicorn.access", 201, "POST")
    assert (access["vendor"], access["external_id"], access["outcome"], access["ticket_id"]) == (
        "freshdesk", "31337", "created", response.json()["ticket_id"])
    assert access["webhook_ms"] > 0 and access["duration_ms"] >= access["webhook_ms"]
    for reply in answered:  # every response's id is found in the log, on its access line
        assert any(r.get("request_id") == reply.headers["X-Request-ID"] and r["logger"] == "gunicorn.access"
                   for r in records)

    text = server.log()
    leaks = list(SECRET_VALUES) + [h[k] for _, _, h in credentials for k in h
                                   if k not in ("Content-Type", "X-Zendesk-Webhook-Signature-Timestamp")]
    for secret in leaks:
        assert secret not in text
    assert "Authorization" not in text and "a-wrong-password" not in text


def raw_exchange(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes no HTTP library would produce; return status, headers and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


PATH = FRESHDESK_URL.encode()
MALFORMED = {
    "content-length not a number": (b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    "content-length and chunked": (b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "garbage request line": (b"GARBAGE\r\n\r\n", 400),
    "request line too long": (b"POST /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "header too large": (b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "broken chunk size": (b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"zz\r\n{}\r\n0\r\n\r\n", 400),
    "chunked body cut off": (b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"40\r\n{\"ticket\": ", 400),
}


def test_requests_gunicorn_cannot_parse_get_a_json_4xx_and_no_worker_dies(server):
    """A bad Content-Length used to kill the worker (the access line read an attribute
    gunicorn's error responses lack) and left the client with no answer at all."""
    deadline = time.monotonic() + 30
    while len(server.worker_pids()) < 4 and time.monotonic() < deadline:  # all booted first
        time.sleep(0.1)
    workers = sorted(server.worker_pids())
    for name, (data, expected) in MALFORMED.items():
        status, headers, body = raw_exchange(server.url, data)
        assert (name, status) == (name, expected)
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body)["error"]
    assert sorted(server.worker_pids()) == workers
    assert "Exception in worker process" not in server.log()
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def test_a_client_cannot_set_the_script_name_or_path_a_proxy_would(server):
    """A review's case: gunicorn takes SCRIPT_NAME and PATH_INFO headers from loopback
    peers as a front's (its `forwarder_headers`): `SCRIPT_NAME: /nope` answered every
    request with a 500, and PATH_INFO chose the route. No deployment's nginx sets them."""
    for header in (b"SCRIPT_NAME: /nope", b"PATH_INFO: /openapi.yaml"):
        status, headers, body = raw_exchange(server.url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
        assert (status, json.loads(body)["status"]) == (200, "healthy"), (header, body)


def test_a_request_the_master_stops_for_its_timeout_is_a_503_with_retry_after(database_url, workdir):
    """A review's case: a client that stalls mid-request, straight to gunicorn (`make run`;
    every deployment has nginx in front), holds the worker until the master stops it for
    its timeout, and gunicorn answered that request 500 as the worker exited."""
    gunicorn = Gunicorn(make_env(database_url, GUNICORN_TIMEOUT="5"), workers=1, log_dir=workdir).start()
    try:
        host, port = gunicorn.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as stalled:
            stalled.sendall(f"POST {FRESHDESK_URL} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{{".encode())
            received = b""
            while chunk := stalled.recv(65536):
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), received
        assert b"\r\nRetry-After: 5\r\n" in head and b"\r\nContent-Type: application/json\r\n" in head
        assert "time limit" in json.loads(body)["error"]
        assert requests.get(gunicorn.url + "/health", timeout=10).status_code == 200  # a new worker answers
    finally:
        gunicorn.stop()


@pytest.mark.parametrize("variable, value", [
    ("RATE_LIMIT_PER_MINUTE", "lots"),
    ("DATABASE_URL", ""),
    ("FRESHDESK_WEBHOOK_AUTH", "no-colon-here"),
    ("APP_ENV", "staging"),
    ("GUNICORN_WORKERS", "zero"),
    ("GUNICORN_TIMEOUT", "100000"),
    ("REDIS_TIMEOUT", "inf"),
    ("DB_POOL_TIMEOUT", "inf"),
    ("DB_STATEMENT_TIMEOUT_MS", "99999999999"),
    # prometheus_client opened files in it at import: a traceback, not one line
    ("PROMETHEUS_MULTIPROC_DIR", "/nonexistent"),
    ("BIND", "no-port-here"),
    ("FRESHDESK_WEBHOOK_AUTH", "freshdesk:change-me"),
    ("ZENDESK_SIGNING_SECRET", "too-short"),
])
def test_a_bad_setting_stops_gunicorn_with_one_line_naming_it(database_url, variable, value):
    env = make_env(database_url, **{variable: value})
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--check-config", "wsgi:app"],
                            cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"configuration error: {variable}"), result.stderr
    if variable.endswith(("_AUTH", "_SECRET")):
        assert value not in result.stderr


def test_a_refused_request_line_is_logged_without_its_query_string(server):
    """gunicorn logged 'Invalid HTTP request line: GET /x?token=... HTTP/1.1 extra'."""
    status, _, _ = raw_exchange(server.url, b"GET /health?token=sup3r-s3cret-query\r\nHost: x\r\n\r\n")
    assert status == 400
    records = server.wait_for_log(lambda r: "query removed" in r.get("message", ""))
    assert any("Invalid" in r["message"] and "query removed" in r["message"] for r in records)
    assert "sup3r-s3cret-query" not in server.log()


def test_every_log_line_has_an_rfc3339_time_with_its_zone(server):
    requests.get(server.url + "/health", timeout=10)
    records = server.records()
    assert records
    for record in records:
        moment = datetime.fromisoformat(record["time"])
        assert moment.tzinfo is not None and "T" in record["time"], record["time"]


def test_log_lines_stay_single_lines_whatever_the_client_puts_in_its_path(server):
    """Characters such as U+2028 or U+0085 in a path were written raw, and tools that split
    on every Unicode line break cut the record in two."""
    requests.get(server.url + "/nowhere/\u2028\u0085é", timeout=10)
    text = server.log()
    assert "\u2028" not in text and "\u0085" not in text
    for line in text.splitlines():
        json.loads(line)  # every piece a whole record


def established_peer_ports(pid: int) -> list[int]:
    """The remote ports of `pid`'s established TCP connections (from /proc: its socket
    inodes matched against the kernel's TCP tables)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                ports.append(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


def test_the_app_is_built_in_the_master_but_only_workers_connect(database_url, redis_url, workdir):
    """gunicorn.conf.py preloads the app, so the workers share its pages; a connection
    opened in the master would be inherited by every worker, which would then talk over
    one socket. The master must hold none, while the workers hold theirs."""
    store_ports = {urlsplit(database_url).port, urlsplit(redis_url).port}
    gunicorn = Gunicorn(make_env(database_url, REDIS_URL=redis_url), workers=2, log_dir=workdir).start()
    try:
        for n in range(6):
            body, headers = signed("zendesk", {"ticket": {"id": f"preload-{n}", "subject": "s"}})
            assert requests.post(gunicorn.url + ZENDESK_URL, data=body, headers=headers, timeout=10).status_code == 201
        master = gunicorn.process.pid
        deadline = time.monotonic() + 30
        while len(gunicorn.worker_pids()) < 2 and time.monotonic() < deadline:  # both booted (a busy host)
            time.sleep(0.1)
        workers = gunicorn.worker_pids()
        assert len(workers) == 2
        assert not store_ports & set(established_peer_ports(master))
        held = set()
        for worker in workers:
            held |= store_ports & set(established_peer_ports(worker))
        assert held == store_ports  # the check can see a connection when there is one
        assert "preload_app = True" in (ROOT / "gunicorn.conf.py").read_text()
    finally:
        gunicorn.stop()


@pytest.mark.parametrize("line", [
    "Invalid HTTP request line: \"GET /t/\\u00c3\\u00a9?a'token=SECRETQ2 HTTP/1.1\"",
    "Invalid HTTP request line: 'GET /t?a=\"SECRETQ2 HTTP/1.1'",
    "Invalid HTTP request line: 'GET /t?token=SECRETQ2'",
])
def test_a_quote_inside_a_query_string_does_not_end_what_is_cut(line):
    """A review's case: the scrubber stopped at the first quote and logged the rest."""
    import logging

    from ingestion.web.access_log import QueryStringScrubber

    record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, line, None, None)
    assert QueryStringScrubber().filter(record)
    assert "SECRETQ2" not in record.getMessage() and "<query removed>" in record.getMessage()
