"""An Intercom ticket or conversation object to the normalized fields it carries.

Keys absent from the object are absent from the fields (storage keeps what it has); a
key present with null is None. The shapes are the package docstring's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import InvalidField
from ...normalize import people
from ...normalize.values import code_word, optional_id, tags, text, timestamp
from .parts import Part

TICKET, CONVERSATION = "ticket", "conversation"
TITLE, DESCRIPTION = "_default_title_", "_default_description_"
#: The inbox's ticket number, kept among the custom fields under Intercom's name.
NUMBER = "ticket_id"


def ticket_fields(ticket: Mapping[str, Any], where: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    attributes = _attributes(ticket, where)
    custom: dict[str, Any] | None = None
    if attributes is not None:
        values, at = attributes
        if TITLE in values:
            fields["subject"] = text(values[TITLE], at + TITLE)
        if DESCRIPTION in values:
            fields["description"] = text(values[DESCRIPTION], at + DESCRIPTION)
        custom = {name: value for name, value in values.items() if name not in (TITLE, DESCRIPTION)}
    if ticket.get(NUMBER) is not None:
        custom = {**(custom or {}), NUMBER: text(ticket[NUMBER], where + NUMBER)}
    if custom is not None:
        fields["custom_fields"] = custom
    _word(fields, "status", *_state(ticket, where))
    kind = ticket.get("ticket_type")
    if isinstance(kind, dict):
        kind, kind_where = kind.get("name"), where + "ticket_type.name"
    else:
        kind_where = where + "ticket_type"
    if "ticket_type" in ticket:  # the workspace's type name, lower-cased as every vendor's type is
        named = text(kind, kind_where)
        fields["type"] = named.lower() if named else None
    _people(fields, ticket, where)
    if "company_id" in ticket:
        fields["organization"] = optional_id(ticket["company_id"], where + "company_id")
    _created(fields, ticket, where)
    return fields


def conversation_fields(conversation: Mapping[str, Any], where: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    first, first_where = opening(conversation, where)
    title = text(conversation.get("title"), where + "title")
    subject = text(first.get("subject"), first_where + "subject") if first else None
    if "title" in conversation or (first and "subject" in first):
        fields["subject"] = title or subject
    if first and "body" in first:
        fields["description"] = text(first["body"], first_where + "body")
    _word(fields, "status", conversation.get("state"), where + "state", "state" in conversation)
    _word(fields, "priority", conversation.get("priority"), where + "priority", "priority" in conversation)
    listed = _tag_list(conversation, "tags", where)
    if listed is not None:
        fields["tags"] = listed
    custom = conversation.get("custom_attributes")
    if isinstance(custom, dict):
        fields["custom_fields"] = dict(custom)
    elif custom is not None:
        raise InvalidField(where + "custom_attributes", "must be an object")
    user = conversation.get("user")  # API 1.x: the customer, and the assignee, as objects
    if isinstance(user, dict):
        _said(fields, "requester", _known(people.from_object(user, where + "user")))
    assignee = conversation.get("assignee")
    if isinstance(assignee, dict):
        if assignee.get("type") == "nobody_admin":
            fields.update(assignee_id=None, assignee_name=None, assignee_email=None)
        else:
            _said(fields, "assignee", people.from_object(assignee, where + "assignee"))
    _people(fields, conversation, where)
    _created(fields, conversation, where)
    return fields


def opening(conversation: Mapping[str, Any], where: str) -> tuple[Mapping[str, Any] | None, str]:
    """The message that opened a conversation, and where: `source` (2.x) or
    `conversation_message` (1.x)."""
    for key in ("source", "conversation_message"):
        if isinstance(conversation.get(key), dict):
            return conversation[key], f"{where}{key}."
    return None, where


def tags_added(conversation: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The tags an API 1.x conversation event added (`conversation_part.tag.created`)."""
    return _tag_list(conversation, "tags_added", where) or ()


