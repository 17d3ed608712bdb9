"""`python -m ingestion redact`: forget a person (or a ticket's personal data) on request.

Why it works this way: docs/design.md, "Redaction".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import click

from ..cli import Context, job, ticket_named
from ..json_body import object_text
from ..storage import Storage
from ..storage.history import Masking

MASK = "[redacted]"
#: (ticket column, field name) of a person's three fields.
PEOPLE = ((("requester_name", "requester_name"), ("requester_email", "requester_email"),
           ("requester_id", "requester_id")),
          (("assignee_name", "assignee_name"), ("assignee_email", "assignee_email"), ("assignee_id", "assignee_id")))
#: (ticket column, field name) of the other text fields a mention is masked in.
TEXT = (("subject", "subject"), ("description", "description"), ("group_name", "group"),
        ("organization", "organization"))
#: Event columns the masking rewrites (JSON ones as text).
EVENT_COLUMNS = ("payload", "comment_body", "comment_author", "changes", "fields")


#: An address the command accepts: one `@`, a local part and a domain of dot-separated
#: labels, no spaces. `@example.com` or `@` would match every address of a domain (or
#: every one) as a substring, which is not a person.
ADDRESS = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)*")

# A mention is a whole address or name, never part of a longer one: `ana@example.com`
# is not in `diana@example.com` or `ana@example.com.au`, `Ana` is not in `Banana`.
# Masking reads JSON as text, where a line break before a name is the two characters
# `\n`: a backslash escape's letter counts as a boundary too.
_STARTS = r"(?:(?<![\w.%+\-])|(?<=\\[nrtbf]))"
_ENDS = r"(?![\w\-]|\.[\w\-])"


def _pattern(mentions: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({m.strip() for m in mentions if m and len(m.strip()) >= 3}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(_STARTS + "(?:" + "|".join(re.escape(w) for w in words) + ")" + _ENDS, re.IGNORECASE)


def _masked(text: str | None, pattern: re.Pattern[str] | None) -> str | None:
    return pattern.sub(MASK, text) if text is not None and pattern is not None else text


def masking(ticket: Mapping[str, Any], events: list[Mapping[str, Any]], email: str,
            pattern: re.Pattern[str] | None) -> Masking | None:
    """What forgetting `email` (and the names in `pattern`) changes on one ticket."""
    fields: dict[str, Any] = {}
    address = _pattern([email])
    for person in PEOPLE:
        # The person's address, or a value holding it (`Ana Perez <ana@example.com>`, what a
        # template sending {{ticket.requester}} stores): the person's fields all go.
        held = ticket[person[1][0]] or ""
        if held.lower() == email.lower() or (address is not None and address.search(held)):
            fields.update({name: None for column, name in person if ticket[column] is not None})
        elif (new := _masked(ticket[person[0][0]], pattern)) != ticket[person[0][0]]:
            # Someone else's name that is one of the person's full names: masked in this
            # ticket's events below, so on the ticket too, or the two would disagree and
            # a rebuild would change the ticket.
            fields[person[0][1]] = new
    for column, name in TEXT:
        if (new := _masked(ticket[column], pattern)) != ticket[column]:
            fields[name] = new
    tags = [_masked(tag, pattern) for tag in ticket["tags"]]
    if tags != list(ticket["tags"]):
        fields["tags"] = tags
    custom_fields = _masked(ticket["custom_fields"], pattern)
    changed_events = {}
    for event in events:
        new = {column: _masked(event[column], pattern) for column in EVENT_COLUMNS}
        if any(new[column] != event[column] for column in EVENT_COLUMNS):
            changed_events[event["id"]] = new
    if custom_fields == ticket["custom_fields"]:
        custom_fields = None
    if not fields and custom_fields is None and not changed_events:
        return None
    names = sorted([*fields, *(["custom_fields"] if custom_fields is not None else [])])
    text = object_text(fields, {"custom_fields": custom_fields} if custom_fields is not None else {})
    return Masking(text, changed_events, {"forgotten": "person", "fields": names, "events": len(changed_events)})


def _mentions(body: str, address: re.Pattern[str] | None) -> bool:
    """Whether a quarantined body mentions the address, as sent or once its JSON escapes
    are read (`\\u0040` for `@`): the body of a later replay is the decoded one."""
    if address is None:
        return False
    if address.search(body):
        return True
    if "\\u" not in body:
        return False
    try:
        decoded = json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        return False
    return bool(address.search(decoded))


def _like(text: str) -> str:
    """`text` anywhere, as an ILIKE pattern."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def redact_email(storage: Storage, email: str) -> dict[str, int]:
    """Forget the person with this address. The tickets searched are those where the
    address appears, or one of the person's full names (two words or more) does: a
    single word (`Ana`) would find strangers, so it is masked only on the tickets the
    address or a full name leads to."""
    email = email.strip()
    changed = {"tickets": 0, "events": 0, "quarantine": 0}
    like = _like(email)
    names = storage.names_of(email)
    pattern = _pattern([email, *names])
    address = _pattern([email])
    full_names = sorted(name.strip() for name in names if len(name.split()) >= 2)
    for ticket_id in storage.tickets_mentioning(email, [like, *map(_like, full_names)]):
        done = storage.redact(ticket_id, lambda ticket, events: masking(ticket, events, email, pattern))
        if done is not None:
            changed["tickets"] += bool(done.summary["fields"])
            changed["events"] += len(done.events)
    changed["quarantine"] = storage.redact_quarantine(like, lambda body: _mentions(body, address))
    storage.record_redaction_request("email", changed)
    return changed


def redact_ticket(storage: Storage, vendor: str, account: str, external_id: str) -> dict[str, int]:
    tickets, events = storage.forget(vendor, account, external_id)
    changed = {"tickets": tickets, "events": events, "quarantine": 0}
    storage.record_redaction_request("ticket", changed)
    return changed


@click.command("redact")
@click.option("--email", help="Forget this person: their fields on tickets, every mention in events, quarantine.")
@click.option("--ticket", help="Empty this ticket's personal data: <vendor>/<external id>.")
@click.option("--account", default="", help="The vendor account of --ticket (default: none).")
@job
def command(context: Context, email: str | None, ticket: str | None, account: str) -> None:
    """Remove personal data on request (README: Personal data); prints what it changed."""
    if (email is None) == (ticket is None):
        raise click.ClickException("give exactly one of --email and --ticket")
    if email is not None and not ADDRESS.fullmatch(email.strip()):
        raise click.ClickException("--email must be one whole email address (name@domain)")
    if email is not None:
        changed = redact_email(context.storage, email)
    else:
        vendor, external_id = ticket_named(ticket)
        changed = redact_ticket(context.storage, vendor, account, external_id)
    click.echo(json.dumps({"redacted": changed}))
