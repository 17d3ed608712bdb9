"""The comment an event carries, wherever the vendor or the admin put it.

- an object with a body (`body`, `body_text`, `text`, `value`, `html_body`, `plain_body`),
  an author (a string or a person object) and a visibility (`public`, `is_public`, or
  `private`);
- a string under a key that says what it is: `latest_comment`, `latest_public_comment`,
  `comment`, `message`, Freshdesk's `ticket_latest_public_comment` and
  `ticket_latest_private_comment` (whose names give the visibility).
The body is kept exactly as sent (Zendesk placeholders prefix it with a header naming
the author and the date; Freshdesk's with "Author Name : ").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..tickets import Comment
from . import people
from .keys import Keys
from .values import text

#: (folded key, visibility it implies)
COMMENT_KEYS: tuple[tuple[str, bool | None], ...] = (
    ("comment", None),
    ("latestcomment", None),
    ("latestpubliccomment", True),
    ("ticketlatestpubliccomment", True),
    ("latestprivatecomment", False),
    ("ticketlatestprivatecomment", False),
    ("ticketlatestcomment", None),
    ("lastcomment", None),
    ("message", None),
)
BODY = ("bodytext", "body", "text", "value", "plainbody", "htmlbody", "content")
AUTHOR = ("author", "authorname", "from", "fromemail", "createdby", "user")
# body_text before body: the same text without the HTML, where a vendor sends both.
PUBLIC = ("public", "ispublic")
PRIVATE = ("private", "isprivate")


def find(keys: Keys) -> Comment | None:
    """The first comment-like key of `keys` that holds a comment. A comment given as a
    string may have its author and visibility beside it: `latestComment`,
    `latestCommentAuthorName`, `latestCommentIsPublic`; `message` and `is_public`. An
    object that is itself a conversation (a reply or a note: a `ticket_id` and a `body`)
    is its own comment."""
    for alias, visibility in COMMENT_KEYS:
        found = keys.find((alias,))
        if found is None:
            continue
        comment = parse(found[1], found[0], visibility)
        if comment is None:
            continue
        if isinstance(found[1], str):
            author = keys.find((alias + "authorname", alias + "author"))
            if author is not None and isinstance(author[1], str) and author[1].strip():
                comment = Comment(comment.body, text(author[1], author[0]), comment.public)
            if comment.public is None:
                flag = _flag(keys.find((alias + "ispublic", alias + "public", "ispublic", "public")))
                private = _flag(keys.find((alias + "isprivate", alias + "private", "isprivate", "private")))
                public = flag if flag is not None else (None if private is None else not private)
                comment = Comment(comment.body, comment.author, public)
        return comment
    if keys.has(("ticketid",)) and keys.has(("body", "bodytext")):
        return parse(keys.mapping, keys.where.rstrip(".") or "body")
    return None


def with_visibility(keys: Keys, public: bool) -> Comment | None:
    """The comment under a key whose name gives this visibility (Freshdesk's
    `ticket_latest_private_comment` for a private note), else None. A body that carries
    both latest comments and says which one the event is about (`{note_type:private}`)
    is about that one, whichever `find` would take first."""
    for alias, visibility in COMMENT_KEYS:
        if visibility is public:
            found = keys.find((alias,))
            comment = parse(found[1], found[0], visibility) if found is not None else None
            if comment is not None:
                return comment
    return None


def _flag(found: tuple[str, Any] | None) -> bool | None:
    """true / false as JSON booleans or as the strings placeholders render."""
    if found is None:
        return None
    value = found[1]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def parse(value: Any, field: str, visibility: bool | None = None) -> Comment | None:
    """A comment given as a string or an object; None when it has no body."""
    if isinstance(value, str):
        body = text(value, field)
        return Comment(body, None, visibility) if body is not None else None
    if not isinstance(value, Mapping):
        return None
    keys = Keys(value, field + ".")
    body = keys.find(BODY)
    body_text = text(body[1], body[0]) if body and not isinstance(body[1], (dict, list)) else None
    if body_text is None:
        return None
    author = keys.find(AUTHOR)
    author_name = None
    if author is not None and author[1] is not None:
        person = people.from_value(author[1], author[0])
        author_name = person.name or person.email or person.id
    public = _flag(keys.find(PUBLIC))
    private = _flag(keys.find(PRIVATE))
    if public is not None:
        visibility = public
    elif private is not None:
        visibility = not private
    return Comment(body_text, author_name, visibility)
