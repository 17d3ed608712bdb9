"""The webhook pipeline every vendor shares, and the blueprint built for each vendor.

A request travels: rate limit -> its source (the URL's vendor account, sources.py) ->
authenticate the raw bytes with the source's credentials -> parse -> the account the
delivery names must be the source's -> normalize -> store (one transaction) -> respond. Vendors only supply their normalizer and guard (the
app factory builds both from `ingestion/vendor.py` declarations); nothing here names a
vendor.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, request
from flask.wrappers import Response

from .. import batches, quarantine
from ..duplicates import request_key
from ..errors import ApiError, UnreadableBody
from ..json_body import parse_json_object
from ..metrics import WEBHOOKS, child
from .current import services
from ..sources import WEBHOOK_PREFIX, Source, webhook_path  # noqa: F401  (WEBHOOK_PREFIX: re-exported)
from ..tickets import Outcome, StoredDelivery
from ..vendor import Normalizer
from .guard import Guard, authenticated
from .request_context import WEBHOOK_KEY, raw_body

log = logging.getLogger(__name__)

#: The rate limit (web/rate_limit.py): view -> limited view, `prefetch` a key to read with it.
ViewDecorator = Callable[..., Callable[..., Any]]


def note_webhook(fields: dict[str, Any]) -> None:
    """Record what became of a webhook. Under gunicorn these fields join the request's
    access line (one JSON line per request, not two); elsewhere they are logged here."""
    if "gunicorn.socket" in request.environ:
        request.environ[WEBHOOK_KEY] = fields
    else:
        log.info("webhook processed", extra=fields)


#: A vendor's handshake (ingestion/vendor.py): request headers -> members of the answer.
Handshake = Callable[[Any], "dict[str, str] | None"]


def response_for(stored: StoredDelivery, extra: "dict[str, str] | None" = None) -> Response:
    if stored.outcome is Outcome.IGNORED:
        body: dict[str, Any] = {"status": "ignored", **(extra or {})}
    else:
        body = {"status": stored.outcome.value, "ticket_id": stored.ticket_id, "event_id": stored.event_id}
        if stored.outcome is Outcome.ALREADY_EXISTS:
            body["message"] = "Ticket already processed (idempotent)"
    # Flask's jsonify, minus its generic dispatch (the hot path's one answer); same bytes.
    return Response(json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n",
                    status=stored.outcome.http_status, mimetype="application/json")


def batch_response(vendor: str, account: str, items: list[batches.BatchItem], answers: list[StoredDelivery],
                   started: float) -> Response:
    """A batch's answer: each event's outcome in its place (SPEC 2.1); 201 when one of
    them created a ticket, else 200."""
    answered = []
    for item, stored in zip(items, answers):
        child(WEBHOOKS, vendor, stored.outcome.value).inc()
        one: dict[str, Any] = {"status": stored.outcome.value}
        if item.event is not None:
            one.update(external_id=item.event.external_id, ticket_id=stored.ticket_id, event_id=stored.event_id)
            if item.event.vendor_event_id:
                one["vendor_event_id"] = item.event.vendor_event_id
        answered.append(one)
    outcomes = Counter(one["status"] for one in answered)
    note_webhook({"vendor": vendor, "account": account, "outcome": "batch", "events": len(answered),
                  "outcomes": dict(outcomes), "webhook_ms": round((time.perf_counter() - started) * 1000, 2)})
    status = 201 if outcomes[Outcome.CREATED.value] else 200
    return Response(json.dumps({"status": "batch", "events": answered}, separators=(",", ":")) + "\n",
                    status=status, mimetype="application/json")


def receive(vendor: str, normalize: Normalizer, url_account: str | None,
            split: batches.Splitter | None = None, handshake: Handshake | None = None) -> Response:
    """Parse, normalize and store one authenticated delivery, under its source's account:
    one event, or a batch of them (`split`: the vendor's, ingestion/batches.py)."""
    started = time.perf_counter()
    account = g.source.account
    events = extra = None
    try:
        body = raw_body()
        payload, text = parse_json_object(body, arrays=split is not None)
        account = services().sources.settle_account(g.source, payload, request.headers)
        events = batches.events_of(split, payload)
        ingestor = services().ingestor
        if events is not None:
            items = batches.read(events, normalize, request.headers, account)
            answers = ingestor.store_batch(vendor, account, items, g.request_id, g.credential)
        elif not isinstance(payload, dict):
            raise UnreadableBody("JSON body must be an object, got an array", "not_object")
        else:
            event = normalize(payload, request.headers, account)
            if event is None:
                stored = ingestor.ignore(vendor, account, g.request_id)
                extra = handshake(request.headers) if handshake is not None else None
            else:
                stored = ingestor.store(event, body, text, g.request_id, request_key(vendor, url_account, body),
                                        g.get("prefetched"), g.credential)
    except ApiError as error:
        if error.quarantined and g.get("auth_method", "none") != "none":
            try:
                quarantine_refused(vendor, account, error)
            except ApiError as unavailable:  # the database: 503, so the vendor retries
                error = unavailable
        outcome = "unavailable" if error.status >= 500 else "rejected"
        child(WEBHOOKS, vendor, outcome).inc()
        note_webhook({"vendor": vendor, "outcome": outcome, "error": error.message,
                      "quarantine_id": error.extra.get("quarantine_id")})
        raise error from None
    if events is not None:
        return batch_response(vendor, account, items, answers, started)
    child(WEBHOOKS, vendor, stored.outcome.value).inc()
    note_webhook({
        "vendor": vendor,
        "account": event.account if event else account,
        "external_id": event.external_id if event else None,
        "event_type": event.event_type if event else None,
        "outcome": stored.outcome.value,
        "ticket_id": stored.ticket_id,
        "event_id": stored.event_id,
        "webhook_ms": round((time.perf_counter() - started) * 1000, 2),
    })
    return response_for(stored, extra)


def quarantine_refused(vendor: str, account: str | None, error: ApiError) -> None:
    """Keep an authentic delivery that could not be read (ingestion/quarantine.py) and
    name its entry in the answer. When the database cannot take it, the answer becomes
    the database's 503, so the vendor retries instead of giving the delivery up."""
    settings = services().settings
    error.extra["quarantine_id"] = quarantine.keep(
        services().storage, vendor=vendor, account=account or "", error=error, body=raw_body(),
        headers=request.headers, auth_method=g.auth_method, request_id=g.get("request_id"),
        max_entries=settings.quarantine_max_entries)


#: The optional last segment naming the vendor account (a Freshdesk domain, a Zendesk
#: subdomain): plain characters only, so it can never smuggle anything into a key.
ACCOUNT_SEGMENT = "<regex('[A-Za-z0-9][A-Za-z0-9._-]{0,99}'):account>"


def _answering_head(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def head_or_view(*args: Any, **kwargs: Any) -> Any:
        return Response(status=200, mimetype="application/json") if request.method == "HEAD" else view(*args, **kwargs)

    return head_or_view


def webhook_blueprint(vendor: str, normalize: Normalizer, guard: Guard, rate_limited: ViewDecorator,
                      split: batches.Splitter | None = None, handshake: Handshake | None = None,
                      answers_head: bool = False) -> Blueprint:
    """One blueprint per vendor, built in the app factory from what the vendor declares.
    Decorators, outermost first: route, rate limit, (a HEAD check,) authentication. Two
    routes: the vendor's URL, and the same with the vendor account as a last segment.

    `answers_head`: the vendor checks the URL with a HEAD request before it sends any
    notification (Intercom). A HEAD has no body: nothing to verify and nothing to store,
    so it is answered 200 with no body, inside the rate limit, before authentication."""
    blueprint = Blueprint(vendor, __name__)

    def view(account: str | None = None) -> Response:
        return receive(vendor, normalize, account, split, handshake)

    def entry_key() -> str | None:
        """The duplicate-cache key of this request, for the rate limit to fetch with its
        own Redis call (None when the body cannot be read: the view answers that)."""
        try:
            body = raw_body()
        except ApiError:
            return None
        return request_key(vendor, (request.view_args or {}).get("account"), body)

    def resolve(account: str | None) -> Source:
        return services().sources.resolve(vendor, account, request.headers)

    view.__name__ = view.__qualname__ = f"receive_{vendor}"  # unique names, for logs and tracebacks
    guarded = authenticated(guard, resolve)(view)
    if answers_head:
        guarded = _answering_head(guarded)
    guarded = rate_limited(guarded, prefetch=entry_key)
    for rule in (webhook_path(vendor), f"{webhook_path(vendor)}/{ACCOUNT_SEGMENT}"):
        blueprint.add_url_rule(
            rule, endpoint="receive", view_func=guarded, methods=["POST", "HEAD"] if answers_head else ["POST"],
            provide_automatic_options=False,  # OPTIONS gets the JSON 405 like any other method
        )
    return blueprint
