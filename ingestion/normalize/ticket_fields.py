"""A ticket object (or a flat body) to the normalized fields it carries, and only those.

Each field lists its folded spellings (keys.py), most specific first. A field whose
every spelling is absent is left out of the result, so storage keeps the stored value
(merge, never wipe); a field present with null or "" is in the result as None.

A time is read from the first of its spellings that holds one: Zendesk's placeholders
render `{{ticket.updated_at}}` as "February 3, 2025" beside an ISO
`updated_at_with_timestamp`, and Freshdesk's as "Mon, 3 Feb, 2025 at 10:15 AM". A time
that no spelling gives readably is left out, not emptied: an unreadable date is not an
empty one, and wiping the stored time would let a late retry of an older delivery pass
for newer (ticket_merge orders events by it).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidField
from . import people
from .keys import Keys
from .values import code_word, optional_id, tags, text, timestamp

#: `ticket_id` before `id`: in a conversation (a reply, a note) `id` is the conversation's.
ID = ("ticketid", "id")
SUBJECT = ("subject", "ticketsubject", "title", "tickettitle")
DESCRIPTION = ("description", "ticketdescription", "descriptiontext", "ticketdescriptiontext")
STATUS = ("status", "ticketstatus")
PRIORITY = ("priority", "ticketpriority")
TYPE = ("tickettype", "tickettickettype")
TAGS = ("tags", "tickettags")
CREATED_AT = ("createdat", "ticketcreatedat", "createdatwithtimestamp", "ticketcreatedatwithtimestamp")
UPDATED_AT = ("updatedat", "ticketupdatedat", "lastupdatedat", "ticketlastupdatedat", "updatedatwithtimestamp",
              "ticketupdatedatwithtimestamp", "userupdatedat", "modifiedat", "usermodifiedat")

REQUESTER_OBJECTS = ("requester", "ticketrequester", "contact", "ticketcontact", "customer", "primarycustomer")
REQUESTER_NAME = ("requestername", "requesterfullname", "ticketrequestername", "ticketrequesterfullname",
                  "ticketcontactname", "contactname", "customername")
REQUESTER_EMAIL = ("requesteremail", "ticketrequesteremail", "ticketcontactemail", "contactemail", "customeremail")
REQUESTER_ID = ("requesterid", "ticketrequesterid", "contactid", "ticketcontactid", "customerid")

ASSIGNEE_OBJECTS = ("assignee", "ticketassignee", "agent", "ticketagent", "responder", "owner")
ASSIGNEE_NAME = ("assigneename", "assigneefullname", "ticketassigneename", "ticketassigneefullname",
                 "ticketagentname", "agentname", "respondername")
ASSIGNEE_EMAIL = ("assigneeemail", "ticketassigneeemail", "ticketagentemail", "agentemail", "responderemail")
ASSIGNEE_ID = ("assigneeid", "ticketassigneeid", "responderid", "agentid", "ticketagentid")

GROUP = ("groupname", "ticketgroupname", "group", "ticketgroup", "groupassigned", "groupid", "ticketgroupid")
ORGANIZATION = ("organizationname", "ticketorganizationname", "organization", "ticketorganization",
                "companyname", "ticketcompanyname", "ticketrequestercompanyname", "company",
                "organizationid", "ticketorganizationid", "companyid")
CUSTOM_FIELDS = ("customfields", "ticketcustomfields")
#: Freshdesk's placeholder-built keys for custom fields: ticket_cf_<name>.
CUSTOM_FIELD_PREFIXES = ("ticket_cf_",)


@dataclass(frozen=True)
class Vocabulary:
    """What a vendor's codes and words mean."""

    status_codes: Mapping[int, str] = field(default_factory=dict)
    priority_codes: Mapping[int, str] = field(default_factory=dict)
    synonyms: Mapping[str, str] = field(default_factory=dict)
    #: Whether a plain `type` key is the ticket's type (inside a ticket object it is;
    #: at the top of a body it may be the event's).
    type_key: bool = True

    @functools.cached_property
    def beside_a_ticket(self) -> "Vocabulary":
        """The same words for the keys beside a nested ticket, where `type` is the event's."""
        return dataclasses.replace(self, type_key=False)


def find_id(keys: Keys) -> tuple[str, Any] | None:
    return keys.find(ID)


