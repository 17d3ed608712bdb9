"""Two instances behind a real nginx (deploy/nginx/ingestion.conf), sharing one PostgreSQL
and one Redis, on loopback. `make test-multi` (CI installs Debian's nginx for it)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import make_env
from ingestion.localservers import free_port
from processes import ROOT, Gunicorn
from signing import FRESHDESK_URL, ZENDESK_URL, signed

pytestmark = pytest.mark.multi_instance


class Nginx:
    """deploy/nginx/ingestion.conf with local upstreams, ports and a self-signed certificate."""

    def __init__(self, directory: Path, upstreams: list[int]) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.https, self.http = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.https}"
        self.certificate = str(self.dir / "fullchain.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.dir / "privkey.pem"), "-out", str(self.dir / "fullchain.pem")],
                       check=True, capture_output=True)
        conf = (ROOT / "deploy" / "nginx" / "ingestion.conf").read_text()
        servers = "".join(f"    server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;\n" for port in upstreams)
        conf = re.sub(r"(    server app\d:8080[^\n]*\n)+", servers, conf)
        conf = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", conf)
        conf = conf.replace("listen 80;", f"listen 127.0.0.1:{self.http};")
        conf = conf.replace("listen 443 ssl", f"listen 127.0.0.1:{self.https} ssl")
        conf = conf.replace("/etc/nginx/certs/", f"{self.dir}/")
        (self.dir / "ingestion.conf").write_text(conf)
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        temp = " ".join(f"{kind}_temp_path {self.dir}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "nginx.conf").write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {self.dir}/access.log;
    {temp}
    include {self.dir}/ingestion.conf;
}}
""")
        self.process = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "wb"))
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(self.url + "/health", verify=self.certificate, timeout=2)
                return
            except requests.ConnectionError:
                assert self.process.poll() is None and time.monotonic() < deadline, (self.dir / "stderr.log").read_text()
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGQUIT)
        self.process.wait(10)


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


def post(nginx, vendor, payload, **headers):
    body, auth = signed(vendor, payload)
    url = nginx.url + (FRESHDESK_URL if vendor == "freshdesk" else ZENDESK_URL)
    return requests.post(url, data=body, headers={**auth, **headers}, verify=nginx.certificate, timeout=30)


def served_by(app: Gunicorn, request_ids: set[str]) -> set[str]:
    return {r["request_id"] for r in app.records() if r.get("logger") == "gunicorn.access"} & request_ids


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
