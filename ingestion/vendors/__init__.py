"""Helpdesk vendors. Each module describes one vendor as a `Vendor` value: how its calls
authenticate, and how its payloads become a `TicketEvent`. The web layer
(`ingestion.web.webhook`) turns each `Vendor` into a blueprint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..tickets import TicketEvent

if TYPE_CHECKING:
    from ..config import Settings
    from ..web.auth import Verifier

#: (payload, request headers, account from the URL or None) -> the event, or None for an
#: authentic event that is not about a ticket. Raises InvalidField (422) when unusable.
Normalizer = Callable[[Mapping[str, Any], Mapping[str, str], "str | None"], "TicketEvent | None"]


@dataclass(frozen=True)
class Vendor:
    name: str
    #: settings -> the vendor's normalizer (settings may tune it: FRESHDESK_STATUS_NAMES).
    normalizer: Callable[["Settings"], Normalizer]
    #: settings -> the verifiers this vendor's calls may pass (any one is enough).
    authentication: Callable[["Settings"], tuple["Verifier", ...]]


def all_vendors() -> tuple[Vendor, ...]:
    from . import freshdesk, zendesk

    return (freshdesk.VENDOR, zendesk.VENDOR)


def vendor_names() -> tuple[str, ...]:
    return tuple(v.name for v in all_vendors())
