"""A fake of the vendors' REST APIs the reconciler reads, served by a real HTTP server on
loopback: Zendesk's cursor-based incremental ticket export, Freshdesk's ticket list,
Intercom's ticket search and HubSpot's CRM ticket search (the last two POSTs with a JSON
body and a Bearer token), with their authentication, pagination and failure modes on
demand (429 with Retry-After, 500, a response slower than the client's timeout, a body
that is not JSON).

Tests set each vendor's tickets (Zendesk's, Freshdesk's and Intercom's ticket objects
with `id` and `updated_at`; HubSpot's CRM objects with `properties.hs_lastmodifieddate`)
and queue failures in `failures` (consumed one per request); `requests` records what was
asked (the query, and a POST's JSON body and headers).
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
INTERCOM_TOKEN = "dG9rOmZha2UtaW50ZXJjb20tdG9rZW4tMDEyMzQ1Njc4OWFiY2RlZg=="
HUBSPOT_TOKEN = "pat-na1-1f2e3d4c-5b6a-4789-8a7b-6c5d4e3f2a1b"


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
    intercom: list[dict[str, Any]] = field(default_factory=list)
    #: Tickets per Intercom page (at most the request's per_page).
    intercom_page: int = 150
    hubspot: list[dict[str, Any]] = field(default_factory=list)
    #: Tickets per HubSpot page (at most the request's limit).
    hubspot_page: int = 200
    #: Called after each search page is computed (a ticket changing while pages are read).
    after_page: Any = None
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

        def bearer(token: str) -> bool:
            header = request.headers.get("Authorization", "")
            self.authorizations.append(header)
            return header == f"Bearer {token}"

        def failure():
            self.requests.append({"path": request.path, "args": dict(request.args), "method": request.method,
                                  "json": request.get_json(silent=True), "headers": dict(request.headers)})
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

        @app.post("/tickets/search")
        def intercom_search():
            """Intercom's ticket search: `updated_at` ">" ("Greater (or equal) than", as
            documented), no sort (here: by id, not by time), `starting_after` cursors."""
            injected = failure()
            if injected is not None:
                return injected
            if not bearer(INTERCOM_TOKEN):
                return jsonify(type="error.list", errors=[{"code": "unauthorized",
                                                           "message": "Access Token Invalid"}]), 401
            body = request.get_json()
            query, pagination = body["query"], body.get("pagination") or {}
            assert (query["field"], query["operator"]) == ("updated_at", ">") and isinstance(query["value"], str)
            per_page = int(pagination.get("per_page", 20))
            if per_page > 150:
                return jsonify(type="error.list", errors=[{"code": "parameter_invalid"}]), 400
            since = int(query["value"])
            listed = sorted((t for t in self.intercom if t["updated_at"] >= since), key=lambda t: t["id"])
            offset = int(base64.b64decode(pagination["starting_after"]).decode()) \
                if pagination.get("starting_after") else 0
            size = min(per_page, self.intercom_page)
            page, following = listed[offset:offset + size], offset + size
            pages = {"type": "pages", "page": offset // size + 1, "per_page": per_page,
                     "total_pages": max(1, -(-len(listed) // size))}
            if following < len(listed):
                pages["next"] = {"page": pages["page"] + 1,
                                 "starting_after": base64.b64encode(str(following).encode()).decode()}
            if self.after_page is not None:
                self.after_page()
            return jsonify(type="ticket.list", tickets=page, total_count=len(listed), pages=pages)

        @app.post("/crm/v3/objects/tickets/search")
        def hubspot_search():
            """HubSpot's CRM search: one filter, one sort, `after` offsets, at most 200 a
            page and 10,000 a search; only the properties asked for."""
            injected = failure()
            if injected is not None:
                return injected
            if not bearer(HUBSPOT_TOKEN):
                return jsonify(status="error", category="INVALID_AUTHENTICATION",
                               message="Authentication credentials not found."), 401
            body = request.get_json()
            (group,) = body["filterGroups"]
            (only,) = group["filters"]
            assert (only["propertyName"], only["operator"]) == ("hs_lastmodifieddate", "GTE")
            assert body["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
            limit, offset = int(body.get("limit", 10)), int(body.get("after") or 0)
            if limit > 200 or offset >= 10_000:
                return jsonify(status="error", category="VALIDATION_ERROR"), 400
            since = int(only["value"]) / 1000

            def modified(ticket):
                return _time(ticket["properties"]["hs_lastmodifieddate"])

            listed = sorted((t for t in self.hubspot if modified(t) >= since and not t.get("archived")),
                            key=lambda t: (modified(t), int(t["id"])))
            size = min(limit, self.hubspot_page)
            asked = set(body.get("properties") or ())
            page = [{**t, "properties": {k: v for k, v in t["properties"].items() if k in asked}}
                    for t in listed[offset:offset + size]]
            answer: dict[str, Any] = {"total": len(listed), "results": page}
            if offset + size < len(listed):
                answer["paging"] = {"next": {"after": str(offset + size), "link": "?after=" + str(offset + size)}}
            if self.after_page is not None:
                self.after_page()
            return jsonify(answer)

        return app
