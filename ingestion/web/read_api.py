"""The read API: a ticket's current state and its event history, for operators and
downstream services.

    GET /api/v1/tickets/<vendor>/<external_id>?account=
    GET /api/v1/tickets/<vendor>/<external_id>/events?account=&limit=&cursor=

Authentication: `Authorization: Bearer <token>` with one of API_TOKENS; a token written
`token@vendor/account` there reads that account only (anything else is answered as not
found, so a scoped token cannot even learn what exists elsewhere). Production with
no token configured answers 401 to every call (stored conversations are personal data);
development is open, with a warning at start. Rate limited per client like the webhooks,
counted separately. Events come oldest first (by id, which is commit order per ticket);
`next_cursor` is null on the last page. A page also stops early once its payloads reach
storage.PAGE_BUDGET_BYTES (it then has a `next_cursor`); stored JSON goes into the answer
as stored text (web/stored_json.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from flask import Blueprint, g, request
from flask.wrappers import Response

from ..config import Settings
from ..errors import BadRequest, TicketNotFound, TokenRequired
from ..normalize.values import storable, whole_number
from .current import services
from ..verifiers import first_equal
from .stored_json import json_response, object_text, page_text

log = logging.getLogger(__name__)

PREFIX = "/api/v1/tickets"
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
ViewDecorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def bearer_token(settings: Settings) -> ViewDecorator:
    """View decorator: the request must carry one of API_TOKENS (see the module docstring).
    What the token may read is left in `g.token_scope`: (vendor, account), or None for
    every account."""
    tokens = settings.api_tokens
    labelled = tuple((str(position), token) for position, (token, _) in enumerate(tokens))

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            g.token_scope = None
            if not tokens:
                if settings.development:
                    return view(*args, **kwargs)
                raise TokenRequired("The read API is closed: no API_TOKENS are configured")
            scheme, _, provided = request.headers.get("Authorization", "").partition(" ")
            matched = first_equal(provided.strip(), labelled) if scheme.lower() == "bearer" else None
            if matched is None:
                raise TokenRequired("A valid bearer token is required")
            g.token_scope = tokens[int(matched)][1]
            return view(*args, **kwargs)

        guarded.api_auth = True  # type: ignore[attr-defined]  (the routes test looks for it)
        return guarded

    return decorate


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def ticket_text(row: dict[str, Any]) -> str:
    """The ticket as JSON text; custom fields as stored (JSON text from the query)."""
    return object_text({
        "ticket_id": str(row["id"]), "vendor": row["vendor"], "account": row["account"],
        "external_id": row["external_id"], "subject": row["subject"], "description": row["description"],
        "status": row["status"], "priority": row["priority"], "type": row["type"],
        "requester": {"name": row["requester_name"], "email": row["requester_email"], "id": row["requester_id"]},
        "assignee": {"name": row["assignee_name"], "email": row["assignee_email"], "id": row["assignee_id"]},
        "group": row["group_name"], "organization": row["organization"], "tags": list(row["tags"]),
        "vendor_created_at": _iso(row["vendor_created_at"]),
        "vendor_updated_at": _iso(row["vendor_updated_at"]), "deleted_at": _iso(row["deleted_at"]),
        "purged_at": _iso(row["purged_at"]), "revision": row["revision"],
        "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]),
    }, {"custom_fields": row["custom_fields"]})


def event_text(row: dict[str, Any]) -> str:
    """One event as JSON text; changes and payload as stored (JSON text from the query)."""
    comment = None
    if row["comment_body"] is not None:
        comment = {"body": row["comment_body"], "author": row["comment_author"], "public": row["comment_public"]}
    return object_text({
        "event_id": str(row["id"]), "event_type": row["event_type"], "vendor_event_id": row["vendor_event_id"],
        "received_at": _iso(row["received_at"]), "outcome": row["outcome"], "comment": comment,
    }, {"changes": row["changes"], "payload": row["payload"]})


def _account() -> str:
    account = request.args.get("account", "")
    if len(account) > 100:
        raise BadRequest("Query parameter 'account' must be at most 100 characters")
    if not storable(account):
        raise BadRequest("Query parameter 'account' holds a character no account has (NUL or an unpaired surrogate)")
    return account


def _int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = whole_number(raw, minimum, maximum)
    if value is None:
        raise BadRequest(f"Query parameter '{name}' must be a whole number between {minimum} and {maximum}")
    return value


def next_cursor(rows: list[dict[str, Any]], more: bool) -> str | None:
    """The cursor of the page after these rows (the last shown id), None on the last page."""
    return str(rows[-1]["id"]) if more and rows else None


def in_scope(vendor: str, account: str) -> bool:
    """Whether the request's token may read this vendor account (bearer_token)."""
    scope = g.get("token_scope")
    return scope is None or scope == (vendor, account)


def _find(vendors: Collection[str], vendor: str, external_id: str) -> dict[str, Any]:
    if vendor not in vendors:
        raise TicketNotFound()
    if not storable(external_id):  # PostgreSQL text cannot even be asked for one
        raise BadRequest("The ticket id holds a character no ticket id has (NUL or an unpaired surrogate)")
    account = _account()
    if not in_scope(vendor, account):  # the same answer as a ticket that does not exist
        raise TicketNotFound()
    row = services().storage.ticket(vendor, account, external_id)
    if row is None:
        raise TicketNotFound()
    return row


def read_api_blueprint(settings: Settings, vendors: Collection[str], rate_limited: ViewDecorator) -> Blueprint:
    """Decorators, outermost first: route, rate limit, bearer token."""
    blueprint = Blueprint("read_api", __name__)
    authenticated = bearer_token(settings)

    @blueprint.get(f"{PREFIX}/<vendor>/<external_id>")
    @rate_limited
    @authenticated
    def ticket(vendor: str, external_id: str) -> Response:
        return json_response(ticket_text(_find(vendors, vendor, external_id)))

    @blueprint.get(f"{PREFIX}/<vendor>/<external_id>/events")
    @rate_limited
    @authenticated
    def ticket_events(vendor: str, external_id: str) -> Response:
        limit = _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        after = _int_arg("cursor", 0, 0, 2**63 - 1)
        row = _find(vendors, vendor, external_id)
        rows, more = services().storage.ticket_events(str(row["id"]), after, limit)
        return json_response(page_text("events", map(event_text, rows), next_cursor(rows, more)))

    return blueprint


def log_posture(settings: Settings) -> None:
    """Once at start: say whether the read API is open, closed or token-protected."""
    if settings.api_tokens:
        log.info("read API: bearer tokens required", extra={
            "tokens": len(settings.api_tokens), "scoped": sum(1 for _, scope in settings.api_tokens if scope)})
    elif settings.development:
        log.warning("read API is open without authentication (APP_ENV=development, no API_TOKENS)")
    else:
        log.info("read API is closed: every call is answered 401 until API_TOKENS is set")
