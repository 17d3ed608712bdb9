"""Has a whole HTTP/1.1 request arrived? Read by the buffering worker before it hands a
connection to gunicorn's parser.

Only framing is looked at (where the head ends, Content-Length, chunked encoding), never
meaning. Whenever the bytes are malformed, oversized or framed in a way this module does
not follow, the answer is "hand it over": gunicorn's own parser then refuses the request
with its usual 4xx, and the application answers 413 for a body past MAX_BODY_BYTES.
"""

from __future__ import annotations

#: A head this large without its blank line is handed over: gunicorn answers 414 / 431.
HEAD_LIMIT = 64 * 1024
#: A chunk-size line (hex digits and extensions) longer than this is not a real one.
CHUNK_LINE_LIMIT = 4096


def request_is_complete(data: bytes, max_body: int) -> bool:
    """True when `data` holds a whole request, or enough to know it must be handed over."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        # gunicorn refuses a bare LF as line terminator: no need to wait for more.
        return len(data) > HEAD_LIMIT or b"\n\n" in data
    lengths, codings = _framing_headers(data[:end])
    body = memoryview(data)[end + 4:]
    if codings:
        if codings[-1] != b"chunked" or lengths:
            return True  # gunicorn answers 400 / 501
        return _chunked_is_complete(body, max_body)
    if not lengths:
        return True  # no body
    if len(lengths) > 1 or not lengths[0].isdigit():
        return True  # gunicorn answers 400
    length = int(lengths[0])
    return length > max_body or len(body) >= length


def _framing_headers(head: bytes) -> tuple[list[bytes], list[bytes]]:
    """Content-Length values and transfer codings, lower-cased, in order."""
    lengths: list[bytes] = []
    codings: list[bytes] = []
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.strip().lower()
        if name == b"content-length":
            lengths.append(value.strip())
        elif name == b"transfer-encoding":
            codings += [c.strip().lower() for c in value.split(b",") if c.strip()]
    return lengths, codings


def _chunked_is_complete(body: memoryview, max_body: int) -> bool:
    """Walk the chunks; complete at the last chunk and the end of its trailer section."""
    position, total = 0, 0
    data = body.tobytes()
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return len(data) - position > CHUNK_LINE_LIMIT
        size_text = data[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return True  # gunicorn answers 400
        if size == 0:
            trailer = data[line_end + 2:]
            return trailer.startswith(b"\r\n") or b"\r\n\r\n" in trailer or len(trailer) > HEAD_LIMIT
        total += size
        if total > max_body:
            return True  # the application answers 413
        position = line_end + 2 + size + 2
        if position > len(data):
            return False
        if data[position - 2:position] != b"\r\n":
            return True  # gunicorn answers 400
