"""What kind of event a body is, and what changed, when the vendor does not say itself.

The vendor's own name wins where it sends one (Zendesk `type`, a Freshworks `event`,
Help Scout's header); vendor modules read those. Otherwise an admin-written body may
name its event (`event`, `action`, `event_type`); otherwise the name is derived from the
body: a comment makes it `ticket.comment_added`, anything else is `ticket.snapshot`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..tickets import Comment, Deletion
from .keys import Keys
from .values import text

SNAPSHOT = "ticket.snapshot"
COMMENT_ADDED = "ticket.comment_added"
#: Keys an admin uses to name the event of a body.
NAMED_BY = ("eventtype", "event", "action", "trigger", "triggername")
MAX_NAME = 200


def named(keys: Keys, extra: tuple[str, ...] = ()) -> str | None:
    """The event name an admin-written body gives itself, if any (a short string)."""
    found = keys.find(NAMED_BY + extra)
    if found is None or not isinstance(found[1], str):
        return None
    name = text(found[1], found[0])
    return name.strip()[:MAX_NAME] or None if name else None


def derived(comment: Comment | None) -> str:
    return COMMENT_ADDED if comment is not None else SNAPSHOT


def previous_current(field: str, previous: Any, current: Any) -> dict[str, Any]:
    """One change in the shape every vendor's changes are stored in."""
    return {field: {"previous": previous, "current": current}}


def generic_changes(keys: Keys) -> dict[str, Any] | None:
    """`changes` as an object of `[old, new]` pairs or `{previous, current}` objects,
    or top-level `previous` / `current` objects keyed by field."""
    found = keys.find(("changes",))
    if found is not None and isinstance(found[1], Mapping):
        changes: dict[str, Any] = {}
        for name, change in found[1].items():
            if isinstance(change, list) and len(change) == 2:
                changes.update(previous_current(name, change[0], change[1]))
            elif isinstance(change, Mapping):
                inner = Keys(change)
                old, new = inner.find(("previous", "from", "old")), inner.find(("current", "to", "new"))
                changes.update(previous_current(name, old[1] if old else None, new[1] if new else None))
        return changes or None
    previous, current = keys.find(("previous",)), keys.find(("current",))
    if previous is not None and current is not None \
            and isinstance(previous[1], Mapping) and isinstance(current[1], Mapping):
        changed = dict.fromkeys([*previous[1], *current[1]])
        return {name: {"previous": previous[1].get(name), "current": current[1].get(name)} for name in changed} or None
    return None


#: Words that make a deletion about something inside a ticket (a comment, an attachment,
#: a tag, a field), or about something else (a user), not about the ticket itself.
_NOT_THE_TICKET = frozenset({"comment", "comments", "note", "notes", "reply", "replies", "message", "messages",
                             "attachment", "attachments", "conversation", "field", "fields", "tag", "tags",
                             "user", "contact", "customer", "agent", "requester", "organization", "company",
                             "group", "article", "thread", "time", "entry"})
_RESTORED = frozenset({"undelete", "undeleted", "restore", "restored", "untrash", "untrashed", "recovered"})
_DELETED = frozenset({"delete", "deleted", "deletion", "trash", "trashed", "purge", "purged", "destroyed"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def deletion(name: str | None) -> Deletion | None:
    """What an event's name says about the ticket's deletion, if anything: SOFT or
    RESTORED, never PERMANENT.

    Vendors and admins name these events in many ways: Help Scout's `convo.deleted`, a
    Freshdesk rule's `{ticket_action:deleted}`, an admin's `"event": "Ticket Deleted"` or
    `ticket_restored`. The name's words decide: a word of deleting, or of restoring. A
    name about a part of the ticket (`comment_deleted`) is not a deletion of the ticket.
    A permanent delete forgets irreversibly, so a free-text name never causes one: only
    the vendors' own permanent events do (Zendesk's `ticket.permanently_deleted`,
    Freshworks' `onTicketDelete`), and their folders say so themselves."""
    if not name:
        return None
    words = {word.lower() for word in _WORD.findall(name)}
    if words & _NOT_THE_TICKET:
        return None
    if words & _RESTORED:
        return Deletion.RESTORED
    if words & _DELETED:
        return Deletion.SOFT
    return None
