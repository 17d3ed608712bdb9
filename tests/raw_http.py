"""Requests no HTTP library would send: the front-door attack table.

Each `Attack` is raw bytes on a socket: what a review sent against the service's front
door (negative and oversized chunk sizes, huge chunk lines, trailers and heads, 1-byte
chunks), the classic request-smuggling and desync shapes (Content-Length with
Transfer-Encoding, obfuscated codings, duplicate lengths), and the corners of HTTP/1.1 a
front must get right (bare LF, pipelining, 100-continue, slowloris). Every body is
unsigned, so a request that did get through is answered 401 by the app.

`tests/test_front_door.py` runs the table against the shipped nginx configurations
(`make test-multi`); `bench/front_door.py` runs it longer and prints how /health fares
during each attack. Both read what the attacker got with `outcome()`.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

WEBHOOK = "/api/v1/ingest/webhook/freshdesk"
#: A path only a smuggled request would ask for: it must never reach the app.
SMUGGLED = "/api/v1/tickets/freshdesk/smuggled-request"
#: How much a flood attack sends at most (the review: four clients, 4 MiB of 1-byte chunks).
FLOOD_BYTES = 4 * 1024 * 1024


def head(*lines: str, path: str = WEBHOOK, method: str = "POST", end: bool = True) -> bytes:
    text = f"{method} {path} HTTP/1.1\r\nHost: ingest.example.com\r\n" + "".join(line + "\r\n" for line in lines)
    return (text + ("\r\n" if end else "")).encode("latin-1")


SMUGGLE = f"GET {SMUGGLED} HTTP/1.1\r\nHost: ingest.example.com\r\n\r\n".encode()


def _one_byte_chunks(sock: socket.socket, stop: threading.Event) -> None:
    """The review's quadratic-CPU case: a chunked body of 1-byte chunks, as fast as the
    server takes it, up to FLOOD_BYTES of framing and data."""
    piece = b"1\r\nA\r\n" * 4096
    sent = 0
    while not stop.is_set() and sent < FLOOD_BYTES:
        sock.sendall(piece)
        sent += len(piece)


def _drip(sock: socket.socket, stop: threading.Event) -> None:
    """Slowloris: one more header byte every half second, never the end of the head."""
    while not stop.wait(0.5):
        sock.sendall(b"a")


@dataclass(frozen=True)
class Attack:
    name: str
    #: What it tries, in a line.
    what: str
    #: Sent at once after connecting.
    opening: bytes
    #: Keeps sending until `stop` is set or it has sent all it means to (optional).
    feed: Callable[[socket.socket, threading.Event], None] | None = None
    #: What the attacker may get: "4xx", "2xx", "closed" (reset or closed without an answer).
    allowed: frozenset[str] = frozenset({"4xx", "closed"})
    #: Responses a well-behaved front gives on this connection (pipelining: two).
    responses: int = 1


ATTACKS: tuple[Attack, ...] = (
    # The review's findings against the hand-written framing.
    Attack("negative_chunk_size", "a chunk size of -6 (int(text, 16) took it and looped)",
           head("Transfer-Encoding: chunked") + b"1\r\nA\r\n-6\r\n"),
    Attack("chunk_size_past_the_body_limit", "a chunk announcing more than the body limit, then silence",
           head("Transfer-Encoding: chunked") + b"fffffff\r\n"),
    Attack("chunk_size_overflowing", "a chunk size no 64-bit integer holds",
           head("Transfer-Encoding: chunked") + b"ffffffffffffffffffffffffffff\r\n"),
    Attack("chunk_line_past_4_KiB", "a chunk-size line of 5 KiB of extension, then silence",
           head("Transfer-Encoding: chunked") + b"1;ext=" + b"e" * 5000),
    Attack("trailer_past_64_KiB", "a last chunk followed by a 70 KiB trailer, then silence",
           head("Transfer-Encoding: chunked") + b"1\r\nA\r\n0\r\nX-Trailer: " + b"t" * 70_000 + b"\r\n"),
    Attack("head_past_64_KiB", "a 70 KiB header line, and never the end of the head",
           head("X-Padding: " + "p" * 70_000, end=False)),
    Attack("many_large_headers", "forty 4 KiB headers (160 KiB of head)",
           head(*(f"X-Padding-{n}: " + "p" * 4000 for n in range(40)))),
    Attack("one_byte_chunks", "4 MiB of 1-byte chunks (the framing costs more than the data)",
           head("Transfer-Encoding: chunked"), feed=_one_byte_chunks),
    # Request smuggling and desync: the front and the app must agree on where a request ends.
    Attack("content_length_and_chunked", "CL.TE: Content-Length 4 and chunked, a request hidden after the 0 chunk",
           head("Content-Length: 4", "Transfer-Encoding: chunked") + b"0\r\n\r\n" + SMUGGLE),
    Attack("chunked_and_content_length", "TE.CL: chunked first, then a Content-Length",
           head("Transfer-Encoding: chunked", "Content-Length: 40") + b"0\r\n\r\n" + SMUGGLE),
    Attack("coding_name_obfuscated", "Transfer-Encoding: xchunked beside a Content-Length",
           head("Content-Length: 5", "Transfer-Encoding: xchunked") + b"0\r\n\r\n" + SMUGGLE),
    Attack("coding_list", "Transfer-Encoding: chunked, identity",
           head("Transfer-Encoding: chunked, identity") + b"0\r\n\r\n" + SMUGGLE),
    Attack("space_before_colon", "'Transfer-Encoding : chunked' (a name with a space some parsers forgive)",
           head("Transfer-Encoding : chunked", "Content-Length: 3") + b"0\r\n\r\n" + SMUGGLE),
    Attack("duplicate_transfer_encoding", "two Transfer-Encoding headers",
           head("Transfer-Encoding: chunked", "Transfer-Encoding: identity") + b"0\r\n\r\n" + SMUGGLE),
    Attack("duplicate_content_length", "two different Content-Lengths",
           head("Content-Length: 2", "Content-Length: 40") + b"{}" + SMUGGLE),
    Attack("negative_content_length", "Content-Length: -1", head("Content-Length: -1") + b"{}"),
    Attack("signed_content_length", "Content-Length: +2", head("Content-Length: +2") + b"{}"),
    Attack("folded_header", "an obs-fold continuation line hiding a Transfer-Encoding",
           head("X-Folded: a", " Transfer-Encoding: chunked", "Content-Length: 2") + b"{}"),
    Attack("nul_in_header", "a NUL byte inside a header value", head("X-Nul: a\x00b", "Content-Length: 2") + b"{}"),
    # HTTP/1.1 corners a front must get right; these may be served (the app then says 401).
    Attack("bare_lf", "lines ended by LF alone", b"GET /health HTTP/1.1\nHost: x\n\n",
           allowed=frozenset({"2xx", "4xx"})),
    Attack("pipelined", "two requests in one write, answered in order",
           head(method="GET", path="/health") * 2, allowed=frozenset({"2xx"}), responses=2),
    # Slow clients: the front holds them, never a worker, and cuts them off.
    Attack("slowloris_head", "half a head, then one byte every half second",
           head(end=False) + b"Content-Ty", feed=_drip),
    Attack("stalled_body", "a whole head announcing 1000 bytes, then 10 of them and silence",
           head("Content-Type: application/json", "Content-Length: 1000") + b'{"id": "st'),
)


def responses(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(status, headers with lower-case names) of each complete response in `data`, in
    order, interim ones (100 Continue) included."""
    found, position = [], 0
    while True:
        end = data.find(b"\r\n\r\n", position)
        match = re.match(rb"HTTP/1\.[01] (\d{3})[^\r\n]*", data[position:])
        if end < 0 or not match:
            return found
        lines = data[position + match.end():end].decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in lines if line)}
        length = int(headers.get("content-length", "0") or 0)
        if len(data) < end + 4 + length:
            return found
        found.append((int(match[1]), headers))
        position = end + 4 + length


