"""A Jira issue (the REST v2 shape webhooks send) to the normalized fields it carries.

Only what the body says: a key the issue leaves out (the slim issue of a `comment_*`
event has no description, reporter, labels or times) is left out of the result, so the
stored value stays; a key present with null empties the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...errors import InvalidField
from ...normalize.values import code_word, optional_id, optional_object, tags, text, ticket_id, timestamp

#: PROJECT-123: a project key (a letter, then letters, digits or `_`) and the issue's number.
#: A numeric issue id, a project key alone or a comment id is not a ticket's key.
ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+")
CUSTOM_FIELD_PREFIX = "customfield_"


def key(issue: Mapping[str, Any]) -> str:
    """The ticket's id: the issue key (`SUP-123`)."""
    found = ticket_id(issue.get("key"), "issue.key")
    if not ISSUE_KEY.fullmatch(found):
        raise InvalidField("issue.key", "is not a Jira issue key (PROJECT-123)")
    return found


def fields(issue: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized fields of `issue` (see the module docstring)."""
    raw = optional_object(issue, "fields", "issue.") or {}
    where = "issue.fields."
    out: dict[str, Any] = {}
    if "summary" in raw:
        out["subject"] = text(raw["summary"], where + "summary")
    if "description" in raw:
        out["description"] = text(raw["description"], where + "description")
    for name, field in (("status", "status"), ("priority", "priority"), ("type", "issuetype")):
        if field in raw:
            word = named(raw[field], where + field)
            out[name] = code_word(word, where + field, {}) if word is not None else None
    if "labels" in raw:
        out["tags"] = tags(raw["labels"], where + "labels")
    if "project" in raw:  # the service desk, as a mailbox is Help Scout's group
        out["group"] = named(raw["project"], where + "project", ("name", "key", "id"))
    for role, field in (("requester", "reporter"), ("assignee", "assignee")):
        if field in raw:
            out.update({f"{role}_{part}": value for part, value in person(raw[field], where + field).items()})
    if "created" in raw:
        out["vendor_created_at"] = timestamp(raw["created"], where + "created")
    if "updated" in raw:
        out["vendor_updated_at"] = timestamp(raw["updated"], where + "updated")
    out["custom_fields"] = custom_fields(issue, raw, where)
    return out


def named(value: Any, field: str, names: tuple[str, ...] = ("name",)) -> str | None:
    """A status, priority, issue type or project: its name (or a string as it is)."""
    if isinstance(value, dict):
        for name in names:
            if value.get(name) not in (None, ""):
                return text(value[name], f"{field}.{name}")
        return None
    return text(value, field)


def person(value: Any, field: str) -> dict[str, Any]:
    """A Jira user: `displayName`, `emailAddress` (Cloud leaves it out: then the stored
    address stays) and `accountId` (Server: `key`, else `name`, the username). null is
    nobody: every part emptied."""
    if value is None:
        return {"name": None, "email": None, "id": None}
    if not isinstance(value, dict):
        raise InvalidField(field, "must be a Jira user (an object) or null")
    out = {"name": text(value.get("displayName"), field + ".displayName")}
    if "emailAddress" in value:
        out["email"] = text(value["emailAddress"], field + ".emailAddress")
    ident = next((name for name in ("accountId", "key", "name") if value.get(name) not in (None, "")), None)
    out["id"] = optional_id(value[ident], f"{field}.{ident}") if ident else None
    return out


def custom_fields(issue: Mapping[str, Any], raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`issue_id` (the numeric id, which a move to another project keeps while the key
    changes), what the model has no column for (`status_category`, `resolution`,
    `components`), and every `customfield_*` that has a value: a select's option as its
    `value`, anything else as sent. Unset ones (null) are left out: the changelog says
    when one is cleared (changelog.py)."""
    out: dict[str, Any] = {}
    issue_id = optional_id(issue.get("id"), "issue.id")
    if issue_id is not None:
        out["issue_id"] = issue_id
    status = raw.get("status")
    if isinstance(status, dict) and isinstance(status.get("statusCategory"), dict):
        category = status["statusCategory"].get("key")  # new | indeterminate | done, whatever the site's names
        out["status_category"] = text(category, where + "status.statusCategory.key")
    if "resolution" in raw:
        out["resolution"] = named(raw["resolution"], where + "resolution")
    if "components" in raw:
        components = raw["components"]
        if not isinstance(components, list):
            raise InvalidField(where + "components", "must be an array")
        out["components"] = [named(component, f"{where}components[{index}]")
                             for index, component in enumerate(components)]
    for name, value in raw.items():
        if isinstance(name, str) and name.startswith(CUSTOM_FIELD_PREFIX) and value is not None:
            out[name] = option_value(value)
    return out


def option_value(value: Any) -> Any:
    """A select list's option (`{"self", "value", "id"}`) as its value; a multi-select's
    as a list of values; anything else as Jira sent it."""
    if isinstance(value, dict) and "value" in value and ("id" in value or "self" in value):
        return value["value"]
    if isinstance(value, list):
        return [option_value(item) for item in value]
    return value
