"""The two ways to run the reconciler.

`reconcile`: a long-running process like the relay. Every RECONCILE_INTERVAL it runs a
pass per configured vendor from where the last one got to; a failed pass is logged,
counted and retried at the next interval. Cost, per vendor and pass: one request per
page of changes (Zendesk: up to 1000 tickets a page, so a quiet 15 minutes is one
request; Freshdesk: 100 a page), paced under RECONCILE_REQUESTS_PER_MINUTE.

`backfill <vendor> --since <date>`: a one-off import of everything changed since a date
(a fresh installation; an outage longer than the vendors' retries), with a progress bar
and an ETA on a terminal. Interrupted, the same command resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

from .engine import Reconciler, RunResult

log = logging.getLogger(__name__)


def run_forever(reconcilers: list[Reconciler], interval: int, should_stop: Callable[[], bool],
                sleep: Callable[[float], object] = time.sleep) -> None:
    while not should_stop():
        started = time.monotonic()
        for reconciler in reconcilers:
            if should_stop():
                return
            try:
                result = reconciler.run("reconcile", should_stop=should_stop)
            except Exception as error:  # the database away: the next pass tries again
                log.warning("reconcile pass failed", extra={"vendor": reconciler.vendor.name,
                                                            "error": f"{type(error).__name__}: {error}"[:300]})
                continue
            log.info("reconcile pass", extra=result.as_json())
        remaining = interval - (time.monotonic() - started)
        if remaining > 0 and not should_stop():
            sleep(remaining)  # a stop event's wait: SIGTERM ends it at once


class ProgressLine:
    """`backfill`'s progress on a terminal: how far through the time since `--since` the
    export has got (both vendors export in the order tickets changed), and an ETA."""

    def __init__(self, stream=sys.stderr, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.clock = stream, clock
        self.started = clock()

    def __call__(self, result: RunResult) -> None:
        now = datetime.now(timezone.utc)
        if result.since is None:
            return
        span = (now - result.since).total_seconds() or 1.0
        done = 1.0 if result.caught_up else min(1.0, max(0.0, ((result.reached or result.since) - result.since)
                                                         .total_seconds() / span))
        elapsed = self.clock() - self.started
        eta = "--:--" if done <= 0 else _duration(elapsed * (1 - done) / done)
        bar = "#" * int(done * 30)
        tickets = sum(result.outcomes.values())
        self.stream.write(f"\rbackfill {result.vendor} [{bar:<30}] {done:6.1%}  ETA {eta}  "
                          f"{result.pages} pages, {tickets} tickets, {result.outcomes.get('repaired', 0)} repaired ")
        self.stream.flush()
        if result.caught_up:
            self.stream.write("\n")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def summary(result: RunResult) -> str:
    return json.dumps(result.as_json())
