"""HubSpot: an app's webhook subscriptions (Service Hub tickets among the CRM objects).

Vendor quirks that shape this module (developers.hubspot.com/docs/api/webhooks and
/docs/api/webhooks/validating-requests, unless another source is named):
- Every call is signed (v3): `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(the app's
  client secret, method + URI + raw body + X-HubSpot-Request-Timestamp)), the timestamp
  in Unix milliseconds, refused when older than 5 minutes. The URI is the full URL
  HubSpot called (`https://host/path?query`); the docs' Node example builds
  `https://${hostname}${url}`, and the same page has the URI signed with `%3A`, `%2F`,
  `%40` and its other listed escapes decoded: either is accepted (verifiers.Target).
  HubSpot's own test vector (hubspot-api-python
  tests/spec/utils/test_signature.py @a2a528a9) is checked in the tests. The legacy
  `X-HubSpot-Signature` (v1: SHA-256 of secret + body, no timestamp, replayable) is not
  accepted.
- The body is a JSON array of events, "up to 100" per request (the same page also says
  "under 100"), for any object type and any of the app's subscriptions (`batch`: the
  service reads each item alone and stores them all or none; an empty array is
  refused). HubSpot guarantees neither order ("Use the occurredAt property") nor a single
  delivery of an event, and retries a failed request up to 10 times over 24 hours.
- Each event: `subscriptionType` (`ticket.propertyChange`; the docs' field table and
  batch example call it `eventType`: both are read), `objectId` (for tickets the ticket
  id; ids pass 2^31: 316126906070), `portalId` (the customer's HubSpot account),
  `eventId`, `subscriptionId`, `appId`, `occurredAt` (Unix ms), `attemptNumber`,
  `changeSource`, `sourceId`, and on the new developer platform's generic subscriptions
  `object.*` with `objectTypeId` ("0-5" is the ticket type).
- Ticket events are `ticket.creation`, `propertyChange`, `deletion`, `restore`, `merge`
  and `associationChange`; every other object's events (contacts, companies, deals,
  conversations, whose objectId is a thread id) are answered `ignored`. So are
  `contact/company/deal.associationChange` events of a `*_TO_TICKET` type: "the webhook
  will fire two events for both sides of the association", so a ticket.associationChange
  subscription receives the ticket's side itself.
- An event says little: `ticket.creation` only the id; a property change one property
  (properties.py); deletion, restore and merge no properties ("No new payload properties
  were added for restore": /changelog/new-subscription-types-for-webhooks). The event's
  time is `occurredAt`: a late event older than the stored ticket is stale and leaves the
  ticket as it is, even when it changed another property than the newer one did.
- `ticket.deletion` moves the ticket to the recycle bin, where it can be restored for 90
  days (/docs/api/crm/tickets, "Delete tickets"): a soft delete; `ticket.restore` brings
  it back under the same id.
- `ticket.merge`: the ticket that survives is `newObjectId` when a new record was made
  (then `primaryObjectId` was merged into it too), else `primaryObjectId`, else
  `objectId` (a published sample has only `objectId` and `mergedObjectIds`). The event is
  stored on the survivor, the merged ids in `changes` (`merged_ticket_ids`). The merged
  tickets' own rows are left as they were: one event changes one ticket.
- `ticket.associationChange`: `associationType` (TICKET_TO_CONTACT, CONTACT_TO_TICKET,
  ...) says which of `fromObjectId` and `toObjectId` is the ticket; `associationRemoved`
  whether the link went. Stored on the ticket with the link in `changes` (`associations`).
- The delivery: `eventId`, "The ID of the event that triggered this notification. This
  value is not guaranteed to be unique." It is the vendor event id all the same (issue
  23); a delivery identity holds per ticket, so two events would have to share both the
  ticket and the id to be taken for one. That a retry keeps the id is not documented
  either; a retry is the same notification again (`attemptNumber` counts the attempts),
  so it is taken to. A retry's body differs by `attemptNumber`, which is why no body
  fingerprint could recognise it.
- The account: `portalId`, signed with the body (`claimed_accounts`); a source named
  otherwise than by a portal id is bound to the first portal an authentic delivery names.
- A CRM ticket object (`{id, properties, createdAt, updatedAt, archived}`, no event type)
  is read as a `ticket.snapshot` of the whole ticket (objects.py): what the reconciler
  pulls from the CRM search (export.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ...errors import InvalidField, UnreadableBody
from ...normalize import events
from ...normalize.values import storable, ticket_id, whole_number
from ...tickets import Deletion, TicketEvent
from ...vendor import Vendor, timestamped_signature
from . import objects, properties
from .export import EXPORT

NAME = "hubspot"
STATUS_NAMES = "HUBSPOT_STATUS_NAMES"
#: Where an event names itself: the field every captured body uses, then the docs' name.
EVENT_NAME = ("subscriptionType", "eventType")
TICKET_FAMILY = "ticket"
#: The new developer platform's generic subscriptions name the object type by its id.
GENERIC_FAMILY, TICKET_TYPE_ID = "object", "0-5"
DELETIONS = {"deletion": Deletion.SOFT, "restore": Deletion.RESTORED}


def normalize(payload: Mapping[str, Any], headers: Mapping[str, str] | None = None, account: str | None = None,
              stage_names: Mapping[str, str] | None = None) -> TicketEvent | None:
    """One event of a delivery (the service hands each array item here: `batch`), or a
    CRM ticket object read as a snapshot (the reconciler's: objects.py)."""
    if objects.is_object(payload, EVENT_NAME):
        return objects.snapshot(payload, NAME, account or "",
                                properties.DEFAULT_STAGES if stage_names is None else stage_names)
    name = event_name(payload)
    family, _, action = name.partition(".")
    if family == GENERIC_FAMILY and str(payload.get("objectTypeId")) == TICKET_TYPE_ID:
        family = TICKET_FAMILY
    if family != TICKET_FAMILY:
        return None
    happened = occurred_at(payload)
    fields: dict[str, Any] = {}
    changes: dict[str, Any] | None = None
    if action == "merge":
        external_id, changes = _merge(payload)
    elif action == "associationChange":
        external_id, changes = _association(payload)
    else:
        external_id = ticket_id(payload.get("objectId"), "objectId")
        if action == "propertyChange":
            fields, changes = properties.change(payload, properties.DEFAULT_STAGES if stage_names is None
                                                else stage_names)
        elif action == "creation":
            fields["vendor_created_at"] = happened
    fields["vendor_updated_at"] = happened
    return TicketEvent(
        vendor=NAME, account=account or _first(claimed_accounts(payload, {})), external_id=external_id,
        fields=fields, event_type=name, vendor_event_id=_event_id(payload.get("eventId")), changes=changes,
        deletion=DELETIONS.get(action),
    )


def event_name(payload: Mapping[str, Any]) -> str:
    for key in EVENT_NAME:
        value = payload.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > events.MAX_NAME or not storable(value):
            raise InvalidField(key, "must be a subscription type such as ticket.propertyChange")
        return value.strip()
    raise InvalidField(EVENT_NAME[0], f"is missing: every HubSpot event names its type (or {EVENT_NAME[1]})")


def occurred_at(payload: Mapping[str, Any]) -> datetime:
    """`occurredAt`, Unix milliseconds: the event's time, which orders it."""
    value = payload.get("occurredAt")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = whole_number(value, 0, 10**15)  # (past year 33000: None, refused below)
    if value is None:
        raise InvalidField("occurredAt", "is missing: every HubSpot event says when it occurred")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField("occurredAt", "must be the event's time in Unix milliseconds")
    try:
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidField("occurredAt", "is not a time: Unix milliseconds out of range") from None


def _event_id(value: Any) -> str | None:
    """`eventId` as text; a value no delivery identity can be made of leaves the body's
    fingerprint to identify the delivery."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value.strip()) <= 200 and storable(value):
        return value.strip()
    return None


def _merge(payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The surviving ticket, and the ids merged into it (see the module docstring)."""
    named = [(key, payload.get(key)) for key in ("newObjectId", "primaryObjectId", "objectId")]
    present = [(key, value) for key, value in named if value is not None]
    survivor = ticket_id(present[0][1] if present else None, present[0][0] if present else "objectId")
    merged = payload.get("mergedObjectIds")
    if merged is not None and not isinstance(merged, list):
        raise InvalidField("mergedObjectIds", "must be an array of ticket ids")
    ids = [ticket_id(value, f"mergedObjectIds[{index}]") for index, value in enumerate(merged or ())]
    if present and present[0][0] == "newObjectId" and payload.get("primaryObjectId") is not None:
        ids.append(ticket_id(payload["primaryObjectId"], "primaryObjectId"))  # merged into a new record too
    return survivor, events.previous_current("merged_ticket_ids", None,
                                             [i for i in dict.fromkeys(ids) if i != survivor])


def _association(payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The ticket's side of a link, and the link in `changes`."""
    kind = payload.get("associationType")
    if kind is not None and not isinstance(kind, str):
        raise InvalidField("associationType", "must be a string such as TICKET_TO_CONTACT")
    kind = (kind or "").strip().upper()
    if kind.startswith("TICKET_TO_"):
        ours, other = "fromObjectId", "toObjectId"
    elif kind.endswith("_TO_TICKET"):
        ours, other = "toObjectId", "fromObjectId"
    elif payload.get("objectId") is not None:
        ours, other = "objectId", None
    else:
        raise InvalidField("associationType", "must name the ticket's side (TICKET_TO_... or ..._TO_TICKET)")
    linked = ticket_id(payload[other], other) if other and payload.get(other) is not None else None
    removed = payload.get("associationRemoved") is True
    link = {"type": kind or None, "id": linked}
    return ticket_id(payload.get(ours), ours), {"associations": {"added": [] if removed else [link],
                                                                 "removed": [link] if removed else []}}


def _first(names: tuple[str, ...]) -> str:
    return names[0] if names else ""


def is_account_id(account: str) -> bool:
    """A HubSpot account id (portalId) in plain digits: positive, no leading zero, at most 19."""
    return 0 < len(account) <= 19 and account.isascii() and account.isdigit() and account[0] != "0"


def claimed_accounts(payload: Any, headers: Mapping[str, str]) -> tuple[str, ...]:
    """The portals a delivery names: each event's `portalId` (an event, or the whole
    array). HubSpot sends no account header."""
    named = []
    for event in payload if isinstance(payload, list) else (payload,):
        portal = event.get("portalId") if isinstance(event, dict) else None
        if isinstance(portal, int) and not isinstance(portal, bool):
            portal = str(portal)
        if isinstance(portal, str) and is_account_id(portal.strip()):
            named.append(portal.strip())
    return tuple(dict.fromkeys(named))


def batch(body: Any) -> Sequence[Mapping[str, Any]] | None:
    """The events of a delivery: the array's items; None for a single event object (a
    relay's, or a test's). HubSpot never sends an empty array: one is refused like an
    empty body (400, quarantined), as a delivery of nothing."""
    if isinstance(body, dict):
        return None
    if not isinstance(body, list):
        raise InvalidField("body", "must be an array of HubSpot events")
    if not body:
        raise UnreadableBody("JSON body is an empty array: a HubSpot delivery holds at least one event", "empty")
    for index, event in enumerate(body):
        if not isinstance(event, dict):
            raise InvalidField(f"[{index}]", "must be a JSON object: a HubSpot event")
    return body


class HubSpotSettings(Protocol):
    def code_names(self, variable: str) -> Mapping[str, str]: ...


def normalizer(settings: HubSpotSettings) -> Callable[..., TicketEvent | None]:
    """The normalizer with the portal's own stage names (HUBSPOT_STATUS_NAMES)."""
    return functools.partial(normalize, stage_names={**properties.DEFAULT_STAGES, **settings.code_names(STATUS_NAMES)})


VENDOR = Vendor(
    name=NAME,
    title="HubSpot",
    summary="A HubSpot app webhook (an array of CRM events, of which ticket.* events are stored)",
    folder=Path(__file__).parent,
    credentials=(timestamped_signature("HUBSPOT_CLIENT_SECRET", "X-HubSpot-Signature-v3",
                                       "X-HubSpot-Request-Timestamp", layout="method+uri+body+stamp"),),
    normalize=normalize, tuned=normalizer, code_names=(STATUS_NAMES,), batch=batch,
    claimed_accounts=claimed_accounts, is_account_id=is_account_id, export=EXPORT,
)
