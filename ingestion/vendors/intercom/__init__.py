"""Intercom: webhook subscriptions of an Intercom app (Developer Hub > your app > Webhooks).

Vendor facts that shape this folder (sources: tests/vendors/intercom/fixtures/SOURCES.md;
[WM] = developers.intercom.com/docs/references/2.5/webhooks/webhook-models, [CL] = the
"Ticket Webhooks" table of developers.intercom.com/intercom-api-reference/reference/changelog,
[TK] = developers.intercom.com/docs/references/2.15/rest-api/api.intercom.io/tickets/ticket):
- Every notification is signed: `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the raw body
  keyed with the app's client secret (apps whose subscription was made through the old
  REST API chose a `hub_secret` instead) [WM]. No timestamp is signed or sent, so a
  replay is recognised by the notification id only. The endpoint "must be able to
  receive a HEAD request, which we use to validate the URL"
  (developers.intercom.com/docs/webhooks/setting-up-webhooks): HEAD is answered 200.
- The body is the envelope `{type: notification_event, app_id, topic, id: "notif_...",
  created_at, first_sent_at, delivery_attempts, data: {item}}` [WM]. `topic` names the
  event (no header does); `id` is the notification's, the same on its one retry, and null
  on `ping`. `created_at` (unix seconds) is when the event happened: the item's
  `updated_at` may be older, so the envelope's time is the event's `vendor_updated_at`.
- `app_id` is the workspace: one app (one secret) is installed on many workspaces, so it
  is the account the delivery claims (as Zendesk's `account_id`). A source of its own is
  named by the workspace id; the bare URL takes each delivery's workspace as its account.
- Tickets (`ticket.*`) and conversations (`conversation.*`, `conversation_part.*`) are
  two objects whose ids come from one number sequence, and a conversation can become a
  ticket: the external id says which, `ticket:<id>` or `conversation:<id>`. Every other
  topic (`ping`, `user.*`, `contact.*`, `company.*`, `visitor.*`, `admin.*`, ...) is
  answered `ignored`.
- Three ticket shapes: the item is the ticket (`ticket.created`, `ticket.state.updated`,
  `ticket.closed`); a `ticket_ticket_part` holding `ticket` and the `ticket_part` that
  fired (assignments, notes, replies, `ticket.attribute.updated`); and, for
  `ticket.contact.attached/detached`, an untyped `{ticket, contact}` whose ticket carries
  `state`, `ticket_type` as a string and `custom_attributes` as `{name: {value, type}}`.
  A ticket's `id` is the API id [TK]; `ticket_id` is the number the inbox shows (kept in
  custom_fields as `ticket_id`, never the key). Its title and description are the
  `_default_title_` / `_default_description_` attributes; the rest are its custom fields.
  `conversation.contact.attached/detached` carry yet another: `{conversation: {parts,
  model}, contact}`, the conversation's id at `conversation.model.id` (recorded).
- Status: a ticket's `ticket_state` is an object (its `category`: submitted, in_progress,
  waiting_on_customer, resolved) or, in older versions, the category itself as a string;
  labels are the workspace's own. A conversation's `state` is open, closed or snoozed;
  only conversations have a `priority` (priority, not_priority). Words are stored as
  Intercom writes them.
- People: a ticket names its contacts by id only; the requester's e-mail and name come
  from a part whose author is that contact, and the assignee's from a part the assigned
  admin wrote. `admin_assignee_id` is a string on tickets
  ("0" = nobody) and a number or null on conversations; `team_assignee_id` is the group.
  Legacy (API 1.x) conversations send `user` and `assignee` objects instead.
- Comments: see parts.py. `conversation.deleted` sends `{type: conversation,
  conversation_id}` only; no `ticket.deleted` topic is documented [CL], one is read the
  same way (by `id`) should it come. A deleted conversation is marked deleted, not
  forgotten: no source says Intercom's deletion cannot be undone.
- Reconciliation: export.py (the ticket search, by `updated_at`, with a Bearer token).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import InvalidField
from ...normalize import events
from ...normalize.values import object_at, optional_object, storable, ticket_id, timestamp
from ...tickets import Deletion, TicketEvent
from ...vendor import Vendor, hmac_header
from . import items, parts
from .export import EXPORT

NAME = "intercom"
TICKET, CONVERSATION = items.TICKET, items.CONVERSATION
#: A topic's first word -> the object it is about; other topics are not about a ticket.
FAMILIES = {"ticket": TICKET, "conversation": CONVERSATION, "conversation_part": CONVERSATION}
#: `data.item.type` -> the object the item holds.
ITEM_TYPES = {"ticket": TICKET, "ticket_ticket_part": TICKET, "conversation": CONVERSATION}
#: Deletions send the id alone, under these keys (in this order).
DELETED = {"conversation.deleted": ("conversation_id", "id"), "ticket.deleted": ("id",)}
#: The notification id: Intercom's `notif_<uuid>`, kept to 200 characters like every id.
MAX_EVENT_ID = 200
_WORKSPACE = re.compile(r"[A-Za-z0-9]{1,64}")


def normalize(payload: Mapping[str, Any], headers: Mapping[str, str] | None = None,
              account: str | None = None) -> TicketEvent | None:
    account = account or next(iter(claimed_accounts(payload, {})), "")
    topic = payload.get("topic")
    if topic is None and payload.get("type") in (TICKET, CONVERSATION):
        # The item alone, as relays (activepieces) hand it on: a snapshot of the object.
        return _event(payload, "", payload["type"], events.SNAPSHOT, account, None, None)
    if not isinstance(topic, str) or not topic.strip():
        raise InvalidField("topic", "is missing: an Intercom notification names its topic" if topic is None
                           else "must be a non-empty string")
    topic = topic.strip()[:events.MAX_NAME]
    family = FAMILIES.get(topic.split(".", 1)[0])
    if family is None:
        return None
    item = object_at(object_at(payload, "data"), "item", "data.")
    _check_item_type(item, family, topic)
    moment = timestamp(payload.get("created_at"), "created_at")
    if topic in DELETED:
        return _deletion(item, family, topic, account, moment, _notification_id(payload.get("id")))
    return _event(item, "data.item.", family, topic, account, moment, _notification_id(payload.get("id")))


def _check_item_type(item: Mapping[str, Any], family: str, topic: str) -> None:
    """The topic's object and the item's must agree: a conversation's id stored as a
    ticket's would name another ticket. An untyped item (`ticket.contact.*`) is the topic's."""
    declared = item.get("type")
    if declared is not None and ITEM_TYPES.get(declared if isinstance(declared, str) else "") != family:
        raise InvalidField("data.item.type", f"is {str(declared)[:40]!r}: the topic {topic} is about a {family}")


def _event(item: Mapping[str, Any], where: str, family: str, topic: str, account: str,
           moment: Any, event_id: str | None) -> TicketEvent:
    if family == TICKET and "ticket" in item:  # a ticket_ticket_part, or ticket.contact.*'s {ticket, contact}
        obj, obj_where = object_at(item, "ticket", where), f"{where}ticket."
        trigger = optional_object(item, "ticket_part", where)
    elif family != TICKET and "id" not in item and "conversation" in item:
        # conversation.contact.attached/detached: {conversation: {parts, model}, contact}, the
        # conversation's own record under `model` (Zulip's 2026 captures). Its parts are
        # another shape (no author object) and say nothing the ticket models: the event is
        # recorded on the conversation's ticket.
        obj_where = f"{where}conversation.model."
        obj = object_at(object_at(item, "conversation", where), "model", f"{where}conversation.")
        trigger = None
    else:
        obj, obj_where, trigger = item, where, None
    external_id = f"{family}:{ticket_id(obj.get('id'), obj_where + 'id')}"
    fields = (items.ticket_fields if family == TICKET else items.conversation_fields)(obj, obj_where)
    listed = parts.listed(obj, f"{family}_parts", obj_where)
    updated_at = timestamp(obj.get("updated_at"), obj_where + "updated_at")
    if topic == events.SNAPSHOT:  # an object, not an event: no part is its news
        fired = []
    elif trigger is not None:
        fired = [parts.Part(trigger, where + "ticket_part", len(listed))]
    else:
        fired = parts.fired(family, listed, updated_at)
    known = items.directory(obj, obj_where, [*listed, *fired])
    items.name_people(fields, known)
    if (moment or updated_at) is not None:
        fields["vendor_updated_at"] = moment or updated_at
    changes = parts.changes(fired)
    added = items.tags_added(obj, obj_where) if topic != events.SNAPSHOT else ()
    if added:
        changes = {**(changes or {}), "tags": {"added": list(added)}}
    comment = parts.comment(topic, fired, known)
    if comment is None and topic in parts.CREATED_TOPICS:
        comment = parts.opening(*items.opening(obj, obj_where), known)
    return TicketEvent(vendor=NAME, account=account, external_id=external_id, fields=fields, event_type=topic,
                       vendor_event_id=event_id, comment=comment, changes=changes)


def _deletion(item: Mapping[str, Any], family: str, topic: str, account: str, moment: Any,
              event_id: str | None) -> TicketEvent:
    keys = DELETED[topic]
    key = next((key for key in keys if item.get(key) not in (None, "")), keys[0])
    fields = {"vendor_updated_at": moment} if moment is not None else {}
    return TicketEvent(vendor=NAME, account=account, external_id=f"{family}:{ticket_id(item.get(key), 'data.item.' + key)}",
                       fields=fields, event_type=topic, vendor_event_id=event_id, deletion=Deletion.SOFT)


def _notification_id(value: Any) -> str | None:
    """`notif_...`, signed with the body. Null (ping), or a value PostgreSQL cannot store,
    leaves the delivery to be recognised by its body instead."""
    if not isinstance(value, str) or not storable(value):
        return None
    return value.strip()[:MAX_EVENT_ID] or None


def claimed_accounts(payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, ...]:
    """The workspace the notification names (`app_id`, in the signed body)."""
    app_id = payload.get("app_id")
    if isinstance(app_id, str) and _WORKSPACE.fullmatch(app_id.strip()):
        return (app_id.strip(),)
    return ()


VENDOR = Vendor(
    name=NAME,
    title="Intercom",
    summary="An Intercom webhook notification (the event named by its topic)",
    normalize=normalize,
    credentials=(hmac_header("INTERCOM_WEBHOOK_SECRET", "X-Hub-Signature", "sha1", "hex", prefix="sha1="),),
    folder=Path(__file__).parent,
    claimed_accounts=claimed_accounts,
    answers_head=True,
    export=EXPORT,
)
