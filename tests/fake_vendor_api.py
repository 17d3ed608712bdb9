"""A fake of the vendors' REST APIs the reconciler reads, served by a real HTTP server on
loopback: Zendesk's cursor-based incremental ticket export and Freshdesk's ticket list,
with their authentication, pagination and failure modes on demand (429 with
Retry-After, 500, a response slower than the client's timeout, a body that is not JSON).

Tests set `tickets` (each a vendor ticket object with `id` and `updated_at`) and queue
failures in `failures` (consumed one per request); `requests` records what was asked.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

ZENDESK_USER, ZENDESK_TOKEN = "agent@example.com/token", "zd-api-token-0123456789abcdef"
FRESHDESK_KEY = "fd-api-key-0123456789abcdef"


def _time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class FakeVendorAPI:
    zendesk: list[dict[str, Any]] = field(default_factory=list)
    freshdesk: list[dict[str, Any]] = field(default_factory=list)
    #: What the next requests meet, in order: ("status", code, headers), ("slow", seconds) or ("garbage",).
    failures: list[tuple] = field(default_factory=list)
    #: Tickets per Zendesk page (Zendesk may answer fewer than per_page).
    zendesk_page: int = 1000
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = self._build()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()

    def _build(self) -> Flask:
        app = Flask("fake_vendor_api")

        def authorized(user: str, password: str) -> bool:
            header = request.headers.get("Authorization", "")
            self.authorizations.append(header)
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            return header == expected

        def failure():
            self.requests.append({"path": request.path, "args": dict(request.args)})
            if not self.failures:
                return None
            kind, *rest = self.failures.pop(0)
            if kind == "status":
                code, headers = rest[0], (rest[1] if len(rest) > 1 else {})
                return jsonify(error="injected"), code, headers
            if kind == "slow":
                time.sleep(rest[0])
                return None
            if kind == "garbage":
                return "<html>bad gateway</html>", 200, {"Content-Type": "text/html"}
            return None

        @app.get("/api/v2/incremental/tickets/cursor.json")
        def zendesk_export():
            injected = failure()
            if injected is not None:
                return injected
            if not authorized(ZENDESK_USER, ZENDESK_TOKEN):
                return jsonify(error="Couldn't authenticate you"), 401
            ordered = sorted(self.zendesk, key=lambda t: (_time(t["updated_at"]), t["id"]))
            if "cursor" in request.args:
                offset = int(base64.b64decode(request.args["cursor"]).decode())
            else:
                start = float(request.args["start_time"])
                offset = next((i for i, t in enumerate(ordered) if _time(t["updated_at"]) >= start), len(ordered))
            size = min(int(request.args.get("per_page", 1000)), self.zendesk_page)
            page = ordered[offset:offset + size]
            following = offset + len(page)
            return jsonify(tickets=page, after_cursor=base64.b64encode(str(following).encode()).decode(),
                           after_url=None, before_cursor=None, before_url=None,
                           end_of_stream=following >= len(ordered))

        @app.get("/api/v2/tickets")
        def freshdesk_list():
            injected = failure()
            if injected is not None:
                return injected
            if not authorized(FRESHDESK_KEY, "X"):
                return jsonify(code="invalid_credentials", message="You have to be logged in"), 401
            assert request.args["order_by"] == "updated_at" and request.args["order_type"] == "asc"
            since = _time(request.args["updated_since"])
            per_page, number = int(request.args["per_page"]), int(request.args["page"])
            if per_page > 100 or number > 300:
                return jsonify(description="Validation failed"), 400
            listed = sorted((t for t in self.freshdesk if _time(t["updated_at"]) >= since),
                            key=lambda t: (_time(t["updated_at"]), t["id"]))
            return jsonify(listed[(number - 1) * per_page:number * per_page])

        return app
