"""Zendesk: event-subscription webhooks and trigger/automation webhooks.

Vendor quirks that shape this module:
- Every webhook is signed: base64(HMAC-SHA256(signing secret, timestamp + raw body)).
  Webhooks may also use Basic auth.
- Event subscriptions send `{"type": "zen:event-type:ticket.comment_added", "id": <event
  id>, "account_id", "subject": "zen:ticket:35436", "detail": {...ticket...}, "event":
  {...}}`: the comment in `event.comment`, changes as `event.previous` / `event.current`
  (named by the type), tags as `tags_added` / `tags_removed`. Ids are strings; status and
  priority arrive upper-case. Events about users, organizations and so on are authentic
  but not ours: they are answered `ignored`. Minimal bodies may carry only `detail.id`.
- Trigger bodies are written by the admin with placeholders, so every value is a
  string, dates are human-formatted ("February 3, 2025", stored as null) or to the
  minute ("2024-03-14T16:02Z"), tags are one space-separated string, a person is
  "Jane Doe <jane@example.com>" ("  <>" when unassigned), the type is "Ticket" when
  unset and "On-hold" is the status `hold` is elsewhere. Keys are the admin's choice:
  `ticket_id`, `ticketId`, `zd_ticket_id`...
- Messaging events (`zen:event-type:messaging_ticket.message_added`, the only one
  documented: developer.zendesk.com/api-reference/webhooks/event-types/messaging-events)
  carry no ticket fields: `detail` holds only `id`, the ticket's. They are read as events
  about that ticket, because the rest is usable: `event.message.body` is a chat message
  of the ticket's conversation (the end user sees it, so the comment is public),
  `event.actor` its author (`end_user`, `agent`, `trigger`, `system`), `id` the delivery.
  Their `time` is not taken as the ticket's update time: it is to the nanosecond while
  ticket events' `detail.updated_at` is to the second, so a status change in the same
  second would look older and be lost. A messaging event whose ticket id is missing or
  unusable names no ticket: `ignored`, never quarantined.
- Sunshine Conversations (Zendesk messaging's platform, formerly Smooch) posts batches
  `{"app": {"id"}, "webhook": {"id", "version": "v2"}, "events": [{"id", "createdAt",
  "type": "conversation:message", "payload": {conversation, message}}]}` (v1 webhooks:
  `{"trigger": "message:appUser", "app": {"_id"}, "messages": [...]}`): they name
  conversations and users, never a ticket (developer.zendesk.com/documentation/
  conversations/messaging-platform/programmable-conversations/receiving-messages), so
  they are `ignored`. Sunshine signs nothing: it sends its webhook's secret as is in
  `X-API-Key`, which ZENDESK_SUNSHINE_SECRET (method `token` for a source) checks, in
  constant time like every secret. A batch is authentic with it or with any other of the
  source's Zendesk credentials; without any, 401.
- n8n's Zendesk Trigger node (packages/nodes-base/nodes/Zendesk/ZendeskTrigger.node.ts)
  creates a trigger whose webhook body is `{"<placeholder>": "{{<placeholder>}}"}` for
  each field chosen (only `{"ticket.id": "{{ticket.id}}"}` when none is): flat keys that
  are placeholder paths. The shared reading unflattens them (normalize/shapes.py), so
  they give what the same placeholders nested give.
- The delivery: the event's `id`, which the signature covers (it is in the body). The
  `X-Zendesk-Webhook-Invocation-Id` header is not signed: a captured request re-sent with
  a new one would be a "new" delivery. So a trigger body, which has no id, is recognised
  by its fingerprint within REDELIVERY_WINDOW (a re-send with the same signed timestamp
  and body is `already_exists`; one with an old timestamp fails the signature's window).
- The account: the source's (ingestion/sources.py). `X-Zendesk-Account-Id` and an event's
  `account_id` are what the delivery claims: they pick the account's source on the bare
  URL, and a claim that names another account than the source's is refused (403). A
  source named otherwise than by its account id (`/zendesk/acme`) is bound to the first
  id an authentic delivery names, and refuses any other from then on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import InvalidField
from ...normalize import bodies, comments, events
from ...normalize.keys import Keys
from ...normalize.ticket_fields import Vocabulary, find_id, recognise
from ...normalize.values import code_word, optional_object, storable, ticket_id
from ...tickets import Comment, Deletion, TicketEvent
from ...vendor import Vendor, basic_auth, header_token, timestamped_signature
from .export import EXPORT

NAME = "zendesk"
EVENT_PREFIX = "zen:event-type:"
TICKET_EVENT_PREFIX = "zen:event-type:ticket."
MESSAGING_EVENT_PREFIX = "zen:event-type:messaging_ticket."
WORDS = Vocabulary(synonyms={"on-hold": "hold", "on hold": "hold"})
ACCOUNT_HEADER = "X-Zendesk-Account-Id"
_STRIP = ("zd", "zendesk")
#: The ticket events that delete or restore (developer.zendesk.com: Ticket events).
DELETIONS = {"soft_deleted": Deletion.SOFT, "permanently_deleted": Deletion.PERMANENT, "undeleted": Deletion.RESTORED}


def _is_event(payload: Mapping[str, Any]) -> bool:
    event_type = payload.get("type")
    return isinstance(event_type, str) and event_type.startswith(EVENT_PREFIX)


def normalize(payload: Mapping[str, Any], headers: Mapping[str, str] | None = None,
              account: str | None = None) -> TicketEvent | None:
    headers = headers or {}
    if _is_event(payload):
        if payload["type"].startswith(TICKET_EVENT_PREFIX):
            return _subscription_event(payload, headers, account)
        if payload["type"].startswith(MESSAGING_EVENT_PREFIX):
            return _messaging_event(payload, headers, account)
        return None
    if _is_sunshine_batch(payload):
        return None
    reading = bodies.read(payload, WORDS, _STRIP)
    return TicketEvent(
        vendor=NAME, account=_account(account, headers, payload), external_id=reading.external_id,
        fields=reading.fields, event_type=reading.event_name or events.derived(reading.comment),
        vendor_event_id=None, comment=reading.comment, changes=reading.changes,
        deletion=events.deletion(reading.event_name),
    )


def _subscription_event(payload: Mapping[str, Any], headers: Mapping[str, str], account: str | None) -> TicketEvent:
    detail = optional_object(payload, "detail") or {}
    keys = Keys(detail, "detail.")
    found = find_id(keys)
    raw_id, field = (found[1], found[0]) if found else (_id_from_subject(payload.get("subject")), "detail.id")
    event = optional_object(payload, "event") or {}
    kind = payload["type"].removeprefix(TICKET_EVENT_PREFIX)
    comment_value = event.get("comment")
    comment = comments.parse(comment_value, "event.comment") if comment_value is not None else None
    return TicketEvent(
        vendor=NAME, account=_account(account, headers, payload), external_id=ticket_id(raw_id, field),
        fields=_with_changed_custom_field(recognise(keys, WORDS), kind, event), event_type=payload["type"],
        comment=comment,
        vendor_event_id=_delivery_id(payload.get("id")), changes=_changes(kind, event),
        deletion=DELETIONS.get(kind),
    )


def _messaging_event(payload: Mapping[str, Any], headers: Mapping[str, str], account: str | None) -> TicketEvent | None:
    """A chat message of a messaging ticket: the ticket's id, the event and its message
    (see the module docstring); None when it names no usable ticket."""
    detail = payload.get("detail")
    found = Keys(detail, "detail.").find(("id",)) if isinstance(detail, dict) else None
    try:
        external_id = ticket_id(found[1] if found else _id_from_subject(payload.get("subject")), "detail.id")
    except InvalidField:
        return None
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    return TicketEvent(
        vendor=NAME, account=_account(account, headers, payload), external_id=external_id, fields={},
        event_type=payload["type"], comment=_chat_message(event), vendor_event_id=_delivery_id(payload.get("id")),
    )


def _chat_message(event: Mapping[str, Any]) -> Comment | None:
    """`event.message.body` by `event.actor` (its name, else its id). A body that is not
    text PostgreSQL can hold is no comment (the event is still kept): never a 422."""
    message = event.get("message")
    body = message.get("body") if isinstance(message, dict) else None
    if not isinstance(body, str) or not body.strip() or not storable(body):
        return None
    actor = event.get("actor") if isinstance(event.get("actor"), dict) else {}
    names = (actor.get(key) for key in ("name", "id"))
    author = next((str(name) for name in names if isinstance(name, (str, int)) and not isinstance(name, bool)
                   and str(name).strip() and storable(str(name))), None)
    return Comment(body, author, True)


def _is_sunshine_batch(payload: Mapping[str, Any]) -> bool:
    """A Sunshine Conversations webhook: an `app` object with v2's `events` list or v1's
    `trigger` name (see the module docstring)."""
    return isinstance(payload.get("app"), dict) and (
        isinstance(payload.get("events"), list) or isinstance(payload.get("trigger"), str))


def _changes(kind: str, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """`ticket.status_changed` with `{previous, current}` -> {"status": {...}}; tags and
    custom fields have their own shapes."""
    if kind == "tags_changed":
        return {"tags": {"added": event.get("tags_added") or [], "removed": event.get("tags_removed") or []}}
    if kind == "custom_field_changed":
        definition = event.get("custom_field") if isinstance(event.get("custom_field"), dict) else {}
        name = str(definition.get("title") or definition.get("id") or "custom_field")
        value = {side: (event.get(side) or {}).get("value") if isinstance(event.get(side), dict) else event.get(side)
                 for side in ("previous", "current")}
        return {"custom_fields": {name: value}}
    if kind.endswith("_changed") and ("previous" in event or "current" in event):
        field, previous, current = kind.removesuffix("_changed"), event.get("previous"), event.get("current")
        if field in ("status", "priority"):  # "OPEN" in events, "open" everywhere else
            previous = code_word(previous, "event.previous", {}, WORDS.synonyms)
            current = code_word(current, "event.current", {}, WORDS.synonyms)
        return events.previous_current(field, previous, current)
    return None


def _with_changed_custom_field(fields: dict[str, Any], kind: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """`ticket.custom_field_changed`: its `current` value lands on the ticket, keyed by the
    field's id as the ticket API's `custom_fields: [{"id", "value"}]` are. The event's
    `detail` carries no custom fields, so the event is the only place the value arrives."""
    definition = event.get("custom_field")
    if kind != "custom_field_changed" or not isinstance(definition, dict) or "current" not in event:
        return fields
    key = definition.get("id")
    if isinstance(key, bool) or not isinstance(key, (str, int)) or not str(key).strip():
        return fields
    current = event["current"]
    value = current.get("value") if isinstance(current, dict) else current
    return {**fields, "custom_fields": {**fields.get("custom_fields", {}), str(key).strip(): value}}


def _id_from_subject(subject: Any) -> str | None:
    if isinstance(subject, str) and subject.startswith("zen:ticket:"):
        return subject.rpartition(":")[2]
    return None


def _delivery_id(event_id: Any) -> str | None:
    """The event id (signed, in the body). A value PostgreSQL could not store (NUL, a lone
    surrogate) is dropped: the body fingerprint identifies the delivery instead."""
    if isinstance(event_id, str) and event_id.strip() and storable(event_id):
        return event_id.strip()[:200]
    return None


def _account(from_path: str | None, headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    if from_path:
        return from_path
    claimed = claimed_accounts(payload, headers)
    return claimed[0] if claimed else ""


def is_account_id(account: str) -> bool:
    """Whether a source's account is written as Zendesk's account id (what the claims name):
    a positive 64-bit number in plain digits (no sign, no leading zero, at most 19)."""
    return 0 < len(account) <= 19 and account.isascii() and account.isdigit() and account[0] != "0"


def header_account(headers: Mapping[str, str]) -> str | None:
    """The account X-Zendesk-Account-Id names, readable before the body is; anything but
    an account id is no claim (nor an account of its own: `01234` or 5,000 digits)."""
    header = (headers.get(ACCOUNT_HEADER) or "").strip()
    return header if is_account_id(header) else None


def claimed_accounts(payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, ...]:
    """Every account the delivery names: X-Zendesk-Account-Id, then the body's
    `account_id` (an event subscription's). Neither is signed apart from the body, and
    the source decides the account: a name that disagrees is refused (sources.py)."""
    named = [header_account(headers)]
    account_id = payload.get("account_id")
    if isinstance(account_id, int) and not isinstance(account_id, bool):
        account_id = str(account_id)
    if isinstance(account_id, str) and is_account_id(account_id.strip()):
        named.append(account_id.strip())
    return tuple(dict.fromkeys(name for name in named if name))


#: Zendesk signs the test requests its webhook builder sends (before a webhook exists)
#: with this published secret. Anyone can sign with it.
PUBLIC_TEST_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="

VENDOR = Vendor(
    name=NAME,
    title="Zendesk",
    summary="A Zendesk event-subscription or trigger webhook",
    normalize=normalize,
    credentials=(
        timestamped_signature("ZENDESK_SIGNING_SECRET", "X-Zendesk-Webhook-Signature",
                              "X-Zendesk-Webhook-Signature-Timestamp"),  # every Zendesk webhook is signed
        # Basic (Zendesk's auth type basic_auth). Its first name, ZENDESK_WEBHOOK_SECRET,
        # read like every other vendor's *_WEBHOOK_SECRET as an HMAC key: still read.
        basic_auth("ZENDESK_WEBHOOK_AUTH", old_variable="ZENDESK_WEBHOOK_SECRET"),
        # Sunshine Conversations' webhook secret, sent as is (its batches are `ignored`).
        header_token("ZENDESK_SUNSHINE_SECRET", "X-API-Key"),
    ),
    folder=Path(__file__).parent,
    export=EXPORT,
    claimed_accounts=claimed_accounts,
    account_header=header_account,
    is_account_id=is_account_id,
    public_test_secrets=frozenset({PUBLIC_TEST_SECRET}),
)
