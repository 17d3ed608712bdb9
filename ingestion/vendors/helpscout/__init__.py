"""Help Scout: Mailbox webhooks (Manage > Apps > Webhooks, or the Mailbox API's /v2/webhooks).

Vendor quirks that shape this module:
- Every call is signed: `X-HelpScout-Signature` = base64(HMAC-SHA1(secret, raw body)).
  Help Scout takes secrets of at most 40 characters (its docs' example has 10);
  production refuses fewer than 16 here, so pick 32-40 random characters.
- The event is named only in the `X-HelpScout-Event` header (`convo.created`,
  `convo.status`, `convo.customer.reply.created`, ...). The body's `type` is the
  conversation's channel (email, chat, phone), not the event. Events that are not about a
  conversation (`customer.*`, `satisfaction.ratings`, `beacon.chat.*`, `tag.*`,
  `message.survey.response.received`) and the `helpscout.test` ping are answered `ignored`.
- Every `convo.*` body is the whole conversation (the Mailbox API v2 object: `id`,
  `number`, `status` active/pending/closed/spam, `mailboxId`, `assignee`,
  `primaryCustomer`, tag objects, `customFields` with option ids in `value` and labels
  in `text`, `createdAt`, `userUpdatedAt`, threads in `_embedded.threads`). Relays and
  older integrations send the legacy object instead (`owner`, `mailbox{id,name}`,
  `customer`, `modifiedAt`, tags as strings, `threads` as an array; in v2 `threads` is a
  count). `convo.deleted` sends only `{"id"}`.
- There is no diff: which thread is new is not marked. A reply or note event's comment is
  the newest thread of its kind (a note is private); a created conversation's is its
  first message. Other events (assigned, status, tags...) carry no comment.
- `convo.assigned` for a conversation now assigned to nobody ("Anyone") has no assignee
  at all in its body: there, and only there, absence means unassigned. Likewise a
  `convo.tags` body without tags has none left.
- A conversation's `userUpdatedAt` does not move when a customer replies, so the event's
  time is the latest of it, `closedAt` and the newest thread's `createdAt`: that keeps a
  late retry of an older event from overwriting a newer state.
- No delivery id: a redelivery is recognised by its body and event name (two events
  fired for one action share a body but not a name). No account either: the URL's
  last segment names the source (ingestion/sources.py).
- The signature covers the body, not `X-HelpScout-Event`. So the header must agree with
  the body, or the delivery is refused with 422 (and quarantined, being authentic):
  `convo.deleted` comes with the deleted conversation's id alone (`{"id": 291938}`, no
  other key) or a conversation whose `state` is `deleted`; every other `convo.*` event
  with a conversation (one of its subject, status, threads, mailbox, number or preview).
  A captured conversation, customer or rating re-sent as `convo.deleted` therefore
  deletes nothing, and an id alone re-sent as `convo.status` updates nothing. What no
  check can tell apart: another `{"id": N}` body (a `customer.deleted`) re-sent as
  `convo.deleted` names conversation N just as a genuine deletion does; Help Scout signs
  no more than the body, so that replay is beyond what its signature proves. Other event names (customers,
  ratings, the test ping) are answered `ignored` whatever the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...errors import InvalidField
from ...normalize import comments, events
from ...normalize.keys import Keys
from ...normalize.ticket_fields import Vocabulary, recognise
from ...normalize.values import optional_id, ticket_id, timestamp
from ...tickets import Comment, Deletion, TicketEvent
from ...vendor import Vendor, hmac_header

NAME = "helpscout"
EVENT_HEADER = "X-HelpScout-Event"
#: Events about a conversation: `convo.*` (and `convo`, which Help Scout's PHP SDK tests use).
TICKET_EVENT_FAMILY = "convo"
#: `type` is the channel (email, chat, phone), never the ticket's type.
WORDS = Vocabulary(type_key=False)
#: Which threads an event's comment comes from; None = the event carries no comment.
COMMENT_THREADS: dict[str, tuple[str, ...]] = {
    "convo.customer.reply.created": ("customer", "chat", "phone"),
    "convo.agent.reply.created": ("reply", "message", "chat", "phone"),
    "convo.note.created": ("note",),
}
CREATED_EVENTS = ("convo.created", "convo.ai-answers.created")
#: Threads that are messages between people (not `lineitem`, Help Scout's activity log).
MESSAGE_THREADS = ("customer", "message", "reply", "note", "chat", "phone", "forwardparent", "forwardchild")
#: Keys that make a header-less body (a relay that dropped the header) a conversation.
CONVERSATION_KEYS = ("subject", "status", "threads", "embedded", "mailbox", "mailboxid", "number", "preview")
#: What makes a body a conversation for the event header to agree with (`_embedded` is
#: not enough: a customer has one too).
CONVERSATION_CONTENT = ("subject", "status", "threads", "mailbox", "mailboxid", "number", "preview")
DELETED_EVENT = "convo.deleted"
ID = ("conversationid", "id")
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def normalize(payload: Mapping[str, Any], headers: Mapping[str, str] | None = None,
              account: str | None = None) -> TicketEvent | None:
    headers = headers or {}
    event_name = (headers.get(EVENT_HEADER) or "").strip()
    keys = Keys(payload)
    if not event_name:
        if not keys.has(CONVERSATION_KEYS):
            raise InvalidField(EVENT_HEADER, "header is missing and the body is not a conversation")
        event_name = events.SNAPSHOT
    elif event_name.split(".", 1)[0] != TICKET_EVENT_FAMILY:
        return None
    else:
        _check_agreement(event_name, payload, keys)
    found = keys.find(ID)
    external_id = ticket_id(found[1] if found else None, found[0] if found else "id")
    fields = recognise(keys, WORDS)
    mailbox = keys.find(("mailbox", "mailboxid"))
    if mailbox is not None:
        fields["group"] = _mailbox(mailbox[1], mailbox[0])
    threads = _threads(payload)
    _implied_by_event(event_name, fields)
    happened = _latest(fields.get("vendor_updated_at"), timestamp(payload.get("closedAt"), "closedAt"),
                       *(thread[0] for thread in threads))
    if happened is not None:
        fields["vendor_updated_at"] = happened
    state = keys.find(("state",))  # the v2 object's draft | published | deleted
    return TicketEvent(
        vendor=NAME, account=account or "", external_id=external_id, fields=fields,
        event_type=event_name[:events.MAX_NAME], comment=_comment(event_name, threads),
        deletion=events.deletion(event_name) or (Deletion.SOFT if state and state[1] == "deleted" else None),
    )


def _check_agreement(event_name: str, payload: Mapping[str, Any], keys: Keys) -> None:
    """The unsigned event header against the signed body (see the module docstring)."""
    conversation = keys.has(CONVERSATION_CONTENT)
    if event_name == DELETED_EVENT:
        state = keys.find(("state",))
        id_alone = set(payload) == {"id"}
        if not (id_alone or (conversation and state is not None and state[1] == "deleted")):
            raise InvalidField(EVENT_HEADER, f"says {DELETED_EVENT}, but the body is neither a conversation id alone "
                                             "nor a deleted conversation")
    elif not conversation:
        raise InvalidField(EVENT_HEADER, f"says {event_name[:events.MAX_NAME]}, but the body is not a conversation")


def _mailbox(value: Any, field: str) -> str | None:
    """The mailbox is the conversation's group: its name (legacy object) or its id (v2)."""
    if isinstance(value, dict):
        inner = Keys(value, field + ".").find(("name", "id"))
        return optional_id(inner[1], inner[0]) if inner else None
    return optional_id(value, field)


