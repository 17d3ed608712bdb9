"""gunicorn settings for the plain reference: the service's worker model and count, and
prometheus-flask-exporter's documented multiprocess hooks."""

import os

from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

from plain_app import post_fork  # noqa: F401  (opens the pool in each worker)

bind = os.environ["BIND"]
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "sync"
timeout = 30


def when_ready(server):
    GunicornPrometheusMetrics.start_http_server_when_ready(int(os.environ["PLAIN_METRICS_PORT"]))


def child_exit(server, worker):
    GunicornPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
