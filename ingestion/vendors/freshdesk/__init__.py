"""Freshdesk: webhooks are an action of automation rules; apps relay product events.

Vendor quirks that shape this module:
- Automation rules do not sign requests. The native protection is HTTP Basic
  ("Requires authentication" in the rule); the HMAC header is for relays or apps that
  sign on Freshdesk's behalf.
- Bodies arrive as the rule's "Simple" content `{"freshdesk_webhook": {...}}` (keys built
  from placeholders: `ticket_subject`, `ticket_cf_<name>`, `ticket_contact_email`,
  status and priority as words, `triggered_event` as not-quite-JSON
  "{status:{from:4,to:6}}"), as admin-written JSON (nested under `ticket` or flat), as the
  API's ticket object (numeric status and priority), and as Freshworks app events
  relayed by an app (`{"event": "onTicketUpdate", "data": {"ticket": {...}}}`, whose
  `changes` pairs are newer than the snapshot beside them).
- Status 6 and 7 are account-specific; by default "waiting on customer" and "waiting on
  third party" (FRESHDESK_STATUS_NAMES overrides), so the word placeholders and the
  numeric codes store one word.
- No delivery id is sent, and failed calls are retried 5, 30 and 60 minutes later, so a
  redelivery is recognised by its body and old versions arrive late (stale).
- The account (a Freshdesk domain) is only known from the webhook URL's optional last
  segment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ...normalize import bodies, comments, events
from ...normalize.keys import Keys
from ...normalize.ticket_fields import Vocabulary, find_id, recognise
from ...normalize.values import code_word, object_at, optional_object, ticket_id, timestamp
from ...tickets import Comment, Deletion, TicketEvent
from ...vendor import Vendor, basic_auth, hmac_header
from .export import EXPORT

NAME = "freshdesk"
STATUS_CODES = {2: "open", 3: "pending", 4: "resolved", 5: "closed", 6: "waiting on customer",
                7: "waiting on third party"}
PRIORITY_CODES = {1: "low", 2: "medium", 3: "high", 4: "urgent"}
#: Freshworks product events about tickets; other events (onContactCreate...) are ignored.
TICKET_EVENT_PREFIXES = ("onTicket", "onConversation")
#: `changes` keys of product events -> our field names.
CHANGED_FIELDS = {"status": "status", "priority": "priority", "group_id": "group", "responder_id": "assignee_id",
                  "ticket_type": "type", "type": "type", "tags": "tags", "subject": "subject"}
_TRIGGERED_CHANGE = re.compile(r"^\{\s*(\w+)\s*:\s*\{\s*from\s*:\s*([^,}]*),\s*to\s*:\s*([^}]*)\}\s*\}$")
_TRIGGERED_ACTION = re.compile(r"^\{\s*(\w+)\s*:\s*([\w.-]*)\s*\}$")
_STRIP = ("fd", "freshdesk")


def vocabulary(status_names: Mapping[int, str] | None = None) -> Vocabulary:
    return Vocabulary(status_codes={**STATUS_CODES, **(status_names or {})}, priority_codes=PRIORITY_CODES)


def normalize(payload: Mapping[str, Any], headers: Mapping[str, str] | None = None, account: str | None = None,
              status_names: Mapping[int, str] | None = None) -> TicketEvent | None:
    words = vocabulary(status_names)
    data = payload.get("data")
    if isinstance(data, dict) and ("ticket" in data or "conversation" in data) \
            or isinstance(payload.get("event"), str) and payload["event"].startswith("on") and isinstance(data, dict):
        return _product_event(payload, account or "", words)
    reading = bodies.read(payload, words, _STRIP)
    event_type, changes, comment = _triggered(reading.keys, reading.comment, words)
    event_type = event_type or reading.event_name or events.derived(comment)
    return TicketEvent(
        vendor=NAME, account=account or "", external_id=reading.external_id,
        fields=_with_stated_change(reading.fields, changes),
        event_type=event_type, comment=comment, changes=changes or reading.changes,
        deletion=events.deletion(event_type),  # {ticket_action:deleted}, an admin's "ticket_deleted"
    )


def _triggered(keys: Keys, comment: Comment | None, words: Vocabulary):
    """Freshdesk's `triggered_event`: "{status:{from:4,to:6}}", "{ticket_action:created}",
    "{note_type:private}" (not JSON). Returns (event type, changes, comment)."""
    found = keys.find(("triggeredevent",))
    if found is None or not isinstance(found[1], str):
        return None, None, comment
    raw = found[1].strip()
    change = _TRIGGERED_CHANGE.match(raw)
    if change:
        name, old, new = change.group(1), change.group(2).strip(), change.group(3).strip()
        codes = {"status": words.status_codes, "priority": words.priority_codes}.get(name)
        if codes is not None:
            old, new = code_word(old, found[0], codes), code_word(new, found[0], codes)
        return f"ticket.{name}_changed", events.previous_current(name, old, new), comment
    action = _TRIGGERED_ACTION.match(raw)
    if action:
        key, value = action.group(1), action.group(2)
        if key == "note_type":
            public = value == "public"
            stated = comments.with_visibility(keys, public)
            if stated is not None:  # the note itself, though the other latest comment came first
                comment = stated
            elif comment is not None and comment.public is None:
                comment = Comment(comment.body, comment.author, public)
            return "ticket.note_added", None, comment
        if key == "ticket_action":
            return f"ticket.{value}", None, comment
        if key in ("deleted", "trashed") and value.lower() in ("true", "false"):  # {deleted:true}
            return ("ticket.deleted" if value.lower() == "true" else "ticket.restored"), None, comment
    return None, None, comment


def _with_stated_change(fields: Mapping[str, Any], changes: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The status or priority a `{status:{from:2,to:4}}` trigger says the ticket now has,
    where the body does not carry the field itself: a rule whose body is the id and
    `{{triggered_event}}` sends the new value nowhere else. A field the body carries wins
    (it is the ticket as the rule rendered it)."""
    stated = {name: change["current"] for name, change in (changes or {}).items()
              if name in ("status", "priority") and name not in fields}
    return {**fields, **stated} if stated else fields


