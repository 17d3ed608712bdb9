"""Finding a field whatever its spelling.

Real bodies are written by admins, relays and integration platforms: `ticket_id`,
`ticketId`, `TicketID` and `ticket-id` all mean one thing. Keys are compared folded
(lower case, without `_`, `-` and spaces), and each field lists its folded aliases in
order of preference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def fold(key: str) -> str:
    return key.replace("_", "").replace("-", "").replace(" ", "").lower()


def stored_order(key: str) -> tuple[int, bytes]:
    """Where PostgreSQL's jsonb keeps a key among an object's: shorter first, then byte by
    byte. A rebuild reads a payload back from jsonb, in that order, where the live path
    reads the body as sent: wherever the order of keys decides a value, it is this one."""
    encoded = key.encode("utf-8", "surrogatepass")
    return len(encoded), encoded


def _stored_first(a: str, b: str) -> bool:
    """Whether jsonb keeps key `a` before key `b`."""
    return stored_order(a) < stored_order(b)


class Keys:
    """A mapping's keys by folded spelling. Of two spellings of one key in one object
    (`updated_at` and `updatedAt`, which relays send side by side), the one jsonb stores
    first wins, never the body's order: the live path reads the body as sent and a
    rebuild reads it back from jsonb, and the two must read the same value."""

    __slots__ = ("mapping", "where", "_by_fold")

    def __init__(self, mapping: Mapping[str, Any], where: str = "", strip: Iterable[str] = ()) -> None:
        """`strip`: folded prefixes an admin put before every key (`zd_ticket_id`), removed
        where the key without them is not also present."""
        self.mapping = mapping
        self.where = where  # prefix for error messages: "ticket.", "detail."
        self._by_fold: dict[str, str] = {}
        for key in mapping:
            if isinstance(key, str):
                folded = fold(key)
                known = self._by_fold.get(folded)
                if known is None or _stored_first(key, known):
                    self._by_fold[folded] = key
        for prefix in strip:
            for folded, key in list(self._by_fold.items()):
                if folded.startswith(prefix) and len(folded) > len(prefix):
                    self._by_fold.setdefault(folded[len(prefix):], key)

    def find(self, aliases: Iterable[str]) -> tuple[str, Any] | None:
        """(field name as written, value) of the first alias present, else None."""
        for alias in aliases:
            key = self._by_fold.get(alias)
            if key is not None:
                return self.where + key, self.mapping[key]
        return None

    def has(self, aliases: Iterable[str]) -> bool:
        return any(alias in self._by_fold for alias in aliases)

    def starting_with(self, prefix: str) -> Iterable[tuple[str, str, Any]]:
        """(key as written, rest of the key after the prefix, value) for keys starting
        with `prefix` (compared case-insensitively, as written otherwise), in jsonb's order
        (`ticket_cf_region` and `TICKET_CF_region` in one body read alike live and rebuilt)."""
        found = [key for key in self.mapping
                 if isinstance(key, str) and key.lower().startswith(prefix) and len(key) > len(prefix)]
        for key in sorted(found, key=stored_order):
            yield key, key[len(prefix):], self.mapping[key]
