"""JSON bodies for the errors gunicorn answers itself, before the app sees a request.

A request gunicorn cannot parse (a garbage request line, a Content-Length that is not a
number, Content-Length together with Transfer-Encoding, headers past the configured
limits, a broken chunked body) is answered by gunicorn's worker with an HTML page. Every
other error of the service is `{"error": "..."}`, and vendors' delivery logs show the
body, so `install()` replaces gunicorn's writer of those pages (`gunicorn.util.write_error`,
which the workers call through the module) with one writing the same status and reason
with a JSON body. Statuses are gunicorn's own (400, 414, 417, 431), except its 501 for a
transfer coding it does not decode, which becomes 400: a 5xx invites a retry of a
request that can never succeed (nginx in front answers the same). Called from
gunicorn.conf.py, so the master and every worker it forks use it.

One more: a worker that overran its timeout is stopped by the master, and gunicorn
answers the request it was on with a 500 as it exits. That request was slow (a client
that stalls mid-request, where gunicorn is reached without nginx in front), not wrong:
it becomes a 503 with Retry-After, so a vendor retries it.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util


#: Set in a worker the master is stopping for overrunning its timeout (`worker_aborting`),
#: and the Retry-After its last answer then carries (`install`).
_aborting = False
_retry_after = 5


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    extra = ""
    if status_int == 501:
        status_int, reason = 400, "Bad Request"
    elif status_int == 500 and _aborting:
        status_int, reason = 503, "Service Unavailable"
        mesg = "The request did not finish within the worker's time limit; retry later"
        extra = f"Retry-After: {_retry_after}\r\n"
    body = json.dumps({"error": mesg or reason}).encode("utf-8") + b"\n"
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


def worker_aborting() -> None:
    """gunicorn's `worker_abort` hook: the master is stopping this worker (its timeout)."""
    global _aborting
    _aborting = True


def install(retry_after: int = 5) -> None:
    global _retry_after
    _retry_after = retry_after
    util.write_error = write_json_error
