"""`python -m ingestion.web.probe`: exit 0 when this container's gunicorn answers
GET /health with 200 on the address it binds (BIND, default 0.0.0.0:8080; a wildcard or
empty host is asked on 127.0.0.1). The image's HEALTHCHECK; standard library only."""

from __future__ import annotations

import os
import sys
import urllib.request


def url(bind: str, path: str = "/health") -> str:
    host, _, port = (bind.strip() or "0.0.0.0:8080").rpartition(":")
    host = host.strip("[]")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


def main() -> int:
    try:
        with urllib.request.urlopen(url(os.environ.get("BIND", "")), timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:  # refused, timed out, or an HTTP error status
        print(f"health probe failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
