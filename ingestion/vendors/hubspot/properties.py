"""HubSpot ticket properties: what one `ticket.propertyChange` event says about the ticket.

A property change carries one property, never the whole ticket: `propertyName` and
`propertyValue` ("the new value set for the property"; values are strings, and an empty
one means the property was cleared: developers.hubspot.com/docs/api/webhooks). The
properties the shared model has a field for are mapped to it; every other property
(`hs_pipeline`, a portal's own properties) is kept in `custom_fields` under its name.

- `subject` -> subject; `content` (the ticket's description) -> description.
- `hs_pipeline_stage` -> status. Its values are internal stage ids, the portal's own
  ("You must use the internal ID of a ticket status": /docs/api/crm/tickets, whose create
  example uses `"hs_pipeline": "0", "hs_pipeline_stage": "1"`). DEFAULT_STAGES names the
  stages of the default support pipeline as new portals have them (1 New, 2 Waiting on
  contact, 3 Waiting on us, 4 Closed). That naming is common knowledge that no source at
  hand confirms, and every portal can rename, add and delete stages, so
  HUBSPOT_STATUS_NAMES (`1=new,4=closed,87654321=escalated`) names them the portal's way;
  the pipelines API (GET /crm/v3/pipelines/tickets) lists each stage's id and label. An
  id nobody named is stored as it is sent.
- `hs_ticket_priority` -> priority, lower-case (the docs' example has `HIGH`; LOW,
  MEDIUM, HIGH and URGENT are the default options, which portals may change).
- `hubspot_owner_id` -> assignee_id ("" when unassigned: no assignee).
- `hs_ticket_category` -> type, lower-case (a multiple checkbox: "A;B" stays one value).

The same properties come all at once in a CRM ticket object (`fields`: the reconciler's
search, objects.py), with the same names and the same string values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import InvalidField
from ...normalize import events
from ...normalize.values import code_word, optional_id, text

#: The default support pipeline's stage ids (see the module docstring: unverified, per portal).
DEFAULT_STAGES: Mapping[str, str] = {"1": "new", "2": "waiting on contact", "3": "waiting on us", "4": "closed"}
NAME = "propertyName"
VALUE = "propertyValue"


def _stage(value: Any, names: Mapping[str, str], where: str) -> str | None:
    word = text(value, where)
    if word is None or not word.strip():
        return None
    named = names.get(word.strip())
    return named if named is not None else code_word(word, where, {})


def _word(value: Any, _names: Mapping[str, str], where: str) -> str | None:
    return code_word(value, where, {})


def _text(value: Any, _names: Mapping[str, str], where: str) -> str | None:
    return text(value, where)


def _id(value: Any, _names: Mapping[str, str], where: str) -> str | None:
    return optional_id(value, where)


#: HubSpot property -> (our field, how its value reads).
MAPPED = {
    "subject": ("subject", _text),
    "content": ("description", _text),
    "hs_pipeline_stage": ("status", _stage),
    "hs_ticket_priority": ("priority", _word),
    "hubspot_owner_id": ("assignee_id", _id),
    "hs_ticket_category": ("type", _word),
}


def change(payload: Mapping[str, Any], stage_names: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, changes) of one property change. The previous value is not sent: it is
    None in `changes`, which says what the property became."""
    name = payload.get(NAME)
    if not isinstance(name, str) or not name.strip():
        raise InvalidField(NAME, "is missing: a ticket.propertyChange names the property it changed")
    name = name.strip()
    if len(name) > events.MAX_NAME:
        raise InvalidField(NAME, f"is longer than {events.MAX_NAME} characters: not a property name")
    text(name, NAME)  # refuses NUL and lone surrogates
    value = payload.get(VALUE)  # absent, like null: the property has no value any more
    mapped = MAPPED.get(name)
    if mapped is not None:
        field, read = mapped
        current = read(value, stage_names, VALUE)
        return {field: current}, events.previous_current(field, None, current)
    current = custom(value, VALUE)
    return {"custom_fields": {name: current}}, {"custom_fields": events.previous_current(name, None, current)}


def custom(value: Any, where: str) -> Any:
    """A property the shared model has no field for, as it is kept in custom_fields."""
    if isinstance(value, (dict, list)):
        raise InvalidField(where, "must be a string: HubSpot sends a property's value as text")
    return text(value, where) if not isinstance(value, (bool, float)) else value


def fields(values: Mapping[str, Any], stage_names: Mapping[str, str], where: str) -> dict[str, Any]:
    """Every property of a CRM ticket object (`properties`, all at once): the mapped ones
    to their fields, the rest to custom_fields. Its times and its id are the caller's
    (objects.py): they are no custom field."""
    found: dict[str, Any] = {}
    custom_fields: dict[str, Any] = {}
    for name, value in values.items():
        if not isinstance(name, str) or name in OBJECT_OWN:
            continue
        mapped = MAPPED.get(name)
        if mapped is not None:
            field, read = mapped
            found[field] = read(value, stage_names, where + name)
        else:
            text(name, where + "<name>")  # refuses NUL and lone surrogates in a name
            custom_fields[name] = custom(value, where + name)
    if custom_fields:
        found["custom_fields"] = custom_fields
    return found


#: Properties a CRM object's reader takes for itself: its times and its id.
OBJECT_OWN = frozenset({"createdate", "hs_lastmodifieddate", "hs_object_id"})
