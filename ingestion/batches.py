"""Deliveries that carry several events (HubSpot posts an array of up to 100): read one
by one, stored all or none, answered event by event. Shared by the webhook path and
`replay`, like json_body.py.

What each event of a batch is, once read:
- its own JSON text, stored as its event's raw payload, so `rebuild` and the read API
  see one event per row, exactly as for a vendor that posts one event per request;
- its identity: the vendor's event id (HubSpot's `eventId`) when the normalizer finds
  one, else a fingerprint of its own text (ingest.identity), so a redelivered batch is
  `already_exists` event by event, and a batch that holds one new event among known ones
  stores just that one.

All or none: an event that cannot be read (InvalidField) refuses the whole request with
422, naming the event by its place (`[3].objectId`), and the request is quarantined whole
for `replay`; nothing of it is stored. Events not about a ticket are answered `ignored`
in their place. The duplicate fast path (Redis) is not used for batches: their bodies
change with every retry (HubSpot counts `attemptNumber` in them), so PostgreSQL decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidField
from .json_body import dumps
from .tickets import TicketEvent
from .vendor import Normalizer

#: Events one request may carry (HubSpot sends at most 100; MAX_BODY_BYTES bounds the rest).
MAX_EVENTS = 1000

Splitter = Callable[[Any], "Sequence[Mapping[str, Any]] | None"]


@dataclass(frozen=True)
class BatchItem:
    #: None: authentic, not about a ticket (answered `ignored`).
    event: TicketEvent | None
    #: The event's own JSON, as stored.
    text: str

    @property
    def body(self) -> bytes:
        """The bytes its identity is a fingerprint of, when the vendor names no event id."""
        return self.text.encode("utf-8", "surrogatepass")


def events_of(split: Splitter | None, payload: Any) -> Sequence[Mapping[str, Any]] | None:
    """The batch's events, or None when the body is a single event (or the vendor never
    batches). Raises InvalidField for an array past MAX_EVENTS."""
    if split is None:
        return None
    events = split(payload)
    if events is not None and len(events) > MAX_EVENTS:
        raise InvalidField("[]", f"holds {len(events)} events; a request may carry at most {MAX_EVENTS}")
    return events


def read(events: Sequence[Mapping[str, Any]], normalize: Normalizer, headers: Mapping[str, str],
         account: str | None) -> list[BatchItem]:
    """Each event normalized alone. The first one that cannot be read refuses the batch."""
    items = []
    for place, event in enumerate(events):
        try:
            normalized = normalize(event, headers, account)
        except InvalidField as refused:
            raise InvalidField(f"[{place}].{refused.field}", refused.problem) from None
        items.append(BatchItem(normalized, dumps(event)))
    return items
