"""A gunicorn sync worker that reads each request whole before handling it.

gunicorn's sync worker gives a connection the whole process from the moment it accepts
it: a client that sends half a header (or a body a byte at a time) holds the worker until
the arbiter kills it at GUNICORN_TIMEOUT, and (workers) such connections take the service
down. nginx avoids this by buffering requests; pods that run gunicorn directly do not
have it. This worker does the same buffering itself:

- accepted connections are read without blocking, next to each other, until a whole
  request has arrived (`framing.request_is_complete`); only then does the connection get
  the process, through gunicorn's ordinary `handle()`, so parsing, the WSGI call, error
  pages and logging are gunicorn's own;
- a connection that has not sent a whole request within REQUEST_READ_TIMEOUT gets a
  JSON 408 and is closed; while it waits it holds a buffer, not the worker;
- at most MAX_PENDING connections wait per worker; past that the oldest is answered 408,
  so a flood of stalled connections cannot shut out new clients for long.

A request is handed over early when its framing says it must be refused anyway (a body
larger than MAX_BODY_BYTES, malformed framing): the application or gunicorn answers it
at once, and the rest of the body is then read under the same deadline.

TLS (gunicorn's own `certfile`) is not supported by the buffering path; the service
terminates TLS in nginx, and with TLS configured this worker behaves like the sync one.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import time
from dataclasses import dataclass, field

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

from ..config import Settings
from .framing import request_is_complete
from .protocol_errors import write_json_error

log = logging.getLogger(__name__)

MAX_PENDING = 256
RECEIVE_SIZE = 65536
#: Writing the response: a client that stops reading gets this long per send.
SEND_TIMEOUT = 10.0


@dataclass
class Pending:
    """An accepted connection whose request has not fully arrived."""

    sock: socket.socket
    address: tuple
    listener: socket.socket
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class BufferedConnection:
    """The socket handed to gunicorn: first the bytes already read, then the real socket
    under the request's deadline. Everything else is the socket's own."""

    def __init__(self, sock: socket.socket, buffered: bytes, deadline: float) -> None:
        self._sock = sock
        self._buffered = memoryview(buffered)
        self._deadline = deadline
        self._closing = False

    def recv(self, size: int, *flags: int) -> bytes:
        if self._buffered:
            data, self._buffered = self._buffered[:size].tobytes(), self._buffered[size:]
            return data
        if self._closing:
            return self._drain()
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("the request was not received within REQUEST_READ_TIMEOUT")
        self._sock.settimeout(remaining)
        return self._sock.recv(size, *flags)

    def sendall(self, data: bytes, *flags: int) -> None:
        self._sock.settimeout(SEND_TIMEOUT)
        self._sock.sendall(data, *flags)

    def shutdown(self, how: int) -> None:
        # gunicorn then lingers up to 2 s reading until the client closes: the request was
        # read whole already, so take what is there and do not wait for a slow client.
        self._closing = True
        self._sock.shutdown(how)

    def _drain(self) -> bytes:
        self._sock.setblocking(False)
        try:
            return self._sock.recv(RECEIVE_SIZE)
        except OSError:
            return b""

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class BufferingWorker(SyncWorker):
    """See the module docstring. Configured by REQUEST_READ_TIMEOUT and MAX_BODY_BYTES."""

    def run(self) -> None:
        if self.cfg.is_ssl:
            return super().run()
        settings = Settings.from_env()  # validated by the master already
        self.read_timeout = settings.request_read_timeout
        self.max_body = settings.max_body_bytes
        self.pending: dict[int, Pending] = {}
        for listener in self.sockets:
            listener.setblocking(False)
        try:
            while self.alive:
                self.notify()
                accepted = any(self._accept(listener) for listener in self.sockets)
                # While connections keep arriving, still look at the waiting ones: under
                # steady load a request whose bytes came just after its connection would
                # otherwise wait for a lull and could reach its deadline (a 408 under load).
                self._wait(block=not accepted)
                self._expire()
                if not self.is_parent_alive():
                    return
        finally:
            for pending in list(self.pending.values()):
                self._close(pending)

    def _wait(self, block: bool = True) -> None:
        """Serve whatever is ready: the pipe, the listeners, the waiting connections; wait
        for one of them (up to the nearest deadline) only when `block`."""
        if not block and not self.pending:
            return  # the listeners and the pipe are looked at again on the next turn
        now = time.monotonic()
        timeout = self.timeout or 0.5
        if not block:
            timeout = 0.0
        elif self.pending:
            timeout = max(0.0, min(timeout, min(p.deadline for p in self.pending.values()) - now))
        watched = self.wait_fds + [p.sock for p in self.pending.values()]
        try:
            ready, _, _ = select.select(watched, [], [], timeout)
        except OSError as error:
            if error.errno in (errno.EINTR, errno.EBADF):
                return
            raise
        for source in ready:
            if source is self.PIPE[0]:
                os.read(self.PIPE[0], 1)
            elif source in self.sockets:
                self._accept(source)
            else:
                self._receive(self.pending.get(source.fileno()))

    def _accept(self, listener: socket.socket) -> bool:
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return False
            raise
        client.setblocking(False)
        util.close_on_exec(client)
        if len(self.pending) >= MAX_PENDING:
            self._time_out(min(self.pending.values(), key=lambda p: p.deadline))
        pending = Pending(client, address, listener, time.monotonic() + self.read_timeout)
        self.pending[client.fileno()] = pending
        self._receive(pending)  # the request usually arrived with the connection
        return True

    def _receive(self, pending: Pending | None) -> None:
        if pending is None:
            return
        while True:
            try:
                chunk = pending.sock.recv(RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(pending)
                return
            if not chunk:
                # The client closed its side: what it sent is all there will be. A part
                # of a request goes to gunicorn, which answers 400 to whatever is missing.
                if pending.data:
                    self._handle(pending)
                else:
                    self._close(pending)
                return
            pending.data += chunk
            if request_is_complete(pending.data, self.max_body):
                self._handle(pending)
                return

    def _handle(self, pending: Pending) -> None:
        del self.pending[pending.sock.fileno()]
        pending.sock.setblocking(True)
        connection = BufferedConnection(pending.sock, bytes(pending.data), pending.deadline)
        self.handle(pending.listener, connection, pending.address)

    def _expire(self) -> None:
        now = time.monotonic()
        for pending in [p for p in self.pending.values() if p.deadline <= now]:
            self._time_out(pending)

    def _time_out(self, pending: Pending) -> None:
        log.info("request not received in time: answered 408", extra={
            "remote_addr": pending.address[0] if pending.address else None, "bytes_received": len(pending.data)})
        try:
            write_json_error(pending.sock, 408, "Request Timeout",
                             f"The request was not received within {self.read_timeout:g} seconds")
        except OSError:
            pass
        self._close(pending)

    def _close(self, pending: Pending) -> None:
        self.pending.pop(pending.sock.fileno(), None)
        try:
            pending.sock.close()
        except OSError:
            pass
