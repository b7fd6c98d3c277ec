"""What paper and live executions share: where a report says it ran, its clientOids, book tops,
timings, and the exchange's error code behind a failure.

Both `worker.paper` and `worker.live` build reports the same way from these; neither imports
the other.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from decimal import Decimal

from shared.kucoin.errors import KucoinError
from shared.report import BookTop
from shared.signal import Book, Signal

__all__ = ["ExecutionContext", "Timeline", "book_top", "client_oid", "exchange_error_code", "ms_since"]

_D0 = Decimal(0)


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    """What a report says about where it ran."""

    worker: str
    host: str
    mode: str
    fill_model: str


def client_oid(correlation_id: str, leg: int) -> str:
    """Deterministic per (execution, leg), ≤ 40 chars of KuCoin's alphabet: a retry can never double-place."""
    digest = hashlib.blake2b(correlation_id.encode(), digest_size=16).hexdigest()
    return f"t{digest}-{leg}"


def book_top(book: Book) -> BookTop:
    """The seed's per-leg book top for reports (zeros for an empty side)."""
    ask, bid = book.best_ask, book.best_bid
    return BookTop(
        ask_px=ask.price if ask else _D0,
        ask_sz=ask.size if ask else _D0,
        bid_px=bid.price if bid else _D0,
        bid_sz=bid.size if bid else _D0,
    )


def ms_since(start_ns: int, now_ns: int) -> float:
    """Monotonic nanoseconds to milliseconds, rounded as reports carry them (µs resolution)."""
    return round((now_ns - start_ns) / 1e6, 3)


def exchange_error_code(exc: BaseException) -> str:
    """The exchange's code for a failure, as the metrics label it: the KuCoin code ("200004"),
    else "http_<status>", else "transport" for a call that got no answer; "" when the failure
    did not come from the exchange at all."""
    if not isinstance(exc, KucoinError):
        return ""
    if exc.code:
        return exc.code
    return f"http_{exc.http_status}" if exc.http_status else "transport"


class Timeline:
    """The seed's timing breakdown: steps in ms relative to the supervisor reading the frame."""

    def __init__(self, signal: Signal, received_ms: int, received_ns: int) -> None:
        self.received_ns = received_ns
        self.steps: list[tuple[str, float]] = []
        for step, ts in (
            ("t-2_book_snapshot", signal.book_ts_ms),
            ("socket_arrived", signal.t_sock_arrive_ms),
            ("book_update_arrived", signal.t_arrive_ms),
            ("t-1_eval_complete", signal.t_eval_ms),
            ("t_signal_created", signal.ts_ms),
        ):
            if ts > 0:
                self.steps.append((step, float(ts - received_ms)))
        self.steps.append(("signal_received", 0.0))

    def mark(self, step: str, now_ns: int | None = None) -> float:
        elapsed = ms_since(self.received_ns, now_ns if now_ns is not None else time.monotonic_ns())
        self.steps.append((step, elapsed))
        return elapsed