def directory(obj: Mapping[str, Any], where: str, listed: Iterable[Part]) -> dict[str, people.Person]:
    """Everyone the body names with a name or an e-mail, by id: part authors, the opening
    message's author, and the 1.x conversation's user and assignee. Empty values say
    nothing (Intercom sends `"name": null` for people it knows more about)."""
    found: dict[str, people.Person] = {}
    first, first_where = opening(obj, where)
    objects = [(part.part.get("author"), part.where + ".author") for part in listed]
    objects += [((first or {}).get("author"), first_where + "author"), (obj.get("user"), where + "user"),
                (obj.get("assignee"), where + "assignee")]
    for value, at in objects:
        if isinstance(value, dict) and value.get("id") not in (None, ""):
            person = _known(people.from_object(value, at))
            if person.id is not None and (person.said_name or person.said_email):
                found[person.id] = people.merge(found.get(person.id, people.Person()), person)
    return found


def name_people(fields: dict[str, Any], known: Mapping[str, people.Person]) -> None:
    """The requester's and the assignee's name and e-mail, when the body names them
    anywhere (2.x gives only `contacts[0].id` and `admin_assignee_id`; the parts' authors
    often say who those are)."""
    for role in ("requester", "assignee"):
        person = known.get(fields.get(f"{role}_id") or "")
        if person is not None:
            _said(fields, role, people.merge(
                people.Person(fields.get(f"{role}_name"), fields.get(f"{role}_email"), None,
                              f"{role}_name" in fields, f"{role}_email" in fields), person))


def _attributes(ticket: Mapping[str, Any], where: str) -> tuple[dict[str, Any], str] | None:
    """`ticket_attributes` ({name: value}), or `custom_attributes` ({name: {value, type}}
    in ticket.contact.* notifications)."""
    for key in ("ticket_attributes", "custom_attributes"):
        value = ticket.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InvalidField(where + key, "must be an object")
        unwrapped = {name: inner.get("value") if isinstance(inner, dict) and "value" in inner else inner
                     for name, inner in value.items()}
        return unwrapped, f"{where}{key}."
    return None


def _state(ticket: Mapping[str, Any], where: str) -> tuple[Any, str, bool]:
    """(the status word, where it is, whether the ticket says it): `ticket_state.category`,
    `ticket_state` itself when a string, or `state` (ticket.contact.* notifications)."""
    state = ticket.get("ticket_state")
    if isinstance(state, dict):
        return state.get("category"), where + "ticket_state.category", "category" in state
    if "ticket_state" in ticket:
        return state, where + "ticket_state", True
    return ticket.get("state"), where + "state", "state" in ticket


def _word(fields: dict[str, Any], name: str, value: Any, where: str, said: bool) -> None:
    if said:
        fields[name] = code_word(value, where, {})


def _people(fields: dict[str, Any], obj: Mapping[str, Any], where: str) -> None:
    """`contacts` (the first is the requester), `admin_assignee_id`, `team_assignee_id`."""
    contacts = obj.get("contacts")
    listed = contacts.get("contacts") if isinstance(contacts, dict) else contacts
    if isinstance(listed, list) and listed and isinstance(listed[0], dict) and "id" in listed[0]:
        at = where + ("contacts.contacts[0].id" if isinstance(contacts, dict) else "contacts[0].id")
        fields["requester_id"] = optional_id(listed[0]["id"], at)
    elif contacts is not None and not isinstance(listed, list):
        raise InvalidField(where + "contacts", "must be a contact list")
    if "admin_assignee_id" in obj:
        fields["assignee_id"] = optional_id(obj["admin_assignee_id"], where + "admin_assignee_id")
    if "team_assignee_id" in obj:
        fields["group"] = optional_id(obj["team_assignee_id"], where + "team_assignee_id")


def _created(fields: dict[str, Any], obj: Mapping[str, Any], where: str) -> None:
    if "created_at" in obj:
        fields["vendor_created_at"] = timestamp(obj["created_at"], where + "created_at")


def _tag_list(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    """`{"type": "tag.list", "tags": [{"id", "name"}]}`, or the list itself."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, dict):
        return tags(value.get("tags"), f"{where}{key}.tags")
    return tags(value, where + key)


def _known(person: people.Person) -> people.Person:
    """What a person object says with a value: "" and null say nothing here."""
    return people.Person(person.name, person.email, person.id, person.name is not None,
                         person.email is not None, person.id is not None)


def _said(fields: dict[str, Any], role: str, person: people.Person) -> None:
    for part, said, value in (("name", person.said_name, person.name), ("email", person.said_email, person.email),
                              ("id", person.said_id, person.id)):
        if said:
            fields[f"{role}_{part}"] = value
