"""Freshdesk: webhooks are an action of automation rules (ticket created / updated).

Vendor quirks that shape this module:
- Automation rules do not sign requests. The native protection is HTTP Basic
  ("Requires authentication" in the rule); the HMAC header is for relays or apps that
  sign on Freshdesk's behalf.
- Three body shapes arrive: the legacy `{"freshdesk_webhook": {...}}` built from
  placeholders (status and priority as words, `triggered_event` as not-quite-JSON,
  custom fields as `ticket_cf_*`), the API-style `{"ticket": {...}}` with numeric
  status and priority codes, and a flat object.
- No delivery id is sent, and failed calls are retried 5, 30 and 60 minutes later, so
  old versions arrive late: storage compares `updated_at` to refuse stale overwrites.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..tickets import Ticket
from ..web.auth import BasicCredentials, HmacSignature
from . import Vendor
from .fields import object_at, ticket_from_fields

if TYPE_CHECKING:
    from ..config import Settings

#: Freshdesk API codes; 6 and above are account-specific and kept as given.
STATUS_CODES = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
PRIORITY_CODES = {1: "low", 2: "medium", 3: "high", 4: "urgent"}


def normalize(payload: Mapping[str, Any]) -> Ticket:
    if "freshdesk_webhook" in payload:
        fields, where = object_at(payload, "freshdesk_webhook"), "freshdesk_webhook."
    elif "ticket" in payload:
        fields, where = object_at(payload, "ticket"), "ticket."
    else:
        fields, where = payload, ""
    return ticket_from_fields(
        "freshdesk", fields, where=where, status_codes=STATUS_CODES, priority_codes=PRIORITY_CODES
    )


def authentication(settings: "Settings") -> tuple:
    return (
        HmacSignature("X-Freshdesk-Signature", settings.freshdesk_webhook_secret),
        BasicCredentials(settings.freshdesk_webhook_auth),
    )


def delivery_id(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str | None:
    return None  # Freshdesk sends none.


VENDOR = Vendor("freshdesk", normalize, authentication, delivery_id)