def _implied_by_event(event_name: str, fields: dict[str, Any]) -> None:
    """What the event says by leaving something out (see the module docstring)."""
    if event_name == "convo.assigned" and not any(name.startswith("assignee_") for name in fields):
        fields.update(assignee_name=None, assignee_email=None, assignee_id=None)
    if event_name == "convo.tags" and "tags" not in fields:
        fields["tags"] = ()


def _threads(payload: Mapping[str, Any]) -> list[tuple[datetime | None, int, Mapping[str, Any], str]]:
    """(createdAt, position, thread, where) for each thread object: `_embedded.threads` (v2) or
    `threads` when it is an array (legacy and relays; in v2 it is a count)."""
    embedded = payload.get("_embedded")
    listed = embedded.get("threads") if isinstance(embedded, dict) else None
    where = "_embedded.threads"
    if not isinstance(listed, list):
        listed, where = payload.get("threads"), "threads"
    if not isinstance(listed, list):
        return []
    found = []
    for position, thread in enumerate(listed):
        if isinstance(thread, dict):
            at = f"{where}[{position}]"
            found.append((timestamp(thread.get("createdAt"), at + ".createdAt"), position, thread, at))
    return found


def _latest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def _comment(event_name: str, threads: list) -> Comment | None:
    """The thread the event is about: the newest of its kind for a reply or a note, the
    first message for a created conversation. Threads are listed newest first, so the
    position breaks ties between equal (or missing) times."""
    if event_name in CREATED_EVENTS:
        kinds, pick = MESSAGE_THREADS, min
    elif event_name in COMMENT_THREADS:
        kinds, pick = COMMENT_THREADS[event_name], max
    else:
        return None
    candidates = [found for found in threads if _kind(found[2]) in kinds and found[2].get("state") != "draft"]
    if not candidates and event_name not in CREATED_EVENTS:  # a relay that renamed the types
        candidates = [found for found in threads if _kind(found[2]) != "lineitem"]
    if not candidates:
        return None
    _, _, thread, where = pick(candidates, key=lambda found: (found[0] or _EARLIEST, -found[1]))
    comment = comments.parse(thread, where)
    if comment is None:
        return None
    return Comment(comment.body, comment.author, _kind(thread) != "note")


def _kind(thread: Mapping[str, Any]) -> str:
    kind = thread.get("type")
    return kind.lower() if isinstance(kind, str) else ""


VENDOR = Vendor(
    name=NAME,
    title="Help Scout",
    summary="A Help Scout Mailbox webhook (the event named in X-HelpScout-Event)",
    normalize=normalize,
    credentials=(
        hmac_header("HELPSCOUT_WEBHOOK_SECRET", "X-HelpScout-Signature", digest="sha1", encoding="base64"),
    ),
    folder=Path(__file__).parent,
    event_header=EVENT_HEADER,
)
