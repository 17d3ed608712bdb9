"""One event as the transports carry it (README: Event stream)."""

from __future__ import annotations

import string
from typing import Any

_TOKEN_SAFE = frozenset(string.ascii_letters + string.digits + "_-")


def account_token(account: str) -> str:
    """`account` as one name token (a NATS subject's, a Redis Cluster stream's): letters,
    digits, `_` and `-` kept, any other character `~XX` per UTF-8 byte, the empty account `~`."""
    if not account:
        return "~"
    return "".join(c if c in _TOKEN_SAFE else "".join(f"~{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
                   for c in account)


def stream_fields(row: dict[str, Any]) -> dict[str, str]:
    """An outbox row (storage/outbox.py's PENDING_EVENTS) as the stream's flat fields."""
    fields = {
        "ticket_id": str(row["ticket_id"]),
        "source": row["vendor"],
        "account": row["account"],
        "external_id": row["external_id"],
        "event_id": str(row["id"]),
        "event_type": row["event_type"],
        "change": row["outcome"],  # created | updated | recorded | deleted | forget
        "revision": str(row["revision"]),
        "occurred_at": row["received_at"].isoformat(),
    }
    if row["deletion"]:  # soft | permanent (the content is gone: drop your copy) | restored (on an updated change)
        fields["deletion"] = row["deletion"]
    forgotten = row["forgotten"]
    if forgotten:  # what to forget: the ticket's content, or a person's (never the values)
        fields["forgotten"] = str(forgotten.get("forgotten", "ticket"))
        fields["fields"] = ",".join(forgotten.get("fields") or ())
        fields["events"] = str(forgotten.get("events", 0))
    return fields
