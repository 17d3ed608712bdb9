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


def serve_metrics(settings: Settings, port: int, name: str) -> None:
    """A long-running command's metrics: in PROMETHEUS_MULTIPROC_DIR when one is shared with
    gunicorn (they then appear in the app's /metrics), and on its own port when set
    (RELAY_METRICS_PORT, RECONCILE_METRICS_PORT).

    In a shared directory the command's live gauges (the breaker's state) are dropped when
    it exits. A SIGKILL skips that, and the dead process's last value (an open breaker)
    was summed into /metrics for good: so each command leaves its pid in `<name>.pid`,
    and the next one started drops the gauges of a previous one that is gone."""
    import atexit

    from prometheus_client import multiprocess, start_http_server

    from ..metrics import summed_registry

    if settings.prometheus_multiproc_dir:
        _forget_a_dead_predecessor(settings.prometheus_multiproc_dir, name)
        atexit.register(multiprocess.mark_process_dead, os.getpid())
    if port:
        start_http_server(port, registry=summed_registry())


def _forget_a_dead_predecessor(directory: str, name: str) -> None:
    from prometheus_client import multiprocess

    recorded = os.path.join(directory, f"{name}.pid")
    try:
        with open(recorded) as file:
            previous = int(file.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        previous = 0
    if previous and previous != os.getpid() and not _alive(previous):
        multiprocess.mark_process_dead(previous, directory)
    with open(recorded, "w") as file:
        file.write(str(os.getpid()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
