"""Helpdesk vendors. Each module describes one vendor as a `Vendor` value: where the
ticket sits in its payloads, how its calls authenticate, where its delivery id is.
The web layer (`ingestion.web.webhook`) turns each `Vendor` into a blueprint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..tickets import Ticket

if TYPE_CHECKING:
    from ..config import Settings
    from ..web.auth import Verifier


@dataclass(frozen=True)
class Vendor:
    name: str
    #: payload -> Ticket, or None for an authentic event that is not about a ticket.
    normalize: Callable[[Mapping[str, Any]], Ticket | None]
    #: settings -> the verifiers this vendor's calls may pass (any one is enough).
    authentication: Callable[["Settings"], tuple["Verifier", ...]]
    #: (request headers, payload) -> the vendor's own id for this delivery, if it sends one.
    delivery_id: Callable[[Mapping[str, str], Mapping[str, Any]], str | None]


def all_vendors() -> tuple[Vendor, ...]:
    from . import freshdesk, zendesk

    return (freshdesk.VENDOR, zendesk.VENDOR)
