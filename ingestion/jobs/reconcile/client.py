"""A respectful client of a vendor's REST API: the reconciler's only way out.

Why it works this way: docs/design.md, "The reconciler's API client".
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker

from ...errors import BreakerOpen, RefusedError, Stopped, Throttled, TransientError
from ...json_body import loads
from ...metrics import BREAKER_STATE, RECONCILE_API_ERRORS, child
from ...vendor import APIAccess, ExportRequest

log = logging.getLogger(__name__)

BREAKER_STATES = {STATE_CLOSED: 0, STATE_OPEN: 1, STATE_HALF_OPEN: 2}
MAX_RETRY_AFTER = 900.0
DEFAULT_RETRY_AFTER = 60.0
BACKOFF_BASE, BACKOFF_CAP = 1.0, 60.0
MAX_BODY = 64 * 1024 * 1024


def _is_failure(exc_type: type[BaseException], _exc: BaseException) -> bool:
    return issubclass(exc_type, TransientError)


def throttle_wait(headers: Mapping[str, str], now: float) -> float:
    """Seconds a 429 asks to wait: its Retry-After, else the end of the rate window an
    `X-RateLimit-Reset` names (Unix seconds: Intercom sends that one instead, for a 10 s
    window), else the default."""
    if headers.get("Retry-After"):
        return retry_after(headers.get("Retry-After"), now)
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if reset.isascii() and reset.isdigit() and len(reset) <= 12:
        return min(max(int(reset) - now, 1.0), MAX_RETRY_AFTER)
    return DEFAULT_RETRY_AFTER


def retry_after(value: str | None, now: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), bounded."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return DEFAULT_RETRY_AFTER
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class VendorAPI:
    def __init__(self, vendor: str, access: APIAccess, *, requests_per_minute: float, timeout: float,
                 max_attempts: int, breaker_threshold: int, breaker_timeout: int,
                 sleep: Callable[[float], Any] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        """`sleep` and `stopping`: a stop event's wait and is_set make every wait (pacing,
        Retry-After, backoff) end at once on SIGTERM."""
        self.vendor = vendor
        self.base_url = access.base_url
        self._headers = {"Authorization": _authorization(access), "Accept": "application/json",
                         "User-Agent": "helpdesk-ingestion-reconciler"}
        self.interval = 60.0 / requests_per_minute
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.sleep, self.clock, self.stopping = sleep, clock, stopping
        self._next_start = 0.0
        self.breaker = CircuitBreaker(failure_threshold=breaker_threshold, recovery_timeout=breaker_timeout,
                                      expected_exception=_is_failure, name=f"{vendor}_api")
        self._gauge = BREAKER_STATE.labels(f"{vendor}_api")
        self._gauge.set(0)
        self.requests = 0
        #: (why, seconds) of every wait but pacing: "retry_after" (a 429) or "backoff".
        self.waited: list[tuple[str, float]] = []

    def get(self, path: str, query: dict[str, str]) -> tuple[Any, Mapping[str, str]]:
        """(the JSON, the response headers) of `GET base_url + path ? query`, after as many
        polite retries as it takes; VendorAPIError when the vendor cannot give it now."""
        return self.send(ExportRequest(path, query))

    def send(self, request: ExportRequest) -> tuple[Any, Mapping[str, str]]:
        """The same for any export request: a GET, or a POST search with a JSON body (a
        read too, so it is paced, retried and broken exactly like a GET)."""
        path = request.path
        url = f"{self.base_url}{path}" + (f"?{urlencode(dict(request.query))}" if request.query else "")
        data = None if request.body is None else json.dumps(request.body, separators=(",", ":")).encode()
        # The vendor's own headers never replace the credentials or what we accept.
        headers = {**{k: v for k, v in request.headers.items() if k.lower() not in _OWN_HEADERS}, **self._headers}
        if data is not None:
            headers["Content-Type"] = "application/json"
        failures = 0
        throttled = 0
        while True:
            if self.breaker.opened:
                self._note_state()
                raise BreakerOpen("breaker_open", f"{self.vendor} API circuit breaker is open")
            self._pace()
            try:
                with self.breaker:
                    return self._once(url, path, request.method, headers, data)
            except Throttled as throttle:
                throttled += 1
                if throttled > self.max_attempts * 4:
                    raise TransientError("429", f"{self.vendor} API kept answering 429") from None
                log.warning("vendor API asks to wait", extra={"vendor": self.vendor, "path": path,
                                                                "retry_after": throttle.seconds})
                self._wait("retry_after", throttle.seconds)
            except TransientError as error:
                failures += 1
                log.warning("vendor API call failed", extra={"vendor": self.vendor, "path": path,
                                                             "status": error.status, "attempt": failures})
                if failures >= self.max_attempts or self.breaker.opened:
                    raise
                self._wait("backoff", random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** failures)))
            finally:
                self._note_state()

    def _wait(self, why: str, seconds: float) -> None:
        self.waited.append((why, seconds))
        self._sleep(seconds)

    def _sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        if self.stopping():
            raise Stopped("stopped", "stopping")

    def _pace(self) -> None:
        now = self.clock()
        if now < self._next_start:
            self._sleep(self._next_start - now)
            now = self.clock()
        self._next_start = max(now, self._next_start) + self.interval

    def _once(self, url: str, path: str, method: str, headers: Mapping[str, str],
              data: bytes | None) -> tuple[Any, Mapping[str, str]]:
        self.requests += 1
        request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_BODY + 1)
                headers = {name.lower(): value for name, value in response.headers.items()}
        except urllib.error.HTTPError as error:
            status = str(error.code)
            child(RECONCILE_API_ERRORS, self.vendor, status).inc()
            if error.code == 429:
                raise Throttled(throttle_wait(error.headers, time.time())) from None
            if error.code >= 500 or error.code == 408:
                raise TransientError(status, f"{self.vendor} API answered {status} to {path}") from None
            raise RefusedError(status, f"{self.vendor} API answered {status} to {path}") from None
        except (TimeoutError, socket.timeout):
            child(RECONCILE_API_ERRORS, self.vendor, "timeout").inc()
            raise TransientError("timeout", f"{self.vendor} API did not answer {path} in {self.timeout} s") from None
        except (urllib.error.URLError, ConnectionError, OSError, http.client.HTTPException) as error:
            kind = "timeout" if isinstance(getattr(error, "reason", None), TimeoutError) else "connection"
            child(RECONCILE_API_ERRORS, self.vendor, kind).inc()
            raise TransientError(kind, f"{self.vendor} API unreachable for {path}: {type(error).__name__}") from None
        try:
            if len(raw) > MAX_BODY:
                raise ValueError("body too large")
            return loads(raw), headers
        except ValueError:
            child(RECONCILE_API_ERRORS, self.vendor, "invalid").inc()
            raise TransientError("invalid", f"{self.vendor} API answered {path} with a body that is not JSON") from None

    def _note_state(self) -> None:
        self._gauge.set(BREAKER_STATES.get(self.breaker.state, 0))


#: Headers the client sets itself (lower-case): an export's request cannot override them.
_OWN_HEADERS = frozenset({"authorization", "accept", "user-agent", "content-type", "content-length", "host"})


def _authorization(access: APIAccess) -> str:
    """The Authorization header of the access's scheme: Basic user:password, or Bearer."""
    if access.scheme == "bearer":
        return f"Bearer {access.token}"
    return "Basic " + base64.b64encode(f"{access.user}:{access.password}".encode()).decode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the HTTPError it is, never followed with our credentials."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 (urllib's hook)
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


