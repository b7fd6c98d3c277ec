"""The order log: every order call (test, place, sync) with its monotonic arrival time.

`arrival_ns` is `time.monotonic_ns()` taken first thing when the request reaches the
simulator, before auth, so a benchmark on the same host can subtract its own monotonic
timestamps to get signal-to-wire latency. Calls refused by auth, rate limits or faults are
logged too (with their code); a call answered by hanging has `code` None.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["OrderLogEntry", "OrderLog"]


@dataclass(frozen=True, slots=True)
class OrderLogEntry:
    """One order call as received; amounts are the strings the client sent."""

    arrival_ns: int
    kind: str  # "place" | "sync" | "test"
    client_oid: str | None
    symbol: str | None
    side: str | None
    type: str | None
    size: str | None
    funds: str | None
    code: str | None  # the answer's KuCoin code; None when the call was never answered
    http_status: int | None
    order_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OrderLog:
    """An append-only, bounded log (the oldest entries go first once `max_entries` is reached)."""

    __slots__ = ("_entries",)

    def __init__(self, max_entries: int) -> None:
        self._entries: deque[OrderLogEntry] = deque(maxlen=max_entries)

    def append(self, entry: OrderLogEntry) -> None:
        self._entries.append(entry)

    def entries(self) -> list[OrderLogEntry]:
        """A copy, oldest first."""
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
