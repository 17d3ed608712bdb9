"""The webhook pipeline every vendor shares, and the blueprint built for each vendor.

A request travels: rate limit -> authenticate the raw bytes -> parse -> normalize ->
store (one transaction) -> respond. Vendor modules only supply the vendor-specific
parts (`ingestion.vendors.Vendor`); nothing here is written twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.wrappers import Response

from ..errors import ApiError, BadRequest
from ..metrics import WEBHOOKS
from ..services import services
from ..tickets import Outcome, StoredDelivery
from ..vendors import Vendor
from .auth import authenticated
from .requests import WEBHOOK_KEY, raw_body

log = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/api/v1/ingest/webhook"
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}
ViewDecorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(raw: bytes) -> tuple[dict[str, Any], str]:
    """The body as a JSON object, whatever the Content-Type claims (vendors label JSON as
    form data). Returns the object and the decoded text, which is stored as the raw payload."""
    if not raw.strip():
        raise BadRequest("Request body is empty: expected a JSON object")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise BadRequest("Request body is not valid UTF-8") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("Request body is not usable JSON: nested too deeply") from None
    except json.JSONDecodeError as error:
        raise BadRequest(f"Request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    except ValueError as error:  # NaN / Infinity, integers past Python's digit limit
        raise BadRequest(f"Request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"JSON body must be an object, got {_JSON_TYPES.get(type(payload), 'a value')}")
    return payload, text


def note_webhook(fields: dict[str, Any]) -> None:
    """Record what became of a webhook. Under gunicorn these fields join the request's
    access line (one JSON line per request, not two); elsewhere they are logged here."""
    if "gunicorn.socket" in request.environ:
        request.environ[WEBHOOK_KEY] = fields
    else:
        log.info("webhook processed", extra=fields)


def response_for(stored: StoredDelivery) -> Response:
    if stored.outcome is Outcome.IGNORED:
        body: dict[str, Any] = {"status": "ignored"}
    else:
        body = {"status": stored.outcome.value, "ticket_id": stored.ticket_id}
        if stored.outcome is Outcome.ALREADY_EXISTS:
            body["message"] = "Ticket already processed (idempotent)"
    response = jsonify(body)
    response.status_code = stored.outcome.http_status
    return response


def receive(vendor: Vendor) -> Response:
    """Parse, normalize and store one authenticated delivery."""
    started = time.perf_counter()
    try:
        payload, text = parse_json_object(raw_body())
        ticket = vendor.normalize(payload)
        delivery_id = vendor.delivery_id(request.headers, payload)
        ingestor = services().ingestor
        if ticket is None:
            stored = ingestor.ignore(vendor.name, delivery_id, g.request_id)
        else:
            stored = ingestor.store(ticket, text, delivery_id, g.request_id)
    except ApiError as error:
        outcome = "unavailable" if error.status >= 500 else "rejected"
        WEBHOOKS.labels(vendor.name, outcome).inc()
        note_webhook({"vendor": vendor.name, "outcome": outcome, "error": error.message})
        raise
    WEBHOOKS.labels(vendor.name, stored.outcome.value).inc()
    note_webhook({
        "vendor": vendor.name,
        "external_id": ticket.external_id if ticket else None,
        "outcome": stored.outcome.value,
        "ticket_id": stored.ticket_id,
        "webhook_ms": round((time.perf_counter() - started) * 1000, 2),
    })
    return response_for(stored)


def webhook_path(vendor: Vendor) -> str:
    return f"{WEBHOOK_PREFIX}/{vendor.name}"


def webhook_blueprint(vendor: Vendor, rate_limited: ViewDecorator) -> Blueprint:
    """One blueprint per vendor, built in the app factory because the rate limiter belongs
    to the app. Decorators, outermost first: route, rate limit, authentication."""
    blueprint = Blueprint(vendor.name, __name__)

    def view() -> Response:
        return receive(vendor)

    # Unique names: flask-limiter and logs identify views by qualified name.
    view.__name__ = view.__qualname__ = f"receive_{vendor.name}"
    blueprint.add_url_rule(
        webhook_path(vendor),
        endpoint="receive",
        view_func=rate_limited(authenticated(vendor.name)(view)),
        methods=["POST"],
        provide_automatic_options=False,  # OPTIONS gets the JSON 405 like any other method
    )
    return blueprint
