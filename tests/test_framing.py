"""When has a whole request arrived? (the buffering worker asks before handing it over)"""

from __future__ import annotations

import pytest

from ingestion.server.framing import HEAD_LIMIT, request_is_complete

HEAD = b"POST /x HTTP/1.1\r\nHost: x\r\n"
MAX = 1000


@pytest.mark.parametrize("data, complete", [
    (b"", False),
    (b"POST /x HTTP/1.1\r\nHo", False),
    (HEAD + b"\r\n", True),  # no body
    (b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n", True),
    (HEAD + b"Content-Length: 5\r\n\r\n{\"a\"", False),
    (HEAD + b"Content-Length: 5\r\n\r\n{\"a\":", True),
    (HEAD + b"content-length:  5 \r\n\r\n12345", True),
    (HEAD + b"Content-Length: 5000\r\n\r\n", True),  # past the limit: the app answers 413 at once
    (HEAD + b"Content-Length: abc\r\n\r\n", True),  # gunicorn answers 400
    (HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", True),  # gunicorn answers 400
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", True),  # no CRLF after the data
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"3e9\r\n", True),  # 1001 bytes > MAX: 413
    (HEAD + b"Transfer-Encoding: gzip\r\n\r\n", True),  # not chunked last: 400
    (HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", True),  # both: 400
    (b"POST /x HTTP/1.1\nHost: x\n\n", True),  # bare LF: gunicorn answers 400
    (b"POST /x HTTP/1.1\r\nX: " + b"a" * (HEAD_LIMIT + 1), True),  # 431
])
def test_a_request_is_complete_when_its_framing_says_so(data, complete):
    assert request_is_complete(data, MAX) is complete
