"""One live triangle as one recoverable transaction: journal, sequential legs, unknown outcomes, unwind.

Legs run strictly in sequence. Leg 0 spends the signal's own `order_param`; leg i+1 spends what
leg i actually delivered net of fees, as the order query reports it, rounded down to the pair's
increment (a chained buy keeps room for its fee, charged on top: `funds = held / (1 + rate)`).
Every order has a deterministic clientOid — `client_oid(cid, leg)`, or `unwind_client_oid(cid,
leg)` for an unwind — so no retry or redelivery can trade twice, and the journal
(`shared.store.journal`) records each order before it is placed and what it did after: one Redis write
per leg, which carries the previous order's result and the next order's intent together. An
execution whose journal already exists is refused without placing anything; if the journal
cannot be opened, nothing is placed either. A later journal write that fails is logged and the
triangle goes on: finishing it strands less than stopping.

When leg 1 or leg 2 fails, is cancelled before it runs, or fills only partly, the input it did
not spend is stranded. The `unwind` policy (default) market-converts each stranded currency
back to the primary quote on the triangle's pair that links them, and the report is `unwound`
if every such order filled completely, `stranded` otherwise; the `hold` policy keeps it
(`stranded`). A leg 1 partial fill still lets leg 2 spend what did fill. Statuses: `filled`
(three legs, nothing stranded), `failed` (leg 0 did nothing), `aborted` (cancelled before leg 0),
`unwound`, `stranded` — also for an order whose outcome stayed unknown, which is never unwound
because what it spent is not known.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal

import aiohttp
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from shared import clock
from shared.kucoin.constants import INSUFFICIENT_BALANCE
from shared.kucoin.models import Order
from shared.kucoin.rest import KucoinRest
from shared.kucoin.ws import PrivateWs
from shared.money import fmt_decimal, round_down
from shared.report import EdgeBreakdown, ExecutionReport, LegFill, OrderRecord, Status, Unwind, order_movement
from shared.settings import Settings
from shared.signal import Leg, Signal
from shared.store.journal import (
    Journal,
    PlacingOrder,
    SettledOrder,
    leg_slot,
    unwind_slot,
)
from worker.attribution import attribute, snapshot_prices
from worker.context import ExecutionContext, Timeline, book_top, client_oid, ms_since
from worker.live_order import OrderOutcome, OrderRunner, OrderSpec

__all__ = ["LiveRuntime", "open_live_runtime", "execute_live", "unwind_client_oid"]

log = structlog.get_logger(__name__)

_ZERO = Decimal(0)
_BPS = Decimal(10_000)
_FILL_MODEL = "exchange"  # live fills are the exchange's, not a model's
_WS_START_TIMEOUT_S = 5.0


def unwind_client_oid(correlation_id: str, leg: int) -> str:
    """Deterministic id of the order converting leg `leg`'s stranded input back (≤ 40 chars)."""
    return f"{client_oid(correlation_id, leg)}-u"


@dataclass(frozen=True, slots=True)
class LiveRuntime:
    """What a worker holds for live executions."""

    orders: OrderRunner
    journal: Journal
    unwind_policy: str
    ws: PrivateWs | None = None
    balance_wait_ms: int = 0  # 0: a leg refused for insufficient balance is not retried (the service sets 2000)
    rebalance: str = "hold"  # parallel strategy: "convert" market-converts a failed leg's imbalance back

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def open_live_runtime(
    client: KucoinRest, session: aiohttp.ClientSession, redis: aioredis.Redis, settings: Settings
) -> LiveRuntime:
    """Open the worker's private WebSocket (waiting briefly for it) and build the live machinery.

    A socket still down after the wait keeps reconnecting in the background; legs then learn
    their fills from the sync answer or order queries, so the worker starts anyway.
    """
    ws = PrivateWs(client, session)
    await ws.start()
    if not await ws.wait_connected(_WS_START_TIMEOUT_S):
        log.warning("private_ws_not_connected_at_start", timeout_s=_WS_START_TIMEOUT_S)
    orders = OrderRunner(client, ws, fills=settings.live_fills, fill_timeout_s=settings.fill_timeout_s,
                         resolve_timeout_s=settings.resolve_timeout_s)
    return LiveRuntime(orders, Journal(redis), settings.unwind_policy, ws, settings.balance_wait_ms,
                       settings.rebalance)


