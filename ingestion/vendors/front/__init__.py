"""Front: application webhooks (an app's webhook feature) and rule webhooks (the Webhooks
integration, a rule's "Send to a Webhook" action). One source may take both at once.

Vendor quirks that shape this module (sources: [APPWH] dev.frontapp.com/docs/application-webhooks,
[RULEWH] dev.frontapp.com/docs/rule-webhooks, [WH1] dev.frontapp.com/docs/webhooks-1,
[EVT] dev.frontapp.com/reference/events, [OAS] frontapp/front-api-specs core-api/core-api.json
@f8f5386f, [COMM] community.front.com/developer-q-a-37/…-873 (a Front staff answer),
[ZULIP] zulip/zulip zerver/webhooks/front/view.py @b4152d1a, [SR] skillrecordings/support
apps/front/app/api/webhooks/front/route.ts @771a047c, [AE] api-evangelist/front
openapi/front-webhooks-asyncapi.yaml @53a84c00; the last two are third parties):
- Two signatures in one header, `X-Front-Signature`, both base64. Application webhooks:
  HMAC-SHA256 of `<X-Front-Request-Timestamp>:<raw body>` keyed with the app secret, the
  timestamp in Unix milliseconds [APPWH][COMM] (FRONT_APP_SECRET; the window is this
  service's WEBHOOK_TIMESTAMP_TOLERANCE: Front's page states none). Rule webhooks:
  HMAC-SHA1 of the raw body keyed with the integration's API secret, no timestamp [RULEWH]
  (FRONT_WEBHOOK_SECRET). The timestamped credential is declared first, so that an
  application call refused for its timestamp is answered with that reason, not with
  the SHA-1 comparison that could never have matched it.
- Application webhooks wrap the event: `{type, authorization: {id: "cmp_…"}, payload:
  {…event…}}` [APPWH][SR][AE]; rule webhooks send the Event itself [RULEWH]. Their
  envelope `type` may be an app-level name (`inbound_received`, `conversation_archived`,
  …: [SR][AE] only, not in Front's docs), so the event's own `type` wins where there is
  one, and APP_NAMES gives the others their Core meaning. The stored event type is the
  name as Front sent it.
- Saving an application webhook sends `{"type": "sync", …}` with an `X-Front-Challenge`
  header, signed [APPWH]: about no conversation, answered `ignored`, with the challenge
  echoed as [AE] says Front expects (`handshake`, at most 256 printable characters).
- The Event [OAS EventResponse]: `id` (`evt_…`, the vendor event id: the same event reached
  through a rule and through an app is one delivery), `type` (inbound, outbound,
  out_reply, forward, comment, mention, assign, unassign, tag, untag, archive, reopen,
  trash, restore, move, reminder, link_added, ticket_status_update, call_*, …),
  `emitted_at` (Unix seconds with fractions: the event's time, so a late retry of an
  older event never overwrites a newer state), `conversation`, `source {_meta.type,
  data}` (who or what did it: a teammate, a rule, an array of inboxes, or null for a
  mailbox provider), `target {_meta.type, data}` (absent for unassign, archive, reopen,
  trash, restore, reminder [EVT]).
- The conversation is the ticket: `conversation.id` (`cnv_…`; an older capture has `2x9c5v`,
  so the prefix is not required [ZULIP]). An event without a conversation names no
  ticket: answered `ignored`. Every other field may be missing: a rule webhook without
  "Send Full Event Data", and possibly an application webhook [SR], sends an event
  preview whose conversation, source and target carry ids and links only [EVT][WH1]: a
  delivery of its own (`<id>:preview`), a microsecond older than the full event.
- Status words as Front writes them: `status` is archived, assigned, unassigned or deleted
  [OAS] (real bodies also show `invisible`, a conversation being composed); with Ticketing
  on, `status_category` (open, waiting, resolved) is the ticket's status and wins. Front
  has no priority [OAS]. Tags are `conversation.tags[].name`; custom fields
  `conversation.custom_fields` (an object).
- People: the assignee is `conversation.assignee` (a teammate; null = unassigned). The
  requester is `conversation.recipient`, the conversation's main contact: its `handle`
  (an address, or a phone number or social handle, kept as the name), its `name`, and
  the contact id at the end of `_links.related.contact` (`crd_…`). The inbox is the
  group: the `inboxes` source of a message, or the target of a `move` (name, else id).
- Messages (inbound, outbound, out_reply, forward: target `message`) are public comments,
  written by `author` (a teammate) or, for an inbound message (author null), by the
  `recipients[role=from]` handle. Comments and mentions (target `comment`) are private.
- What an event implies: `assign`'s target is the new assignee, `unassign` leaves none (used
  when a preview's conversation does not say); `tag`/`untag` change the tags by the
  target tag (a change recorded when the conversation lists its tags). `trash` is a soft
  deletion, `restore` brings the conversation back [EVT]. `conversations_merged` is
  recorded on the surviving conversation only (its target's merged-away ids are not
  deleted here).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from ...errors import InvalidField
from ...normalize import comments, events, people
from ...normalize.keys import Keys
from ...normalize.ticket_fields import Vocabulary, recognise
from ...normalize.values import code_word, optional_id, optional_object, storable, text, ticket_id, timestamp
from ...tickets import Comment, Deletion, TicketEvent
from ...vendor import Vendor, hmac_header, timestamped_signature

NAME = "front"
#: The application-webhook validation request's type [APPWH].
VALIDATION = "sync"
#: Application-level envelope names ([SR][AE], not in Front's docs) -> the Core event type
#: whose meaning they carry. `assignee_changed` is left out: assign or unassign, it says not.
APP_NAMES = {
    "inbound_received": "inbound", "outbound_sent": "outbound", "new_comment_added": "comment",
    "conversation_archived": "archive", "conversation_reopened": "reopen", "conversation_deleted": "trash",
    "conversation_restored": "restore", "conversation_moved": "move", "tag_added": "tag", "tag_removed": "untag",
}
#: Events whose target is a message sent or received: public comments.
MESSAGES = ("inbound", "outbound", "out_reply", "forward")
#: Events whose target is an internal comment: private.
COMMENTS = ("comment", "mention")
DELETIONS = {"trash": Deletion.SOFT, "restore": Deletion.RESTORED}
#: `type` at the top of a conversation is not the ticket's type (Front has none).
WORDS = Vocabulary(type_key=False)


def normalize(payload: Mapping[str, Any], headers: Mapping[str, str] | None = None,
              account: str | None = None) -> TicketEvent | None:
    event, where, envelope_name = _unwrap(payload)
    if event is None:
        return None
    name = _name(event.get("type"), where + "type") or envelope_name
    if name is None:
        raise InvalidField(where + "type", "is missing: every Front event names its type")
    meaning = APP_NAMES.get(name, name)
    conversation = event.get("conversation")
    if conversation is None:  # not about a conversation
        return None
    if not isinstance(conversation, dict):
        raise InvalidField(where + "conversation", "must be a JSON object")
    at = where + "conversation."
    external_id = ticket_id(conversation.get("id"), at + "id")
    fields = recognise(Keys(conversation, at), WORDS)
    category = code_word(conversation.get("status_category"), at + "status_category", {})
    if category is not None:  # Ticketing on: the ticket's status
        fields["status"] = category
    if "assignee" in conversation and conversation["assignee"] is None:
        fields.update(assignee_name=None, assignee_email=None, assignee_id=None)
    _requester(conversation, at, fields)
    target = optional_object(event, "target", where)
    source = optional_object(event, "source", where)
    group = _inbox(target, where + "target") if meaning == "move" else None
    group = group or _inbox(source, where + "source")
    if group is not None:
        fields["group"] = group
    _implied(meaning, conversation, target, where, fields)
    preview = not PREVIEW_LACKS & conversation.keys()
    emitted = event.get("emitted_at")
    if emitted is not None:
        moment = timestamp(emitted, where + "emitted_at") \
            if isinstance(emitted, (int, float)) and not isinstance(emitted, bool) else None
        if moment is None:
            raise InvalidField(where + "emitted_at", "must be Unix seconds (a number)")
        fields["vendor_updated_at"] = moment - PREVIEW_OLDER if preview else moment  # (docstring: previews)
    return TicketEvent(
        vendor=NAME, account=account or "", external_id=external_id, fields=fields,
        event_type=name, vendor_event_id=_event_id(event.get("id"), preview),
        comment=_comment(meaning, target, where), changes=_tag_change(meaning, target, fields),
        deletion=DELETIONS.get(meaning),
    )


def _unwrap(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str, str | None]:
    """(the event, where it sits, the envelope's type): an application webhook's envelope
    is opened; a rule webhook's body is the event. No event: the validation request, or an
    envelope that carries none."""
    if "payload" not in payload and "authorization" not in payload:
        return payload, "", None
    envelope_name = _name(payload.get("type"), "type")
    inner = payload.get("payload")
    if envelope_name == VALIDATION or inner is None:
        return None, "", envelope_name
    if not isinstance(inner, dict):
        raise InvalidField("payload", "must be a JSON object (the event)")
    return inner, "payload.", envelope_name


def _name(value: Any, field: str) -> str | None:
    name = text(value, field)
    return name.strip()[:events.MAX_NAME] or None if name else None


PREVIEW_LACKS = frozenset({"status", "status_category"})  # (a full conversation says its status)
PREVIEW_OLDER = timedelta(microseconds=1)  # (emitted_at has milliseconds: after its event, a preview is stale)


def _event_id(value: Any, preview: bool = False) -> str | None:
    """The event id (`evt_…`, signed in the body; else the body's fingerprint is). A
    preview is another delivery than the event's full data (`<id>:preview`): one that came
    first made the full event a redelivery, and its data was lost."""
    if isinstance(value, str) and value.strip() and storable(value):
        return value.strip()[:200] + (":preview" if preview else "")
    return None


def _requester(conversation: Mapping[str, Any], at: str, fields: dict[str, Any]) -> None:
    """The conversation's main recipient (see the module docstring)."""
    recipient = optional_object(conversation, "recipient", at)
    if recipient is None:
        return
    at += "recipient."
    handle = people.from_string(recipient["handle"], at + "handle") if recipient.get("handle") else people.Person()
    named = text(recipient.get("name"), at + "name")
    person = people.merge(people.Person(name=named, said_name=named is not None), handle)
    if person.said_name:
        fields["requester_name"] = person.name
    if person.said_email:
        fields["requester_email"] = person.email
    links = optional_object(recipient, "_links", at)
    related = optional_object(links, "related", at + "_links.") if links is not None else None
    if related is not None and "contact" in related:
        fields["requester_id"] = _last_segment(related["contact"], at + "_links.related.contact")


def _last_segment(url: Any, field: str) -> str | None:
    """`https://api2.frontapp.com/contacts/crd_62euuy` -> `crd_62euuy`."""
    value = text(url, field)
    return optional_id(value.rstrip("/").rpartition("/")[2], field) if value else None


def _inbox(side: Mapping[str, Any] | None, where: str) -> str | None:
    """The first inbox of an `inboxes` source or target: its name, else its id."""
    if side is None or _kind(side) != "inboxes":
        return None
    data = side.get("data")
    inbox = data[0] if isinstance(data, list) and data else data
    if not isinstance(inbox, dict):
        return None
    found = Keys(inbox, where + ".data[0].").find(("name", "id"))
    return optional_id(found[1], found[0]) if found else None


def _kind(side: Mapping[str, Any]) -> str | None:
    meta = side.get("_meta")
    kind = meta.get("type") if isinstance(meta, dict) else None
    return kind if isinstance(kind, str) else None


def _target_data(target: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    data = target.get("data") if target is not None else None
    return data if isinstance(data, dict) else None


def _implied(meaning: str, conversation: Mapping[str, Any], target: Mapping[str, Any] | None, where: str,
             fields: dict[str, Any]) -> None:
    """The assignee an assign or unassign event gives, when its conversation does not say."""
    if "assignee" in conversation:
        return
    if meaning == "unassign":
        fields.update(assignee_name=None, assignee_email=None, assignee_id=None)
    data = _target_data(target)
    if meaning == "assign" and data is not None and _kind(target) == "teammate":
        # Another teammate: what the preview leaves out is not the previous assignee's.
        person = people.from_object(data, where + "target.data")
        fields.update(assignee_name=person.name, assignee_email=person.email, assignee_id=person.id)


def _comment(meaning: str, target: Mapping[str, Any] | None, where: str) -> Comment | None:
    """A message's (public) or a comment's (private) text; None in a preview (no body)."""
    if meaning not in MESSAGES and meaning not in COMMENTS:
        return None
    data = _target_data(target)
    if data is None:
        return None
    found = comments.parse(data, where + "target.data", meaning in MESSAGES)
    if found is None or found.author is not None or meaning not in MESSAGES:
        return found
    return Comment(found.body, _sender(data.get("recipients"), where + "target.data.recipients"), found.public)


def _sender(recipients: Any, field: str) -> str | None:
    """The handle of the `from` recipient: who wrote an inbound message."""
    if not isinstance(recipients, list):
        return None
    for index, recipient in enumerate(recipients):
        if isinstance(recipient, dict) and recipient.get("role") == "from":
            return text(recipient.get("handle"), f"{field}[{index}].handle")
    return None


def _tag_change(meaning: str, target: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict | None:
    """The tags before and after a tag or untag event, from the tag it names and the tags
    the conversation lists after it."""
    data = _target_data(target)
    if meaning not in ("tag", "untag") or data is None or "tags" not in fields:
        return None
    tag = data.get("name")
    if not isinstance(tag, str) or not tag.strip():
        return None
    current = list(fields["tags"])
    previous = [name for name in current if name != tag] if meaning == "tag" \
        else current + ([tag] if tag not in current else [])
    return events.previous_current("tags", previous, current) if previous != current else None


CHALLENGE_HEADER = "X-Front-Challenge"


def challenge(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The validation request's challenge, to echo in the answer (see the docstring)."""
    value = (headers.get(CHALLENGE_HEADER) or "").strip()
    if not value or len(value) > 256 or not value.isprintable():
        return None
    return {"challenge": value}


VENDOR = Vendor(
    name=NAME,
    title="Front",
    summary="A Front application webhook (an envelope around the event) or rule webhook (the event itself)",
    normalize=normalize,
    credentials=(
        timestamped_signature("FRONT_APP_SECRET", "X-Front-Signature", "X-Front-Request-Timestamp",
                              layout="stamp:body"),
        hmac_header("FRONT_WEBHOOK_SECRET", "X-Front-Signature", "sha1", "base64"),
    ),
    folder=Path(__file__).parent,
    handshake=challenge,
)
