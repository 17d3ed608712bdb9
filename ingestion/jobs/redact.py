"""`python -m ingestion redact`: forget a person (or a ticket's personal data) on request.

`--email <address>`: every ticket whose requester or assignee has that address loses that
person's name, address and id; every mention of the address or the person's names in the
ticket's other fields, and in any event (raw payload, comment, changes, the fields it
carried; on any ticket: a person may be CC'd), is replaced by `[redacted]`; quarantined
deliveries that contain the address are deleted (unreadable bodies: there is nothing to
keep once the person is gone). Delivery rows hold no personal data.

`--ticket <vendor>/<id>`: the ticket's people, subject, description, group,
organization, tags and custom fields are emptied and its events lose their raw payload,
comment, changes and the personal values of their fields; ids, types, times, outcomes and
revisions stay: the same forgetting as a vendor's permanent delete (SQL forget_ticket()),
without marking the ticket deleted.

A redaction is a fact of the ticket's history: a `ticket.redacted` event (outcome
`forget`) carries the fields it set, merged with the live rule (SQL record_redaction()),
so a rebuild replays it and never brings the data back, and the stream tells consumers
to forget their copies. Each ticket is one transaction holding its row lock, so a
webhook for it waits and is then stored normally. A later webhook that brings the data
back is stored: the vendor is the source of truth (README: Personal data). A row in
`redactions` records that a redaction happened, its kind and how many rows it changed:
never the address. Running it again changes nothing.

Masking works on JSON as text (the columns are read as `::text`): a payload stored nested
deeper than today's limit is masked like any other, and the mask has no character that
JSON escapes, so the text stays valid JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import click

from ..cli import Context, job
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


def _pattern(mentions: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({m.strip() for m in mentions if m and len(m.strip()) >= 3}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def _masked(text: str | None, pattern: re.Pattern[str] | None) -> str | None:
    return pattern.sub(MASK, text) if text is not None and pattern is not None else text


def masking(ticket: Mapping[str, Any], events: list[Mapping[str, Any]], email: str,
            pattern: re.Pattern[str] | None) -> Masking | None:
    """What forgetting `email` (and the names in `pattern`) changes on one ticket."""
    fields: dict[str, Any] = {}
    for person in PEOPLE:
        if (ticket[person[1][0]] or "").lower() == email.lower():
            fields.update({name: None for column, name in person if ticket[column] is not None})
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


def redact_email(storage: Storage, email: str) -> dict[str, int]:
    email = email.strip()
    changed = {"tickets": 0, "events": 0, "quarantine": 0}
    like = "%" + email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    pattern = _pattern([email, *storage.names_of(email)])
    for ticket_id in storage.tickets_mentioning(email, like):
        done = storage.redact(ticket_id, lambda ticket, events: masking(ticket, events, email, pattern))
        if done is not None:
            changed["tickets"] += bool(done.summary["fields"])
            changed["events"] += len(done.events)
    changed["quarantine"] = storage.redact_quarantine(like)
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
    if email is not None and "@" not in email:
        raise click.ClickException("--email must be an email address")
    if email is not None:
        changed = redact_email(context.storage, email)
    else:
        vendor, _, external_id = ticket.partition("/")
        if not vendor or not external_id:
            raise click.ClickException("--ticket must be <vendor>/<external id>")
        changed = redact_ticket(context.storage, vendor, account, external_id)
    click.echo(json.dumps({"redacted": changed}))