def final_statuses(data: bytes) -> list[int]:
    return [status for status, _ in responses(data) if status >= 200]


def classify(answer: bytes | None) -> str:
    """What a connection got: "2xx", "4xx", "5xx" (its first final status), "closed"
    (closed or reset without a response), or "open" (nothing yet)."""
    if answer is None:
        return "open"
    statuses = final_statuses(answer)
    return f"{statuses[0] // 100}xx" if statuses else "closed"


def read_all(sock: socket.socket, wait: float, expected: int = 1) -> bytes | None:
    """What the server sends within `wait` seconds, until it closes or `expected` final
    responses are complete: b"" (or what came first) once it closed or reset the
    connection; None when it sent nothing and is still open."""
    deadline = time.monotonic() + wait
    data = b""
    while (left := deadline - time.monotonic()) > 0 and len(final_statuses(data)) < expected:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, socket.timeout):
            break
        except (ConnectionError, ssl.SSLError, OSError):
            return data
        if not chunk:
            return data
        data += chunk
    return data or None


@dataclass
class Running:
    """An attack under way on several connections."""

    attack: Attack
    sockets: list[socket.socket]
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def outcomes(self, wait: float) -> list[bytes | None]:
        """What each connection received within `wait` seconds in all. The senders stop
        first (a drip or a flood has made its point by then; and a TLS socket is not read
        and written from two threads at once)."""
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        deadline = time.monotonic() + wait
        return [read_all(sock, max(0.05, deadline - time.monotonic()), self.attack.responses)
                for sock in self.sockets]

    def end(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


def launch(attack: Attack, connect: Callable[[], socket.socket], count: int) -> Running:
    """Open `count` connections and start the attack on each."""
    running = Running(attack, [])
    for _ in range(count):
        sock = connect()
        running.sockets.append(sock)
        try:
            sock.sendall(attack.opening)
        except OSError:  # refused before the end of the opening: an answer like any other
            continue
        if attack.feed is not None:
            def feed(sock: socket.socket = sock) -> None:
                try:
                    attack.feed(sock, running.stop)
                except OSError:
                    pass  # the server cut the connection: what the attack should get

            thread = threading.Thread(target=feed, daemon=True)
            thread.start()
            running.threads.append(thread)
    return running
