"""A HubSpot CRM ticket object, read as a snapshot of the whole ticket.

The CRM API (`GET /crm/v3/objects/tickets/{id}`, the search the reconciler pulls:
export.py) answers with `{id, properties: {...}, createdAt, updatedAt, archived}`: every
property asked for, each a string or null (developers.hubspot.com/docs/api/crm/tickets;
the `SimplePublicObject` schema of HubSpot's public API specs). Unlike a webhook event,
which says one property, the object says them all at once, so it is stored as a
`ticket.snapshot`:
- `id` is the ticket's id, the webhooks' `objectId`: the same ticket.
- The properties the shared model has a field for are mapped as a property change maps
  them (properties.py: `hs_pipeline_stage` named with the portal's stage names); every
  other property is kept in custom_fields under its name.
- The object's time is `hs_lastmodifieddate` ("2025-01-02T10:00:00.123Z"), else
  `updatedAt`; `createdate`, else `createdAt`, is when the ticket was created.
- `archived: true` is a ticket in the recycle bin (deleted, restorable): marked deleted.
  An object names no portal: the account is the caller's (HUBSPOT_API_ACCOUNT).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...errors import InvalidField
from ...normalize import events
from ...normalize.values import ticket_id, timestamp
from ...tickets import Deletion, TicketEvent
from . import properties

PROPERTIES = "properties"


def is_object(payload: Mapping[str, Any], event_keys: tuple[str, ...]) -> bool:
    """A CRM object (its `properties`), not a webhook event (which names its type)."""
    return isinstance(payload.get(PROPERTIES), dict) and not any(key in payload for key in event_keys)


def snapshot(payload: Mapping[str, Any], vendor: str, account: str,
             stage_names: Mapping[str, str]) -> TicketEvent:
    values = payload[PROPERTIES]
    where = PROPERTIES + "."
    fields = properties.fields(values, stage_names, where)
    created = _time(values, "createdate", where) or _time(payload, "createdAt", "")
    updated = _time(values, "hs_lastmodifieddate", where) or _time(payload, "updatedAt", "")
    if created is not None:
        fields["vendor_created_at"] = created
    if updated is not None:
        fields["vendor_updated_at"] = updated
    return TicketEvent(vendor=vendor, account=account, external_id=ticket_id(payload.get("id"), "id"),
                       fields=fields, event_type=events.SNAPSHOT,
                       deletion=Deletion.SOFT if payload.get("archived") is True else None)


def _time(values: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = values.get(key)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())  # Unix milliseconds, as a filter writes them
    if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
        raise InvalidField(where + key, "must be a time (ISO 8601 or Unix milliseconds)")
    return timestamp(value, where + key)


def updated_at(ticket: Mapping[str, Any]) -> tuple[Any, datetime | None]:
    """(the object's modification time as sent, read): `hs_lastmodifieddate`, else
    `updatedAt`; (None, None) when neither reads."""
    values = ticket.get(PROPERTIES)
    for sent in ((values or {}).get("hs_lastmodifieddate") if isinstance(values, dict) else None,
                 ticket.get("updatedAt")):
        if isinstance(sent, str) and sent.strip():
            try:
                moment = _time({"t": sent}, "t", "")
            except InvalidField:
                moment = None
            if moment is not None:
                return sent, moment
    return None, None
