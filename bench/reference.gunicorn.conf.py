"""gunicorn settings for the reference app: the service's worker model, timeouts and
worker count (GUNICORN_WORKERS), and gunicorn's defaults for everything else."""

import os

from reference_app import post_fork  # noqa: F401  (opens the pool in each worker)

bind = os.environ["BIND"]
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "sync"
timeout = 30
keepalive = 5