def _leg_fill(index: int, outcome: OrderOutcome, order: Order) -> LegFill:
    """The account movement of a settled order, from the exchange's own figures (fee included)."""
    spec = outcome.spec
    input_currency, output_currency, spent, received = order_movement(
        spec.pair, spec.side, order.deal_size, order.deal_funds, order.fee, order.fee_currency)
    return LegFill(
        leg=index, pair=spec.pair, side=spec.side, order_id=order.id, input_currency=input_currency,
        output_currency=output_currency, spent=spent, received=received, filled_size=order.deal_size,
        filled_funds=order.deal_funds, avg_price=order.deal_funds / order.deal_size if order.deal_size else _ZERO,
        fee=order.fee, fee_currency=order.fee_currency, latency_ms=ms_since(outcome.fired_ns, outcome.settled_ns),
    )


def _partial(order: Order) -> bool:
    """The exchange cancelled part of the order: the book could not take all of it."""
    return order.cancelled_size > 0 or order.cancelled_funds > 0


def _spec_for(leg: Leg, oid: str, held: Decimal, first: bool) -> OrderSpec | None:
    """The order spending `held` of the leg's input; None when that is below what can be placed."""
    if leg.side == "buy":
        funds = held if first else held / (1 + leg.fee_rate)
        amount = round_down(funds, leg.quote_increment)
        ok = amount > 0
    else:
        amount = round_down(held, leg.base_increment)
        ok = amount > 0 and amount >= leg.base_min_size
    return OrderSpec(oid, leg.pair, leg.side, amount, leg.side == "buy") if ok else None


def _placing(slot: str, spec: OrderSpec) -> PlacingOrder:
    return PlacingOrder(slot, spec.client_oid, spec.pair, spec.side, spec.amount, spec.by_funds)


def _settled(slot: str, outcome: OrderOutcome) -> SettledOrder:
    order = outcome.order
    state = "unknown" if outcome.unknown else ("done" if order is not None else "rejected")
    if order is None:
        return SettledOrder(slot, state, outcome.error)
    return SettledOrder(slot, state, outcome.error, order.id, order.deal_size, order.deal_funds, order.fee,
                        order.fee_currency)


