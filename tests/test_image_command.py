"""What the Docker image runs, run without Docker (in every `make test`): the test reads the
Dockerfile's ENV, CMD and HEALTHCHECK and runs exactly those, as an unprivileged user, on a
copy of exactly the files the image COPYs. tests/test_image.py (`make image-test`) builds
and runs the image itself."""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import make_env
from devserver import open_path_for_others, free_port
from processes import ROOT
from signing import FRESHDESK_URL, signed

pytestmark = pytest.mark.gunicorn
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def runtime_stage() -> str:
    return DOCKERFILE.rsplit("\nFROM ", 1)[1]


def instruction(name: str) -> str:
    """The last `name` instruction of the runtime stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*(#.*\n\s*)*", " ", runtime_stage())
    return [line for line in text.splitlines() if line.startswith(name + " ")][-1][len(name) + 1:].strip()


def image_env() -> dict[str, str]:
    pairs = shlex.split(instruction("ENV"))
    return dict(pair.split("=", 1) for pair in pairs)


def exec_form(text: str) -> list[str]:
    return json.loads(text[text.index("["):])


def test_the_image_runs_as_a_non_root_user_with_gunicorn_and_a_healthcheck():
    assert instruction("USER").split(":")[0] not in ("root", "0")
    assert exec_form(instruction("CMD")) == ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    assert exec_form(instruction("HEALTHCHECK").split("CMD", 1)[1]) == ["python", "-m", "ingestion.web.probe"]
    # Not set by the image: one-shot commands run on a read-only root without a metrics mount.
    assert "PROMETHEUS_MULTIPROC_DIR" not in image_env()


@pytest.fixture
def image_root(workdir):
    """The files the runtime stage copies, laid out as in /app."""
    app = workdir / "image-app"
    shutil.rmtree(app, ignore_errors=True)
    app.mkdir()
    for line in runtime_stage().splitlines():
        if not line.startswith("COPY ") or "--from" in line:
            continue
        *sources, destination = line.split()[1:]
        for source in sources:
            target = app / destination / source if destination.endswith("/") else app / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / source, target)
    os.chmod(app, 0o755)
    return app


def as_unprivileged():
    """Run as `nobody` when the tests run as root (CI), as ourselves otherwise."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("nobody")
    open_path_for_others(Path(sys.executable).resolve().parent)
    open_path_for_others(Path(sys.prefix))
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def test_the_image_command_serves_as_an_unprivileged_user(image_root, database_url, db, workdir):
    assert (image_root / "ingestion" / "__init__.py").exists() and (image_root / "wsgi.py").exists()
    metrics_dir = workdir / "image-metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    privileges = as_unprivileged()
    if privileges:
        os.chown(metrics_dir, privileges["user"], privileges["group"])
    port = free_port()
    env = {**image_env(), **make_env(database_url), "HOME": "/nonexistent",
           # The image's virtualenv is /opt/venv; here it is this test run's.
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "BIND": f"127.0.0.1:{port}",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "GUNICORN_WORKERS": "2"}
    log = open(workdir / "image.log", "wb")
    process = subprocess.Popen(exec_form(instruction("CMD")), cwd=image_root, env=env, stdout=log,
                               stderr=subprocess.STDOUT, **privileges)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/health", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, (workdir / "image.log").read_text()
                time.sleep(0.2)
        body, headers = signed("freshdesk", {"id": "from-the-image"})
        assert requests.post(url + FRESHDESK_URL, data=body, headers=headers, timeout=10).status_code == 201
        assert "ingestion_http_requests_total" in requests.get(url + "/metrics", timeout=10).text
        # The HEALTHCHECK command itself, with this BIND and the wildcard form of it; and
        # against a port nobody serves.
        check = exec_form(instruction("HEALTHCHECK").split("CMD", 1)[1])
        for bind in (f"127.0.0.1:{port}", f"0.0.0.0:{port}"):
            assert subprocess.run(check, env={**env, "BIND": bind}, cwd=image_root, **privileges,
                                  timeout=10).returncode == 0
        assert subprocess.run(check, env={**env, "BIND": f"127.0.0.1:{free_port()}"}, cwd=image_root,
                              **privileges, timeout=10, capture_output=True).returncode == 1
        owners = {p.stat().st_uid for p in metrics_dir.iterdir()}
        assert owners == {privileges.get("user", os.geteuid())}  # written by the unprivileged workers
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        log.close()
