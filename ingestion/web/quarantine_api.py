"""The quarantine read API: what was refused and kept, for the operator fixing the cause.

    GET /api/v1/quarantine?vendor=&limit=&cursor=
    GET /api/v1/quarantine/<id>

The same bearer tokens as the ticket read API (web/read_api.py); a token scoped to one
vendor account lists and reads that account's entries only. Entries come oldest
first; `next_cursor` is null on the last page, and a page stops early once its bodies
reach storage.PAGE_BUDGET_BYTES. The body is shown as text when it is UTF-8 (`body`), as
base64 otherwise (`body_base64`): quarantine keeps bytes that are not text too.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.wrappers import Response

from ..config import Settings
from ..errors import BadRequest, EntryNotFound
from ..normalize.values import whole_number
from .current import services
from .read_api import ViewDecorator, _int_arg, _iso, bearer_token, in_scope, next_cursor

PREFIX = "/api/v1/quarantine"
DEFAULT_LIMIT, MAX_LIMIT = 50, 200


def entry_json(row: dict[str, Any]) -> dict[str, Any]:
    body = bytes(row["body"])
    try:
        shown = {"body": body.decode("utf-8"), "body_base64": None}
    except UnicodeDecodeError:
        shown = {"body": None, "body_base64": base64.b64encode(body).decode("ascii")}
    return {
        "quarantine_id": row["id"], "vendor": row["vendor"], "account": row["account"],
        "received_at": _iso(row["received_at"]), "status": row["status"], "reason": row["reason"],
        "error": row["error"], "headers": row["headers"], "auth_method": row["auth_method"],
        "request_id": row["request_id"], "replay_attempts": row["attempts"],
        "last_replay_attempt": _iso(row["last_attempt"]), "size": len(body), **shown,
    }


def quarantine_blueprint(settings: Settings, vendors: Collection[str], rate_limited: ViewDecorator) -> Blueprint:
    """Decorators, outermost first: route, rate limit, bearer token."""
    blueprint = Blueprint("quarantine_api", __name__)
    authenticated = bearer_token(settings)

    @blueprint.get(PREFIX)
    @rate_limited
    @authenticated
    def entries() -> Response:
        vendor = request.args.get("vendor") or None
        if vendor is not None and vendor not in vendors:
            raise BadRequest(f"Query parameter 'vendor' must be one of: {', '.join(vendors)}")
        limit = _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        after = _int_arg("cursor", 0, 0, 2**63 - 1)
        scope = g.get("token_scope")
        account = None
        if scope is not None:  # a scoped token lists its own account's entries only
            if vendor not in (None, scope[0]):
                return jsonify(entries=[], next_cursor=None)
            vendor, account = scope
        rows, more = services().storage.quarantine_entries(vendor, after, limit, account)
        return jsonify(entries=[entry_json(r) for r in rows], next_cursor=next_cursor(rows, more))

    @blueprint.get(f"{PREFIX}/<entry_id>")
    @rate_limited
    @authenticated
    def entry(entry_id: str) -> Response:
        if whole_number(entry_id, 1, 2**63 - 1) is None:
            raise EntryNotFound()
        row = services().storage.quarantine_entry(int(entry_id))
        if row is None or not in_scope(row["vendor"], row["account"]):
            raise EntryNotFound()
        return jsonify(entry_json(row))

    return blueprint