class _LiveTriangle:
    """The state of one execution while it runs; `run()` returns its single report."""

    def __init__(self, signal: Signal, runtime: LiveRuntime, context: ExecutionContext, received_ms: int,
                 received_ns: int, cancelled: Callable[[], bool]) -> None:
        self.signal = signal
        self.runtime = runtime
        self.context = context
        self.received_ms = received_ms
        self.timeline = Timeline(signal, received_ms, received_ns)
        self.cancelled = cancelled
        self.cid = signal.correlation_id
        self.fills: list[LegFill] = []
        self.unwinds: list[Unwind] = []
        self.held: dict[str, Decimal] = {}  # what this execution holds of each non-primary currency
        self.unsettled: SettledOrder | None = None  # the last order's result, written with the next journal entry
        self.partial_legs: set[int] = set()  # legs whose order the exchange filled only in part
        self.first_order_ms = 0.0
        self.error_code = ""  # the exchange's code for the leg that stopped the triangle, if it refused
        self.balance_waits = 0  # legs refused for insufficient balance that waited and ran once more
        self.sent: list[tuple[int, bool, OrderOutcome]] = []  # (leg, unwind, outcome) of every order sent

    async def run(self) -> ExecutionReport:
        signal, legs = self.signal, self.signal.legs
        if self.cancelled():
            return self.report(Status.ABORTED, "cancelled")
        spec = _spec_for(legs[0], client_oid(self.cid, 0), legs[0].order_param, first=True)
        if spec is None:
            return self.report(Status.FAILED, f"leg 0: {legs[0].order_param} is below what can be placed")
        try:
            first = _placing(leg_slot(0), spec)
            if not await self.runtime.journal.begin(self.cid, signal.triangle_key, signal.primary_quote, first):
                return self.report(Status.FAILED, "this execution is already journaled: nothing placed twice")
        except (RedisError, OSError) as exc:
            return self.report(Status.FAILED, f"journal unavailable, nothing placed: {exc}")
        error, stop_leg, unknown = "", 3, False
        for index, leg in enumerate(legs):
            if index > 0:
                if self.cancelled():
                    error, stop_leg = "cancelled", index
                    break
                spec = _spec_for(leg, client_oid(self.cid, index), self.held.get(leg.input_currency, _ZERO), False)
                if spec is None:
                    held = fmt_decimal(self.held.get(leg.input_currency, _ZERO))
                    error, stop_leg = f"leg {index}: {held} {leg.input_currency} is below what can be placed", index
                    break
                await self.journal(_placing(leg_slot(index), spec))
            outcome = await self.place(spec, index)
            if index > 0 and outcome.error_code == INSUFFICIENT_BALANCE and self.runtime.balance_wait_ms > 0:
                outcome = await self.wait_for_balance_and_retry(index, leg, spec)
            self.unsettled = _settled(leg_slot(index), outcome)
            fired_ms = self.timeline.mark(f"leg{index}_order_fired", outcome.fired_ns)
            if index == 0:
                self.first_order_ms = fired_ms
            order = outcome.order
            if order is None or order.deal_size == 0:
                error, stop_leg, unknown = f"leg {index}: {outcome.error or 'nothing filled'}", index, outcome.unknown
                self.error_code = outcome.error_code
                break
            if outcome.matched_ns:
                self.timeline.mark(f"leg{index}_matched", outcome.matched_ns)
            self.timeline.mark(f"leg{index}_fill_received", outcome.settled_ns)
            self.record(_leg_fill(index, outcome, order))
            if _partial(order):
                self.partial_legs.add(index)
            if outcome.error:  # settled as far as we could tell, but not cleanly
                error, stop_leg = f"leg {index}: {outcome.error}", index + 1
                break
        return await self.conclude(error, stop_leg, unknown)

    async def place(self, spec: OrderSpec, leg: int, unwind: bool = False) -> OrderOutcome:
        """Run one order and keep its outcome for the execution log (written after the legs)."""
        outcome = await self.runtime.orders.run(spec)
        self.sent.append((leg, unwind, outcome))
        return outcome

    async def wait_for_balance_and_retry(self, index: int, leg: Leg, spec: OrderSpec) -> OrderOutcome:
        """The exchange refused a chained leg for insufficient balance (so nothing was placed): what
        the previous leg delivered may not be credited yet. Wait for the balance push showing it
        (at most `balance_wait_ms`; at once without a connected socket, which gets no pushes), then
        place the same order, same clientOid, once more — the seed waited for the balance first."""
        self.balance_waits += 1
        needed = spec.amount * (1 + leg.fee_rate) if spec.by_funds else spec.amount  # a buy's fee is on top
        ws = self.runtime.ws
        seen = False
        if ws is not None and ws.connected:
            seen = await ws.wait_available(leg.input_currency, needed, self.runtime.balance_wait_ms / 1000)
        log.info("leg_balance_wait", correlation_id=self.cid, pair=spec.pair, currency=leg.input_currency,
                 needed=fmt_decimal(needed), seen=seen)
        return await self.place(spec, index)

    def record(self, fill: LegFill) -> None:
        self.fills.append(fill)
        quote = self.signal.primary_quote
        if fill.input_currency != quote:
            self.held[fill.input_currency] = self.held.get(fill.input_currency, _ZERO) - fill.spent
        if fill.output_currency != quote:
            self.held[fill.output_currency] = self.held.get(fill.output_currency, _ZERO) + fill.received

    async def conclude(self, error: str, stop_leg: int, unknown: bool) -> ExecutionReport:
        """Decide what is stranded, run the policy on it, journal the end, and report."""
        if not self.fills and not unknown:
            await self.finish(Status.FAILED)
            return self.report(Status.FAILED, error)
        stranded = []
        for index in (1, 2):
            currency = self.signal.legs[index].input_currency
            leftover = self.held.get(currency, _ZERO)
            if leftover > 0 and (index >= stop_leg or index in self.partial_legs):
                stranded.append((index, currency, leftover))
        if unknown:
            status = Status.STRANDED
            self.unwinds = [_held(index, currency, amount) for index, currency, amount in stranded]
        elif not stranded:
            status = Status.FILLED if len(self.fills) == 3 and not error else Status.STRANDED
        else:
            status = Status.UNWOUND
            for index, currency, amount in stranded:
                unwind, complete = await self.unwind(index, currency, amount)
                self.unwinds.append(unwind)
                status = status if complete else Status.STRANDED
        await self.finish(status)
        return self.report(status, error)

    async def unwind(self, leg: int, currency: str, amount: Decimal) -> tuple[Unwind, bool]:
        """Apply the policy to `amount` of `currency`; returns the record and whether it all went back."""
        held = _held(leg, currency, amount)
        if self.runtime.unwind_policy == "hold":
            return held, False
        quote = self.signal.primary_quote
        link = next((l for l in self.signal.legs if {l.base, l.quote} == {currency, quote}), None)
        if link is None:  # a chain through the primary quote always has one; refuse to guess otherwise
            return held, False
        # sell the stranded base, or buy the primary quote (the pair's base) with the stranded quote
        side = "sell" if link.base == currency else "buy"
        spec = _spec_for(replace(link, side=side), unwind_client_oid(self.cid, leg), amount, first=False)
        if spec is None:
            return held, False
        await self.journal(_placing(unwind_slot(leg), spec))
        outcome = await self.place(spec, leg, unwind=True)
        self.unsettled = _settled(unwind_slot(leg), outcome)
        order = outcome.order
        if order is None or order.deal_size == 0:
            log.error("unwind_failed", correlation_id=self.cid, leg=leg, error=outcome.error)
            return held, False
        fill = _leg_fill(leg, outcome, order)
        self.held[currency] = amount - fill.spent
        return Unwind(leg=leg, currency=currency, stranded=amount, pair=spec.pair, side=spec.side,
                      order_id=order.id, spent=fill.spent, recovered=fill.received, fee=fill.fee,
                      fee_currency=fill.fee_currency), not _partial(order) and not outcome.error

    async def journal(self, placing: PlacingOrder) -> None:
        """Journal the next order's intent with the previous order's result."""
        try:
            await self.runtime.journal.place(self.cid, placing, self.unsettled)
        except (RedisError, OSError) as exc:
            log.warning("journal_write_failed", correlation_id=self.cid, error=str(exc))

    async def finish(self, status: Status) -> None:
        try:
            await self.runtime.journal.finish(self.cid, str(status), self.unsettled)
        except (RedisError, OSError) as exc:
            log.warning("journal_write_failed", correlation_id=self.cid, error=str(exc))

    def report(self, status: Status, error: str = "") -> ExecutionReport:
        signal, fills = self.signal, self.fills
        spent = fills[0].spent if fills else _ZERO
        returned = (fills[2].received if len(fills) == 3 else _ZERO) + sum((u.recovered for u in self.unwinds), _ZERO)
        profit = returned - spent
        effective_bps = round(float(profit / spent * _BPS), 3) if spent else 0.0
        total_ms = self.timeline.mark("execution_complete")
        edge = EdgeBreakdown()  # only a completed triangle has an edge to attribute
        if status == Status.FILLED:
            edge = attribute(signal, fills, effective_bps, snapshot_prices(signal, fills))
        return ExecutionReport(
            correlation_id=self.cid, status=status, mode="live", fill_model=_FILL_MODEL,
            triangle=signal.triangle_key, primary_quote=signal.primary_quote, predicted_bps=signal.predicted_bps,
            effective_bps=effective_bps, profit=profit, spent=spent, returned=returned,
            ts_ms=clock.wall_ms(), book_ts_ms=signal.book_ts_ms, signal_ts_ms=signal.ts_ms,
            received_ts_ms=self.received_ms, first_order_ms=self.first_order_ms, total_ms=total_ms, error=error,
            worker=self.context.worker, host=self.context.host, fills=tuple(fills),
            book_tops=tuple(book_top(book) for book in signal.books), timings=tuple(self.timeline.steps),
            edge=edge, unwinds=tuple(self.unwinds), error_code=self.error_code, balance_waits=self.balance_waits,
            orders=tuple(_order_record(leg, unwind, outcome) for leg, unwind, outcome in self.sent),
            strategy="sequential",
        )


