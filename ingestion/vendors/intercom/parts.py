"""The parts of a ticket or conversation: which ones an event is about, its comment, and
the changes they record.

Intercom facts (fixtures: tests/vendors/intercom/fixtures/SOURCES.md):
- A `ticket_ticket_part` names the part that fired the event (`ticket_part`). A ticket
  sent whole (`ticket.created`, `ticket.state.updated`, `ticket.closed`) lists its whole
  history in `ticket_parts`: the event's parts are those made at the ticket's
  `updated_at` (a close is a `close` part and a `ticket_state_updated_by_admin` part of
  the same second). A conversation notification lists only the event's own parts.
- A message is a part with a body: `comment`, `note`, and also `assignment` (a reply sent
  while assigning is the part of `ticket.admin.replied` and 1.x `conversation.admin.replied`),
  `close` and `open` with a message. Parts that record what happened (state, attribute,
  title, tag and priority changes, the attribute and language detection of Fin) are not
  messages, nor is Fin's automatic "replies here and by e-mail" message
  (`channel_and_reply_time_expectation`) except as the reply of
  `conversation.operator.replied`, which it is. A redacted part (`redacted: true`, its
  body replaced by "This message was deleted") is no message, and `conversation_part.*`
  topics (a part tagged or redacted) list the part they are about, not a new one.
- A `note` is private, and so is whatever a note topic carries; every other message is
  public (the customer sees it).
- `ticket_state_updated_by_admin` carries `previous_ticket_state` and `ticket_state`
  (categories); `ticket_attribute_updated_by_admin` carries `updated_attribute_data`
  (`attribute.label`, `value.label` and `value.previous`): those are the changes Intercom
  states. Conversations state none (their `priority_changed` part names no values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...errors import InvalidField
from ...normalize import events, people
from ...normalize.values import code_word, text, timestamp
from ...tickets import Comment

NOTE_TOPICS = frozenset({"ticket.note.created", "conversation.admin.noted"})
#: Topics whose conversation has no message part: the opening message is the comment.
CREATED_TOPICS = frozenset({"conversation.user.created", "conversation.admin.single.created"})
#: Parts that record what happened, even when they carry a body.
RECORDS = frozenset({"attribute_collected", "language_detection_details", "ticket_state_updated_by_admin",
                     "title_changed", "ticket_attribute_updated_by_admin", "conversation_tags_updated",
                     "priority_changed", "channel_and_reply_time_expectation"})
PART_TOPICS = "conversation_part."
#: The topic whose reply is Fin's automatic message.
OPERATOR_REPLIED = "conversation.operator.replied"
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Part:
    part: Mapping[str, Any]
    where: str  # for error messages: "data.item.ticket.ticket_parts.ticket_parts[3]"
    position: int  # in the list: breaks ties between parts of one second

    @property
    def kind(self) -> str:
        kind = self.part.get("part_type")
        return kind if isinstance(kind, str) else ""

    def created(self) -> datetime | None:
        return timestamp(self.part.get("created_at"), self.where + ".created_at")


def listed(obj: Mapping[str, Any], key: str, where: str) -> list[Part]:
    """`{key: {"type": "..._part.list", key: [...]}}`: the part objects, in order."""
    container = obj.get(key)
    at = f"{where}{key}.{key}" if isinstance(container, dict) else where + key
    found = container.get(key) if isinstance(container, dict) else container
    if found is None:
        return []
    if not isinstance(found, list):
        raise InvalidField(at, "must be a list of parts")
    return [Part(part, f"{at}[{index}]", index) for index, part in enumerate(found) if isinstance(part, dict)]


def fired(family: str, parts: list[Part], updated_at: datetime | None) -> list[Part]:
    """The parts the event is about (see the module docstring)."""
    if family != "ticket":
        return parts
    return [part for part in parts if updated_at is not None and part.created() == updated_at]


def comment(topic: str, parts: list[Part], known: Mapping[str, people.Person]) -> Comment | None:
    """The newest message among the event's parts. A `conversation_part.*` topic is about
    a part already there (tagged, redacted): it carries no new message."""
    if topic.startswith(PART_TOPICS):
        return None
    messages = [part for part in parts if _is_message(part, topic)]
    if not messages:
        return None
    newest = max(messages, key=lambda part: (part.created() or _EARLIEST, part.position))
    body = text(newest.part["body"], newest.where + ".body")
    public = newest.kind != "note" and topic not in NOTE_TOPICS
    return Comment(body, _author(newest.part.get("author"), newest.where + ".author", known), public)


def opening(message: Mapping[str, Any] | None, where: str, known: Mapping[str, people.Person]) -> Comment | None:
    """A new conversation's first message (public: it is the customer's, or sent to them)."""
    if not message:
        return None
    body = text(message.get("body"), where + "body")
    return Comment(body, _author(message.get("author"), where + "author", known), True) if body else None


def changes(parts: list[Part]) -> dict[str, Any] | None:
    """What the event's parts say changed, from and to."""
    found: dict[str, Any] = {}
    for part in parts:
        if part.kind == "ticket_state_updated_by_admin":
            previous = code_word(part.part.get("previous_ticket_state"), part.where + ".previous_ticket_state", {})
            current = code_word(part.part.get("ticket_state"), part.where + ".ticket_state", {})
            if previous != current:
                found.update(events.previous_current("status", previous, current))
        elif part.kind == "ticket_attribute_updated_by_admin":
            data = part.part.get("updated_attribute_data")
            attribute = data.get("attribute") if isinstance(data, dict) else None
            value = data.get("value") if isinstance(data, dict) else None
            label = attribute.get("label") if isinstance(attribute, dict) else None
            if isinstance(label, str) and isinstance(value, dict):
                found.setdefault("custom_fields", {})[label] = {"previous": value.get("previous"),
                                                                 "current": value.get("label")}
    return found or None


def _is_message(part: Part, topic: str) -> bool:
    if part.part.get("redacted") is True or part.part.get("body") in (None, ""):
        return False
    return part.kind not in RECORDS or (topic == OPERATOR_REPLIED and part.kind == "channel_and_reply_time_expectation")


def _author(value: Any, where: str, known: Mapping[str, people.Person]) -> str | None:
    """Who wrote a part: its name or e-mail, else what the body says elsewhere about its
    id (a 1.x opening message names its author by id alone), else the id."""
    if not isinstance(value, dict):
        return None
    person = people.from_object(value, where)
    found = known.get(person.id or "")
    return person.name or person.email or (found.name or found.email if found else None) or person.id
