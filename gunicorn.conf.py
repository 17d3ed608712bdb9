"""gunicorn settings: what `make run` and the Docker image run (behind nginx in every deployment).

Environment: BIND (default 0.0.0.0:8080; 127.0.0.1:8080 in development), GUNICORN_WORKERS
(default 2 x cores + 1), GUNICORN_TIMEOUT (default 30). The service's own variables are
validated here, in the master, so a bad value stops start-up with one line instead of
every worker crashing in turn.
"""

import gc
import glob
import multiprocessing
import os
import shutil
import sys
import tempfile

# Multiprocess metrics: prometheus_client reads this when it is first imported, so it is
# set before anything of the service is. Without one given, each master gets its own
# directory (two instances on one host must never share or wipe each other's files).
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ingestion-metrics-")

from ingestion.errors import ConfigError  # noqa: E402
from ingestion.vendors import load_settings  # noqa: E402


def _env_int(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = minimum - 1
    if not minimum <= value <= maximum:
        sys.exit(f"configuration error: {name}: must be a whole number between {minimum} and {maximum}, got {raw!r}")
    return value


try:
    settings = load_settings()
except ConfigError as error:
    sys.exit(f"configuration error: {error}")

bind = settings.bind
# GUNICORN_WORKERS wins; WEB_CONCURRENCY (the Heroku-style name gunicorn also reads) is
# honoured when it is the only one set.
workers = _env_int("GUNICORN_WORKERS",
                   _env_int("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2 + 1, 64), 1, 256), 1, 256)
# gunicorn's stock sync worker: one request per worker at a time, each holding one pooled
# database connection. A sync worker is held by a slow client for as long as it sends, so
# gunicorn is never exposed on its own: every deployment puts the shipped nginx in front
# (compose, the Kubernetes sidecar, the documented `docker run`), which reads whole
# requests before passing them on, as gunicorn's documentation recommends. `make run`
# serves directly on 127.0.0.1 for local trials. (README: Deployment, and why there is
# no HTTP framing of our own.)
worker_class = "sync"
# Requests finish in milliseconds, or answer 503 within ~2 s when the database is down;
# this only catches a truly stuck worker.
timeout = _env_int("GUNICORN_TIMEOUT", 30, 5, 600)
graceful_timeout = 20
# No header sets the WSGI SCRIPT_NAME or PATH_INFO: gunicorn takes them from loopback
# peers by default (`forwarder_headers`, trusted per `forwarded_allow_ips`), so any local
# client could answer every request with a 500 (a SCRIPT_NAME the path does not start
# with) or pick the route. The shipped nginx sets neither; the app is served at /.
forwarder_headers = ""
# Header limits; the body limit is MAX_BODY_BYTES, enforced by the app (413).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# The app is built once in the master, then forked: the workers share its pages (code,
# the vendor registry, the normalizers) instead of each holding a copy, and the objects
# the master made are frozen out of the garbage collector (pre_fork below) so a worker's
# collections never touch, and so never copy, them. Under load the workers' share of the
# CPU caches is what this buys: creates +5-7% in `bench/run.py --compare-tree`
# (docs/performance.md, stop 35). Nothing is connected in the master (the pool opens and
# the breaker reporter starts in post_worker_init), and prometheus_client gives each
# worker its own metric files after the fork. A SIGHUP therefore restarts workers with
# the master's code: deploy new code by restarting the service (as the image does).
preload_app = True
max_requests = 0  # memory stays flat (see docs/performance.md); no need to recycle workers

# No gunicornc control socket: it would live in $HOME (absent for the image's user, and
# shared by every instance of one user on a host).
control_socket_disable = True
# Worker heartbeat files on tmpfs, so a slow disk can never make a worker look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

# Requests gunicorn itself refuses (unparseable HTTP) get a JSON body like every other error.
from ingestion.web import gunicorn_errors  # noqa: E402

gunicorn_errors.install(settings.retry_after_seconds)

logger_class = "ingestion.web.access_log.GunicornLogger"
accesslog = "-"
errorlog = "-"
loglevel = settings.log_level.lower()
proc_name = "ingestion"


def post_worker_init(worker):
    """Now that this worker has forked, before its first request (Services.start_worker)."""
    from ingestion.services import EXTENSION

    worker.wsgi.extensions[EXTENSION].start_worker()


def worker_abort(worker):
    """The master stops this worker for overrunning its timeout: the request it was on
    is answered 503 + Retry-After, not gunicorn's 500 (web/gunicorn_errors.py)."""
    gunicorn_errors.worker_aborting()


def child_exit(server, worker):
    """A worker died (or was killed): drop its live gauges; its counters stay summed."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def on_starting(server):
    """Once, in the master: start from empty metric files (a previous run's would be summed
    in), and say how each vendor authenticates (never the secrets)."""
    from ingestion import logs
    from ingestion.vendors import VENDORS
    from ingestion.web import operator_access, read_api
    from ingestion.web.guard import Guard

    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)
    logs.configure(settings.log_level)
    for vendor in VENDORS:
        Guard(vendor.name, settings.development).log_posture(vendor.verifiers(settings))
    for warning in settings.warnings:  # development only: production refuses to start
        server.log.warning("weak credential accepted in development: %s", warning)
    for deprecation in settings.deprecations:
        server.log.warning("deprecated variable: %s", deprecation)
    operator_access.log_posture(settings)
    read_api.log_posture(settings)
    _check_sources_key()


def _check_sources_key():
    """A SOURCES_ENCRYPTION_KEY that cannot open the stored secrets stops start-up with one
    line, rather than answering every source's webhooks 503 (ingestion/secret_box.py)."""
    from ingestion.errors import DatabaseUnavailable, SchemaMissing, SourcesKeyError
    from ingestion.jobs.sources import check_key
    from ingestion.storage import Storage

    storage = Storage(settings)
    try:
        check_key(settings, storage)
    except SourcesKeyError as error:
        sys.exit(f"configuration error: {error}")
    except SchemaMissing as error:
        import logging

        logging.getLogger("ingestion").error("%s; until then /health answers 503 \"no schema\" and every "
                                             "webhook 503", error.message)
    except DatabaseUnavailable:
        import logging

        logging.getLogger("ingestion").warning("the database did not answer at start: SOURCES_ENCRYPTION_KEY "
                                               "is checked when sources are first read")
    finally:
        storage.close()


def pre_fork(server, worker):
    """Before each fork: freeze what the master holds out of the garbage collector (why:
    preload_app above). Repeated for workers started later, it only adds what is new."""
    gc.freeze()