def _order_record(leg: int, unwind: bool, outcome: OrderOutcome) -> OrderRecord:
    """The execution log's view of one order sent (built with the report, after the legs)."""
    spec, order = outcome.spec, outcome.order
    if order is None:
        state = "unknown" if outcome.unknown else "rejected"
    else:
        state = "filled" if order.deal_size > 0 else "empty"
    return OrderRecord(
        client_oid=spec.client_oid, leg=leg, unwind=unwind, pair=spec.pair, side=spec.side, amount=spec.amount,
        by_funds=spec.by_funds, state=state, order_id=order.id if order is not None else "",
        filled_size=order.deal_size if order is not None else _ZERO,
        filled_funds=order.deal_funds if order is not None else _ZERO,
        fee=order.fee if order is not None else _ZERO, fee_currency=order.fee_currency if order is not None else "",
        latency_ms=ms_since(outcome.fired_ns, outcome.settled_ns), error=outcome.error,
        error_code=outcome.error_code, resolved=outcome.resolved,
    )


def _held(leg: int, currency: str, amount: Decimal) -> Unwind:
    """A stranded amount kept as is (hold policy, or nothing could be placed)."""
    return Unwind(leg=leg, currency=currency, stranded=amount, pair="", side="", order_id="", spent=_ZERO,
                  recovered=_ZERO, fee=_ZERO, fee_currency="")


async def execute_live(
    signal: Signal,
    runtime: LiveRuntime,
    context: ExecutionContext,
    *,
    received_ms: int,
    received_ns: int,
    cancelled: Callable[[], bool] = lambda: False,
) -> ExecutionReport:
    """Run one live triangle to its single report; never raises for exchange outcomes."""
    return await _LiveTriangle(signal, runtime, context, received_ms, received_ns, cancelled).run()
