"""Jira's changelog (`changelog.items`) as an event's changes: `{field: {"previous",
"current"}}` in the model's field names, from each item's display values (`fromString`,
`toString`).

An item names its field by `fieldId` in newer payloads (`status`, `assignee`,
`customfield_10071`) and by `field` always, the display name, sometimes capitalized
(`Status`, `Key`, `Workflow`). Items about what the model has no field for (`Workflow`,
`Rank`, `Sprint`, `Fix Version`, time tracking) are left out; the raw payload keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import InvalidField
from ...normalize.events import previous_current
from ...normalize.values import code_word, optional_object, tags, text
from .issue import CUSTOM_FIELD_PREFIX

#: An item's field (folded) -> the model's field.
FIELDS = {"summary": "subject", "description": "description", "status": "status", "priority": "priority",
          "issuetype": "type", "labels": "tags", "project": "group",
          # A move to another project changes the issue's key, which is the ticket's id:
          # the event after it is stored under the new key (the module docstring of
          # __init__.py), and this change says which ticket it was before.
          "key": "external_id"}
#: People: their display names and their account ids (Server: usernames).
PEOPLE = {"assignee": "assignee", "reporter": "requester"}
WORDS = ("status", "priority", "type")


def changes(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The changes `payload`'s changelog says, or None when it says none the model knows."""
    changelog = optional_object(payload, "changelog")
    items = changelog.get("items") if changelog is not None else None
    if items is None:
        return None
    if not isinstance(items, list):
        raise InvalidField("changelog.items", "must be an array")
    out: dict[str, Any] = {}
    for index, item in enumerate(items):
        where = f"changelog.items[{index}]"
        if not isinstance(item, dict):
            raise InvalidField(where, "must be an object")
        name = _field(item, where)
        if name is None:
            continue
        previous = text(item.get("fromString"), where + ".fromString")
        current = text(item.get("toString"), where + ".toString")
        folded = name.lower()
        if item.get("fieldtype") == "custom" or folded.startswith(CUSTOM_FIELD_PREFIX):
            out.setdefault("custom_fields", {}).update(previous_current(name, previous, current))
        elif folded in PEOPLE:
            role = PEOPLE[folded]
            out.update(previous_current(f"{role}_name", previous, current))
            out.update(previous_current(f"{role}_id", _account(item, "From", where), _account(item, "To", where)))
        elif folded in FIELDS:
            ours = FIELDS[folded]
            if ours in WORDS:
                previous, current = (code_word(value, where, {}) for value in (previous, current))
            elif ours == "tags":  # labels: space-separated in the display values
                previous, current = (list(tags(value, where)) for value in (previous, current))
            out.update(previous_current(ours, previous, current))
    return out or None


def cleared_custom_fields(found: Mapping[str, Any] | None) -> list[str]:
    """The `customfield_*` ids the changelog emptied: the issue leaves unset custom fields
    out (issue.py), so these are set to null explicitly."""
    custom = (found or {}).get("custom_fields") or {}
    return [name for name, change in custom.items()
            if name.startswith(CUSTOM_FIELD_PREFIX) and change["current"] is None]


def _field(item: Mapping[str, Any], where: str) -> str | None:
    for key in ("fieldId", "field"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if value is not None and not isinstance(value, str):
            raise InvalidField(f"{where}.{key}", "must be a string")
    return None


def _account(item: Mapping[str, Any], side: str, where: str) -> str | None:
    """`tmpFromAccountId` / `tmpToAccountId` (Cloud), else `from` / `to`."""
    for key in (f"tmp{side}AccountId", side.lower()):
        if item.get(key) is not None:
            return text(item[key], f"{where}.{key}")
    return None
