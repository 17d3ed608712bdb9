"""Jira Service Management (and Jira): admin webhooks (Jira admin > System > WebHooks, or
`POST /rest/webhooks/1.0/webhook`), https://developer.atlassian.com/cloud/jira/platform/webhooks/
(the service-desk page, /cloud/jira/service-desk/webhooks/, has the same content).

Vendor quirks that shape this module:
- Signing: a webhook created with a `secret` sends `X-Hub-Signature: sha256=<hex>`, the
  HMAC-SHA256 of the raw body keyed with the secret (WebSub's `method=signature`; the
  docs' test vector: secret "It's a Secret to Everybody", body "Hello World!" ->
  sha256=a4771c39...63c9). The docs warn that Jira "might start using another method":
  any method but `sha256=` fails the check (closed, 401). Without a secret Jira Cloud
  sends the call unsigned, and Cloud admin webhooks have no Basic-auth option at all;
  Basic (JIRA_WEBHOOK_AUTH) is for Jira Data Center webhooks ("secret token or basic
  authentication", confluence.atlassian.com/adminjiraserver/managing-webhooks-938846912.html)
  or for a proxy of your own that adds it in front of an unsigned Cloud webhook. Webhooks
  of Connect and OAuth 2.0 apps carry a JWT in `Authorization` instead, which this
  service does not verify: register an admin webhook with a secret.
- The event is named in the body's `webhookEvent`; there is no event header. The ticket
  events are `jira:issue_created|updated|deleted` and `comment_created|updated|deleted`;
  every other name (worklog, attachment, issuelink, issue property, project, version,
  sprint, board, user, filter, option, issuetype, app access, unknown) is authentic but
  not about a ticket we can name: `ignored`. Worklog and issue link events carry only a
  numeric issue id, no key. A body without `webhookEvent` is refused (422): Automation
  for Jira's "Send web request" bodies are written by the rule's author, not this shape.
- The ticket is `issue.key` (`SUP-123`), the id people and Jira's URLs use. Moving an
  issue to another project changes its key (`TCP-2` -> `INDEV-130`, changelog item
  `Key`) but not its numeric `issue.id`: the move event and every later one are stored
  under the new key, and the ticket under the old key keeps its last state. The move's
  changes say `external_id: {previous: TCP-2, current: INDEV-130}`, and every ticket
  keeps `issue.id` in `custom_fields.issue_id`, so the two can be joined downstream.
- `jira:issue_*` bodies carry the whole issue in its REST v2 shape (`fields.summary`,
  `description` as a wiki-markup string, never ADF; `status`/`priority`/`issuetype`
  objects with a `name`; `reporter`, `assignee`; `labels`; `project`; `customfield_*`
  whose ids are per site; times like `2019-01-07T16:55:51.184-0330`). Cloud users have
  `accountId` and `displayName` but no `emailAddress`. `comment_*` bodies carry the
  comment and a slim issue (summary, issuetype, project, assignee, priority, status
  only) and no top-level `user`. Status and priority are stored as the site names them,
  lower-cased; the status category (`new|indeterminate|done`, stable where sites rename
  statuses) is kept in custom_fields.
- Changes: `changelog.items` (on updates, and on creates since 2024 Cloud; the docs say
  updates only), see changelog.py.
- Comments (JSM): `comment.jsdPublic` is false for an internal note; `comment.visibility`
  (`{type: role|group, value}`) restricts a comment to a role or group. Either makes it
  private; otherwise it is public (`jsdPublic` defaults to true, and is absent outside
  service projects). Older sites send a comment as `jira:issue_updated` with
  `issue_event_type_name` `issue_commented` / `issue_comment_edited` and a `comment`
  object; `issue_comment_deleted` (and `comment_deleted`) carry no new comment.
- `jira:issue_deleted` is permanent (Jira issues have no trash): the ticket's content is
  forgotten. Jira then sends the issue's `comment_deleted`, `attachment_deleted` and
  `issuelink_deleted` as Secondary-flow deliveries; those about comments reach a purged
  ticket and are kept content-free (`stale`).
- The event's time: the body's `timestamp` (epoch milliseconds, when the event fired;
  relays that log bodies sometimes turn it into text, then it is ignored) or the issue's
  `updated`, the later of the two, so a late retry of an older event is `stale`.
- Deliveries: Jira sends `X-Atlassian-Webhook-Identifier`, "the same across retries";
  it retries 5xx, 408, 409, 425 and 429, and deliveries may arrive late ("up to 30
  minutes, subject to change") and more than once. The identifier is
  a header, which the signature does not cover, so it is not the delivery's identity (as
  Zendesk's invocation id is not: README, Redeliveries): a captured body re-sent with a
  new identifier would otherwise be a new event. Every Jira body names its event and
  carries its firing time in milliseconds, so a redelivery is recognised by its body
  within REDELIVERY_WINDOW (2 hours).
- No site in the headers; the site is only the host of the body's `self` URLs. The
  account is the URL's last segment (a source per site: `/jira/acme.atlassian.net`),
  which keeps `SUP-1` of two sites apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ...errors import InvalidField
from ...normalize import events
from ...normalize.values import object_at, optional_object, text, timestamp
from ...tickets import Comment, Deletion, TicketEvent
from ...vendor import Vendor, basic_auth, hmac_header
from . import changelog, issue

NAME = "jira"
ISSUE_DELETED = "jira:issue_deleted"
ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", ISSUE_DELETED)
COMMENT_EVENTS = ("comment_created", "comment_updated", "comment_deleted")
#: Events whose `comment` is a comment written or edited (not one deleted).
COMMENTING = ("comment_created", "comment_updated")
#: `issue_event_type_name` of older sites' comments sent as jira:issue_updated.
LEGACY_COMMENTING = ("issue_commented", "issue_comment_edited")
_DIGITS = frozenset("0123456789")


def normalize(payload: Mapping[str, Any], headers: Mapping[str, str] | None = None,
              account: str | None = None) -> TicketEvent | None:
    name = _event_name(payload)
    if name not in ISSUE_EVENTS + COMMENT_EVENTS:
        return None
    found = object_at(payload, "issue")
    external_id = issue.key(found)
    fields = issue.fields(found)
    changes = changelog.changes(payload)
    for cleared in changelog.cleared_custom_fields(changes):
        fields["custom_fields"].setdefault(cleared, None)
    fired = _fired_at(payload.get("timestamp"))
    if fired is not None and (fields.get("vendor_updated_at") is None or fired > fields["vendor_updated_at"]):
        fields["vendor_updated_at"] = fired
    return TicketEvent(
        vendor=NAME, account=account or "", external_id=external_id, fields=fields,
        event_type=name[:events.MAX_NAME], comment=_comment(name, payload), changes=changes,
        deletion=Deletion.PERMANENT if name == ISSUE_DELETED else None,
    )


def _event_name(payload: Mapping[str, Any]) -> str:
    name = payload.get("webhookEvent")
    if name is None:
        raise InvalidField("webhookEvent", "is missing: a Jira webhook names its event there")
    if not isinstance(name, str) or not name.strip():
        raise InvalidField("webhookEvent", "must be a string naming the event")
    return name.strip()


def _fired_at(value: Any) -> datetime | None:
    """`timestamp`: epoch milliseconds, as a number or (from relays) a string of digits."""
    if isinstance(value, str) and value and set(value) <= _DIGITS and len(value) <= 15:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return timestamp(value, "timestamp")
    return None


def _comment(name: str, payload: Mapping[str, Any]) -> Comment | None:
    """The comment written or edited, with its JSM visibility (see the module docstring)."""
    if name not in COMMENTING and payload.get("issue_event_type_name") not in LEGACY_COMMENTING:
        return None
    comment = optional_object(payload, "comment")
    if comment is None:
        if name in COMMENTING:
            raise InvalidField("comment", "is missing: a comment event carries its comment")
        return None
    body = text(comment.get("body"), "comment.body")
    if body is None:
        return None
    author = comment.get("author")
    person = issue.person(author, "comment.author") if author is not None else {}
    return Comment(body, person.get("name") or person.get("email") or person.get("id"), _public(comment),
                   _comment_key(comment, body))


def _comment_key(comment: Mapping[str, Any], body: str) -> str | None:
    """The comment's id, version (`updated`, else `created`) and a digest of its text:
    comment_created and the jira:issue_updated "issue_commented" Jira fires beside it carry
    the same comment, which is stored once (ingest_event); an edit is a new version."""
    ident, version = comment.get("id"), comment.get("updated") or comment.get("created")
    if not isinstance(ident, (str, int)) or isinstance(ident, bool) or not str(ident).strip():
        return None
    digest = hashlib.blake2b(body.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{str(ident).strip()[:100]}@{str(version)[:40] if isinstance(version, (str, int)) else ''}:{digest}"


def _public(comment: Mapping[str, Any]) -> bool:
    """Private when `jsdPublic` says anything but true (an internal note), or when a
    `visibility` restricts the comment to a role or group."""
    flag = comment.get("jsdPublic")
    if flag is not None and flag is not True and flag != "true":
        return False
    return comment.get("visibility") in (None, {})


#: The docs' test vector: anyone can sign with it.
PUBLIC_TEST_SECRET = "It's a Secret to Everybody"

VENDOR = Vendor(
    name=NAME,
    title="Jira Service Management",
    summary="A Jira (Service Management) admin webhook (the event named in the body's webhookEvent)",
    normalize=normalize,
    credentials=(
        # an admin webhook with a secret: X-Hub-Signature: sha256=<hex of HMAC-SHA256(body)>
        hmac_header("JIRA_WEBHOOK_SECRET", "X-Hub-Signature", "sha256", "hex", prefix="sha256="),
        # Data Center webhooks, or a proxy of yours in front of an unsigned Cloud webhook
        basic_auth("JIRA_WEBHOOK_AUTH"),
    ),
    folder=Path(__file__).parent,
    public_test_secrets=frozenset({PUBLIC_TEST_SECRET}),
)
