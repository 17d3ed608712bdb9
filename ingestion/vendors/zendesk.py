"""Zendesk: event-subscription webhooks and trigger/automation webhooks.

Vendor quirks that shape this module:
- Every webhook is signed: base64(HMAC-SHA256(signing secret, timestamp + raw body)).
  Webhooks may also use Basic auth.
- Event subscriptions send `{"type": "zen:event-type:ticket.created", "id": <event id>,
  "subject": "zen:ticket:35436", "detail": {...ticket...}}`. Events about users,
  organizations and so on are authentic but not ours: they are answered `ignored`.
- Trigger bodies are written by the admin with placeholders, so every value is a
  string, dates are human-formatted ("February 3, 2025") and tags are one
  space-separated string. They arrive nested under "ticket" or flat.
- Each event has a unique id and each call an `X-Zendesk-Webhook-Invocation-Id`; the
  event id (or else the invocation id) is stored with the delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..tickets import Ticket
from ..web.auth import BasicCredentials, ZendeskSignature
from . import Vendor
from .fields import object_at, storable, ticket_from_fields

if TYPE_CHECKING:
    from ..config import Settings

EVENT_PREFIX = "zen:event-type:"
TICKET_EVENT_PREFIX = "zen:event-type:ticket."


def _is_event(payload: Mapping[str, Any]) -> bool:
    event_type = payload.get("type")
    return isinstance(event_type, str) and event_type.startswith(EVENT_PREFIX)


def normalize(payload: Mapping[str, Any]) -> Ticket | None:
    if _is_event(payload):
        if not payload["type"].startswith(TICKET_EVENT_PREFIX):
            return None
        subject = payload.get("subject")
        subject_id = subject.rpartition(":")[2] if isinstance(subject, str) and subject.startswith("zen:ticket:") else None
        return ticket_from_fields("zendesk", object_at(payload, "detail"), where="detail.", fallback_id=subject_id)
    if "ticket" in payload:
        return ticket_from_fields("zendesk", object_at(payload, "ticket"), where="ticket.")
    return ticket_from_fields("zendesk", payload)


def authentication(settings: "Settings") -> tuple:
    return (
        BasicCredentials(settings.zendesk_webhook_secret),
        ZendeskSignature(settings.zendesk_signing_secret, settings.webhook_timestamp_tolerance),
    )


def delivery_id(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str | None:
    """The event id, else the invocation id. Audit data only: a value PostgreSQL could not
    store (NUL, a lone surrogate) is dropped rather than refusing the ticket."""
    event_id = payload.get("id") if _is_event(payload) else None
    for candidate in (event_id, headers.get("X-Zendesk-Webhook-Invocation-Id")):
        if isinstance(candidate, str) and candidate and storable(candidate):
            return candidate[:200]
    return None


VENDOR = Vendor("zendesk", normalize, authentication, delivery_id)
