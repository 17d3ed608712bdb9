"""What a long-running command (the relay, the reconciler's loop) needs beyond the CLI's
shared set-up: a stop on SIGTERM or SIGINT, and its own metrics."""

from __future__ import annotations

import os
import signal
import threading

from ..config import Settings


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set, for the long-running commands. Set from a thread
    of its own: a handler runs between two bytecodes of the main thread, which may hold
    the event's lock inside wait()."""
    stop = threading.Event()

    def handler(*_: object) -> None:
        threading.Thread(target=stop.set, daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def serve_metrics(settings: Settings, port: int) -> None:
    """A long-running command's metrics: in PROMETHEUS_MULTIPROC_DIR when one is shared with
    gunicorn (they then appear in the app's /metrics), and on its own port when set
    (RELAY_METRICS_PORT, RECONCILE_METRICS_PORT)."""
    import atexit

    from prometheus_client import multiprocess, start_http_server

    from ..metrics import summed_registry

    if settings.prometheus_multiproc_dir:
        atexit.register(multiprocess.mark_process_dead, os.getpid())
    if port:
        start_http_server(port, registry=summed_registry())
