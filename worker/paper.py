"""One triangle, paper mode: three order tests in one round trip, then fills simulated from the book.

The seed sent its three order tests one after another; their sizes are fixed by the signal, so
they are independent and go out concurrently here (one round trip instead of three). Every path
ends in exactly one report: filled, failed (with the exchange's reason) or aborted (with why).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

from shared import clock
from shared.kucoin.errors import KucoinError
from shared.kucoin.rest import KucoinRest
from shared.report import EdgeBreakdown, ExecutionReport, Status
from shared.signal import Leg, Signal
from worker.attribution import attribute
from worker.context import (
    ExecutionContext,
    Timeline,
    book_top,
    client_oid,
    exchange_error_code,
    ms_since,
)
from worker.fill_model import PaperAbort, simulate_triangle

__all__ = ["execute_paper"]

_D0 = Decimal(0)


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

    def report(status: Status, error: str = "", outcome: object = None, first_order_ms: float = 0.0,
               error_code: str = "") -> ExecutionReport:
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
            ts_ms=clock.wall_ms(),
            book_ts_ms=signal.book_ts_ms,
            signal_ts_ms=signal.ts_ms,
            received_ts_ms=received_ms,
            first_order_ms=first_order_ms,
            total_ms=total_ms,
            error=error,
            error_code=error_code,
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
            return report(Status.FAILED, _describe_failure(index, result), first_order_ms=first_order_ms,
                          error_code=exchange_error_code(result))
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
