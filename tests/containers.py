"""Docker for the image tests (`make image-test`): installs nothing, starts only what it
stops, removes every container it makes.

- The engine: the Docker daemon that answers, or else (as root) Debian's `dockerd`
  started in the background with no iptables and no bridge (every build and container
  here uses the host network) and stopped at the end. Its storage driver is overlay2,
  or vfs where overlay2 does not start; IMAGE_TEST_STORAGE_DRIVER picks one.
- The base images the Dockerfile names: used when present. Where none can be pulled
  (no registry reachable), `python:X.Y-slim-<suite>` is replaced by a stand-in: Debian
  <suite> from mmdebstrap with python3, python3-venv, python-is-python3 and
  ca-certificates, imported under that name. It carries this host's CA bundle, with
  PIP_CERT pointing at it, so pip in the build trusts what the host trusts (a
  TLS-intercepting proxy included) while the Dockerfile stays as shipped.
- The build: the legacy builder (`DOCKER_BUILDKIT=0`; BuildKit would fetch its
  Dockerfile frontend from a registry), `--network host`, from the repository root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
STORAGE_DRIVERS = ("overlay2", "vfs")
STAND_IN = re.compile(r"python:(?P<version>\d+\.\d+)-slim-(?P<suite>[a-z]+)")
STAND_IN_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
CA_IN_IMAGE = "/etc/ssl/host-ca-certificates.crt"


class EngineUnavailable(RuntimeError):
    """Docker (or a tool needed to build a base image) is missing; the message says what to install."""


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _seconds(since: float) -> str:
    return f"{time.monotonic() - since:.0f} s"


class Container:
    def __init__(self, engine: "Docker", name: str) -> None:
        self.engine = engine
        self.name = name

    def inspect(self) -> dict:
        return json.loads(self.engine.docker("inspect", self.name).stdout)[0]

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def health(self) -> dict | None:
        return self.inspect()["State"].get("Health")

    def logs(self) -> str:
        result = self.engine.docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str, env: dict[str, str] | None = None, timeout: float = 30
             ) -> subprocess.CompletedProcess:
        options = [f"--env={name}={value}" for name, value in (env or {}).items()]
        return self.engine.docker("exec", *options, self.name, *command, check=False, timeout=timeout)

    def wait(self, timeout: float) -> int:
        return int(self.engine.docker("wait", self.name, timeout=timeout).stdout.strip())

    def remove(self) -> None:
        self.engine.docker("rm", "--force", "--volumes", self.name, check=False, timeout=60)


class Docker:
    """A Docker engine that answers; `close()` undoes what this object did."""

    def __init__(self, client: str, env: dict[str, str], say: Callable[[str], None]) -> None:
        self.client = client
        self.env = env
        self.say = say
        self.daemon: subprocess.Popen | None = None
        self.daemon_dir: Path | None = None
        self.containers: list[Container] = []
        self._names = 0

    # --- the engine ------------------------------------------------------------------
    @classmethod
    def ensure(cls, say: Callable[[str], None] = print) -> "Docker":
        client = shutil.which("docker")
        if client is None:
            raise EngineUnavailable("docker not found: install Debian's docker.io (apt-get install docker.io)")
        engine = cls(client, {**os.environ, "DOCKER_BUILDKIT": "0"}, say)
        if engine.answers():
            return engine
        # Nothing answers where the client looks: try the default socket, then start one there.
        engine.env["DOCKER_HOST"] = DEFAULT_SOCKET
        if engine.answers():
            return engine
        engine.start_daemon()
        return engine

    def answers(self) -> bool:
        try:
            result = subprocess.run([self.client, "version", "--format", "{{.Server.Version}}"], env=self.env,
                                    capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0 and bool(result.stdout.strip())

    def start_daemon(self) -> None:
        if os.geteuid() != 0:
            raise EngineUnavailable("no Docker daemon answers, and only root can start one: "
                                    "start Docker (or run `make image-test` as root)")
        dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin")
        if dockerd is None:
            raise EngineUnavailable("no Docker daemon answers and dockerd is not installed: "
                                    "apt-get install docker.io")
        forced = os.environ.get("IMAGE_TEST_STORAGE_DRIVER", "").strip()
        self.daemon_dir = Path(tempfile.mkdtemp(prefix="ingestion-dockerd-"))
        failures = []
        for driver in [forced] if forced else STORAGE_DRIVERS:
            log = self.daemon_dir / f"dockerd-{driver}.log"
            started = time.monotonic()
            with open(log, "wb") as out:
                self.daemon = subprocess.Popen(
                    [dockerd, "--storage-driver", driver, "--iptables=false", "--bridge=none",
                     "--host", DEFAULT_SOCKET],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 60
            while self.daemon.poll() is None and time.monotonic() < deadline:
                if self.answers():
                    self.say(f"started dockerd (storage driver {driver}) in {_seconds(started)}; "
                             "it is stopped at the end")
                    return
                time.sleep(0.5)
            self._stop_daemon()
            if self.answers():  # another dockerd (a service just installed) came up meanwhile: use it
                self.say("a Docker daemon started by something else answers now; using it")
                shutil.rmtree(self.daemon_dir, ignore_errors=True)
                self.daemon_dir = None
                return
            failures.append(f"dockerd --storage-driver {driver}:\n{_tail(log.read_text(errors='replace'), 15)}")
        shutil.rmtree(self.daemon_dir, ignore_errors=True)
        raise EngineUnavailable("dockerd did not start:\n" + "\n".join(failures))

    def _stop_daemon(self) -> None:
        if self.daemon is None:
            return
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)  # it stops its containerd too
            try:
                self.daemon.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait()
        self.daemon = None

    def close(self) -> None:
        for container in reversed(self.containers):
            container.remove()
        self.containers.clear()
        if self.daemon is not None:
            self._stop_daemon()
            self.say("stopped the dockerd this run started")
        if self.daemon_dir is not None:
            shutil.rmtree(self.daemon_dir, ignore_errors=True)

    def docker(self, *args: str, check: bool = True, timeout: float = 120, cwd: Path | None = None
               ) -> subprocess.CompletedProcess:
        result = subprocess.run([self.client, *args], env=self.env, cwd=cwd, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode:
            raise RuntimeError(f"docker {' '.join(args[:3])} ... exited {result.returncode}:\n"
                               f"{_tail(result.stdout + result.stderr)}")
        return result

    def image_id(self, reference: str) -> str | None:
        result = self.docker("image", "inspect", "--format", "{{.Id}}", reference, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def image(self, reference: str) -> dict:
        return json.loads(self.docker("image", "inspect", reference).stdout)[0]

    # --- images ----------------------------------------------------------------------
    def ensure_base_images(self, dockerfile: Path) -> None:
        for reference in base_images(dockerfile.read_text()):
            if self.image_id(reference) is None:
                self.build_stand_in(reference)

    def build_stand_in(self, reference: str) -> None:
        match = STAND_IN.fullmatch(reference)
        if match is None:
            raise EngineUnavailable(f"base image {reference} is missing, cannot be pulled here, and no stand-in is "
                                    "known for it")
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            raise EngineUnavailable(f"base image {reference} is missing: mmdebstrap builds a stand-in for it "
                                    "(apt-get install mmdebstrap)")
        version, suite = match["version"], match["suite"]
        started = time.monotonic()
        self.say(f"building a stand-in for {reference}: Debian {suite} from mmdebstrap (about a minute)")
        with tempfile.TemporaryDirectory(prefix="ingestion-base-") as scratch:
            rootfs = Path(scratch) / "rootfs.tar"
            log = Path(scratch) / "mmdebstrap.log"
            command = [mmdebstrap, "--variant=minbase", f"--include={STAND_IN_PACKAGES}",
                       *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale")),
                       f"--customize-hook=upload {host_ca_bundle()} {CA_IN_IMAGE}", suite, str(rootfs)]
            with open(log, "wb") as out:
                result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        timeout=1200)
            if result.returncode:
                raise RuntimeError(f"mmdebstrap exited {result.returncode}:\n{_tail(log.read_text(errors='replace'))}")
            self.docker("import",
                        "--change", "ENV LANG=C.UTF-8",
                        "--change", f"ENV PIP_CERT={CA_IN_IMAGE}",
                        "--change", f'LABEL org.opencontainers.image.description="stand-in for {reference}: '
                                    f'Debian {suite} from mmdebstrap"',
                        "--change", 'CMD ["python3"]',
                        str(rootfs), reference, timeout=600)
        found = self.docker("run", "--rm", "--network", "host", reference, "python", "-c",
                            "import sys, ensurepip, venv; print('%d.%d' % sys.version_info[:2])",
                            check=False).stdout.strip()
        if found != version:
            self.docker("rmi", reference, check=False)
            raise EngineUnavailable(f"no stand-in for {reference}: Debian {suite}'s python is {found or 'missing'}")
        self.say(f"stand-in {reference} built in {_seconds(started)}")

    def build(self, context: Path, tag: str, log: Path) -> None:
        """`docker build -t tag .` in `context`; the image this tag named before is removed
        (vfs stores every layer whole, so old builds would fill the disk)."""
        previous = self.image_id(tag)
        started = time.monotonic()
        with open(log, "wb") as out:
            result = subprocess.run([self.client, "build", "--network", "host", "--force-rm", "-t", tag, "."],
                                    cwd=context, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=1800)
        if result.returncode:
            raise RuntimeError(f"docker build exited {result.returncode}; log {log}:\n"
                               f"{_tail(log.read_text(errors='replace'))}")
        if previous and previous != self.image_id(tag):
            self.docker("rmi", previous, check=False)
        self.say(f"built {tag} in {_seconds(started)}")

    # --- containers ------------------------------------------------------------------
    def start(self, image: str, *command: str, env: dict[str, str], options: Iterable[str] = (),
              env_dir: Path) -> Container:
        """`docker run --detach` on the host network; the environment goes through a file
        (0600) so secrets never show in a process list. Removed by close()."""
        self._names += 1
        name = f"ingestion-image-test-{os.getpid()}-{self._names}"
        env_file = env_dir / f"{name}.env"
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        container = Container(self, name)
        self.containers.append(container)
        self.docker("run", "--detach", "--name", name, "--network", "host", "--env-file", str(env_file),
                    *options, image, *command, timeout=120)
        return container


def base_images(dockerfile: str) -> list[str]:
    """The images the Dockerfile's FROM lines name (not its own stages), in order."""
    stages, found = set(), []
    for match in re.finditer(r"^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.M | re.I):
        image, stage = match.group(1), match.group(2)
        if image not in stages and image not in found:
            found.append(image)
        if stage:
            stages.add(stage)
    return found


def host_ca_bundle() -> str:
    """The CA bundle this host's pip trusts."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise EngineUnavailable("no CA bundle found for pip in the stand-in base image (set PIP_CERT)")
