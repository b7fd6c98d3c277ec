"""One triangle, paper mode: three order tests in one round trip, then fills simulated from the book.

The seed sent its three order tests one after another; their sizes are fixed by the signal, so
they are independent and go out concurrently here (one round trip instead of three). Every path
ends in exactly one report: filled, failed (with the exchange's reason) or aborted (with why).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from shared.kucoin.errors import KucoinError
from shared.kucoin.rest import KucoinRest
from shared.report import BookTop, EdgeBreakdown, ExecutionReport, Status
from shared.signal import Book, Leg, Signal
from worker.attribution import attribute
from worker.fill_model import PaperAbort, simulate_triangle

__all__ = ["ExecutionContext", "Timeline", "book_top", "client_oid", "execute_paper", "ms_since"]

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


async def _order_test(client: KucoinRest, leg: Leg, index: int, correlation_id: str) -> tuple[str, int]:
    """Validate one leg with the exchange; returns (order id, monotonic ns of the answer)."""
    amount = {"funds": leg.order_param} if leg.side == "buy" else {"size": leg.order_param}
    ack = await client.order_test(leg.pair, leg.side, client_oid=client_oid(correlation_id, index), **amount)
    return ack.order_id, time.monotonic_ns()


async def execute_paper(
    signal: Signal,
    client: KucoinRest,
    context: ExecutionContext,
    *,
    received_ms: int,
    received_ns: int,
    cancelled: Callable[[], bool] = lambda: False,
) -> ExecutionReport:
    """Run one paper triangle to its single report; never raises for exchange or model outcomes."""
    timeline = Timeline(signal, received_ms, received_ns)
    book_tops = tuple(book_top(book) for book in signal.books)

    def report(status: Status, error: str = "", outcome: object = None, first_order_ms: float = 0.0) -> ExecutionReport:
        total_ms = timeline.mark("execution_complete")
        fills = getattr(outcome, "fills", ())
        effective_bps = round(getattr(outcome, "effective_bps", 0.0), 3)
        return ExecutionReport(
            correlation_id=signal.correlation_id,
            status=status,
            mode="paper",
            fill_model=context.fill_model,
            triangle=signal.triangle_key,
            primary_quote=signal.primary_quote,
            predicted_bps=signal.predicted_bps,
            effective_bps=effective_bps,
            profit=getattr(outcome, "profit", _D0),
            spent=getattr(outcome, "spent", _D0),
            returned=getattr(outcome, "returned", _D0),
            ts_ms=int(time.time() * 1000),
            book_ts_ms=signal.book_ts_ms,
            signal_ts_ms=signal.ts_ms,
            received_ts_ms=received_ms,
            first_order_ms=first_order_ms,
            total_ms=total_ms,
            error=error,
            worker=context.worker,
            host=context.host,
            fills=tuple(fills),
            book_tops=book_tops,
            timings=tuple(timeline.steps),
            edge=attribute(signal, fills, effective_bps) if outcome is not None else EdgeBreakdown(),
        )

    if cancelled():
        return report(Status.ABORTED, "cancelled")
    fired_ns = time.monotonic_ns()
    first_order_ms = ms_since(received_ns, fired_ns)
    for index in range(3):
        timeline.mark(f"leg{index}_order_fired", fired_ns)
    results = await asyncio.gather(
        *(_order_test(client, leg, index, signal.correlation_id) for index, leg in enumerate(signal.legs)),
        return_exceptions=True,
    )
    order_ids: list[str] = []
    latencies: list[float] = []
    for index, result in enumerate(results):
        if isinstance(result, BaseException):
            return report(Status.FAILED, _describe_failure(index, result), first_order_ms=first_order_ms)
        order_id, answered_ns = result
        order_ids.append(order_id)
        latencies.append(ms_since(fired_ns, answered_ns))
        timeline.mark(f"leg{index}_fill_received", answered_ns)
    if cancelled():
        return report(Status.ABORTED, "cancelled", first_order_ms=first_order_ms)
    try:
        outcome = simulate_triangle(signal, context.fill_model, order_ids=order_ids, latencies_ms=latencies)
    except PaperAbort as abort:
        return report(Status.ABORTED, f"{abort.reason} (leg {abort.leg})", first_order_ms=first_order_ms)
    return report(Status.FILLED, outcome=outcome, first_order_ms=first_order_ms)


def _describe_failure(index: int, exc: BaseException) -> str:
    if isinstance(exc, KucoinError):
        return f"leg {index}: {exc}"
    return f"leg {index}: {type(exc).__name__}: {exc}"