def _product_event(payload: Mapping[str, Any], account: str, words: Vocabulary) -> TicketEvent | None:
    """A Freshworks app event: `{"event": "onTicketUpdate", "data": {"ticket": ...}}`."""
    name = payload.get("event") if isinstance(payload.get("event"), str) else None
    if name is not None and not name.startswith(TICKET_EVENT_PREFIXES):
        return None
    data = payload["data"]
    conversation = optional_object(data, "conversation", "data.")
    if conversation is not None:
        keys = Keys(conversation, "data.conversation.")
        found = keys.find(("ticketid",))
        body = keys.find(("bodytext", "body"))
        private = conversation.get("private")
        actor = optional_object(data, "actor", "data.")
        comment = comments.parse({"body": body[1] if body else None, "author": actor,
                                  "private": private if isinstance(private, bool) else None}, "data.conversation")
        return TicketEvent(vendor=NAME, account=account, event_type=name or events.derived(comment),
                           comment=comment,
                           external_id=ticket_id(found[1] if found else None, "data.conversation.ticket_id"))
    ticket = object_at(data, "ticket", "data.")
    keys = Keys(ticket, "data.ticket.")
    fields = recognise(keys, words)
    requester = optional_object(data, "requester", "data.")
    if requester is not None:  # the contact, beside the ticket
        person = recognise(Keys({"requester": requester}, "data."), words)
        fields.update({k: v for k, v in person.items() if k.startswith("requester_")})
    changes = events.generic_changes(keys)
    for field, change in (changes or {}).items():
        ours = CHANGED_FIELDS.get(field)
        if ours in ("status", "priority"):
            codes = words.status_codes if ours == "status" else words.priority_codes
            where = f"data.ticket.changes.{field}"
            change["previous"] = code_word(change["previous"], where, codes)
            change["current"] = code_word(change["current"], where, codes)
        if ours is not None:  # the change is newer than the snapshot beside it
            fields.update(recognise(Keys({ours: change["current"]}, "data.ticket.changes."), words))
    # The event's own time orders it better than the snapshot's updated_at.
    happened = timestamp(payload.get("timestamp"), "timestamp")
    if happened is not None and (fields.get("vendor_updated_at") is None or happened > fields["vendor_updated_at"]):
        fields["vendor_updated_at"] = happened
    found = find_id(keys)
    return TicketEvent(vendor=NAME, account=account, event_type=name or events.SNAPSHOT, fields=fields,
                       changes=changes, external_id=ticket_id(found[1] if found else None, "data.ticket.id"),
                       deletion=_product_deletion(name, changes))


def _product_deletion(name: str | None, changes: Mapping[str, Any] | None) -> Deletion | None:
    """onTicketDelete fires when a ticket is deleted forever; moving it to the trash and
    back is an onTicketUpdate whose `deleted` flag changed."""
    if name == "onTicketDelete":
        return Deletion.PERMANENT
    change = (changes or {}).get("deleted")
    flag = change.get("current") if isinstance(change, Mapping) else None
    if isinstance(flag, bool):
        return Deletion.SOFT if flag else Deletion.RESTORED
    return None


class FreshdeskSettings(Protocol):
    #: FRESHDESK_STATUS_NAMES: what an account calls its own status codes (6, 7, 8...).
    freshdesk_status_names: Mapping[int, str]


def normalizer(settings: FreshdeskSettings):
    """The normalizer with the account's own status names."""
    names = settings.freshdesk_status_names

    def run(payload: Mapping[str, Any], headers: Mapping[str, str], account: str | None) -> TicketEvent | None:
        return normalize(payload, headers, account, names)

    return run


VENDOR = Vendor(
    name=NAME,
    title="Freshdesk",
    summary="A Freshdesk automation-rule webhook, or a Freshworks app event a signing app relays",
    normalize=normalize,
    tuned=normalizer,
    credentials=(
        hmac_header("FRESHDESK_WEBHOOK_SECRET", "X-Freshdesk-Signature"),  # relays and apps that sign
        basic_auth("FRESHDESK_WEBHOOK_AUTH"),  # what automation rules send
    ),
    folder=Path(__file__).parent,
    export=EXPORT,
)