def recognise(keys: Keys, vocabulary: Vocabulary) -> dict[str, Any]:
    """The normalized fields `keys` carries (see the module docstring)."""
    fields: dict[str, Any] = {}

    def scalar(name: str, aliases: tuple[str, ...], parse) -> None:
        found = keys.find(aliases)
        if found is not None:
            fields[name] = parse(found[1], found[0])

    scalar("subject", SUBJECT, text)
    scalar("description", DESCRIPTION, text)
    scalar("status", STATUS, lambda v, f: code_word(v, f, vocabulary.status_codes, vocabulary.synonyms))
    scalar("priority", PRIORITY, lambda v, f: code_word(v, f, vocabulary.priority_codes, vocabulary.synonyms))
    scalar("type", TYPE + (("type",) if vocabulary.type_key else ()), lambda v, f: _type(text(v, f)))
    scalar("tags", TAGS, tags)
    _moment(fields, "vendor_created_at", keys, CREATED_AT)
    _moment(fields, "vendor_updated_at", keys, UPDATED_AT)
    scalar("group", GROUP, _named)
    scalar("organization", ORGANIZATION, _named)
    _person(fields, "requester", keys, REQUESTER_OBJECTS, REQUESTER_NAME, REQUESTER_EMAIL, REQUESTER_ID)
    _person(fields, "assignee", keys, ASSIGNEE_OBJECTS, ASSIGNEE_NAME, ASSIGNEE_EMAIL, ASSIGNEE_ID)
    custom = custom_fields(keys)
    if custom is not None:
        fields["custom_fields"] = custom
    return fields


def _moment(fields: dict[str, Any], name: str, keys: Keys, aliases: tuple[str, ...]) -> None:
    """The first readable time among `aliases`; None when the ones present are all empty;
    left out when none is present, or none present is readable (module docstring)."""
    emptied = False
    for alias in aliases:
        found = keys.find((alias,))
        if found is None:
            continue
        if found[1] is None or found[1] == "":
            emptied = True
            continue
        moment = timestamp(found[1], found[0])
        if moment is not None:
            fields[name] = moment
            return
    if emptied:
        fields[name] = None


def _type(value: str | None) -> str | None:
    # Zendesk renders an unset type as "Ticket"; Help Scout's `type` is the channel
    # and is read by its own module, not here.
    return None if value is None or value.lower() == "ticket" else value.lower()


def _named(value: Any, field: str) -> str | None:
    """A group or organization: its name, from a string, an object, or an id."""
    if isinstance(value, dict):
        inner = Keys(value, field + ".").find(("name", "id"))
        return _named(inner[1], inner[0]) if inner else None
    return optional_id(value, field)


def _person(fields: dict[str, Any], role: str, keys: Keys, objects, names, emails, ids) -> None:
    found = [keys.find(names), keys.find(emails), keys.find(ids)]
    direct = people.Person(
        text(found[0][1], found[0][0]) if found[0] else None,
        text(found[1][1], found[1][0]) if found[1] else None,
        optional_id(found[2][1], found[2][0]) if found[2] else None,
        found[0] is not None, found[1] is not None, found[2] is not None,
    )
    nested = keys.find(objects)
    person = people.merge(direct, people.from_value(nested[1], nested[0]) if nested else people.Person())
    if person.said_name:
        fields[f"{role}_name"] = person.name
    if person.said_email:
        fields[f"{role}_email"] = person.email
    if person.said_id:
        fields[f"{role}_id"] = person.id


def custom_fields(keys: Keys) -> dict[str, Any] | None:
    """Custom fields as one JSON object, or None when the payload carries none.

    Freshdesk: an object (`custom_fields: {"cf_region": "EU"}`) or `ticket_cf_<name>`
    keys; Zendesk: an array of `{"id", "value"}`; Help Scout: `[{"id", "name", "value",
    "text"}]` (keyed by name, the text preferred over the option id).
    """
    found = keys.find(CUSTOM_FIELDS)
    result: dict[str, Any] | None = None
    if found is not None:
        where, value = found
        if isinstance(value, dict):
            result = dict(value)
        elif isinstance(value, list):
            result = {}
            for index, item in enumerate(value):
                if not isinstance(item, dict):
                    raise InvalidField(f"{where}[{index}]", "must be an object with an id and a value")
                item_keys = Keys(item)
                name = item_keys.find(("name", "title", "id", "fieldid"))
                if name is None or name[1] is None:
                    raise InvalidField(f"{where}[{index}]", "must have an id or a name")
                answer = item_keys.find(("text", "value"))
                result[str(name[1])] = answer[1] if answer else None
        elif value is not None:
            raise InvalidField(where, "must be an object or an array")
    for prefix in CUSTOM_FIELD_PREFIXES:
        for _key, name, value in keys.starting_with(prefix):
            result = result if result is not None else {}
            result[name] = value
    return result
