"""One live triangle in the parallel strategy: the three legs at once, each spending inventory.

The account holds inventory in all three currencies, so no leg waits for another's delivery:
each is sized from the signal (its `order_param`) and all three are placed concurrently — the
triangle costs one round trip instead of three. The registry's grant already claimed what each
leg spends (`live_strategy parallel`: per currency, against the inventory held), so no other
execution spends the same coins; the worker first checks its own balance view (private WebSocket
`/account/balance`, seeded by the accounts GET at every connect) and places nothing the view
does not show available.

Never twice, as in the sequential strategy: every order has its deterministic clientOid and the
journal records all three intents (one write) before any is placed.

The report's `inventory` is the change per currency. When every leg fills it is the triangle's
profit, spread over the currencies; when a leg fails the mix is off: `imbalanced` with the
amounts, unless `rebalance = convert` market-converts it back (status `unwound`): one failed leg
is run once more on its own pair with what the other legs delivered of its input currency, or,
when only one leg filled, that leg is reversed. A partly filled leg or an order whose outcome is
unknown is never converted (what it moved is not known, or not enough to trade): `imbalanced`,
or `stranded` for an unknown one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import structlog
from redis.exceptions import RedisError

from shared.money import fmt_decimal
from shared.report import EdgeBreakdown, ExecutionReport, LegFill, Status, Unwind
from shared.signal import Leg, Signal
from shared.store import keys
from shared.store.journal import SettledOrder, leg_slot, unwind_slot
from worker.attribution import attribute, snapshot_prices
from worker.context import ExecutionContext, Timeline, book_top, client_oid
from worker.live import LiveRuntime, _leg_fill, _partial, _placing, _settled, _spec_for, unwind_client_oid
from worker.live_order import OrderOutcome, OrderSpec

__all__ = ["execute_parallel", "leg_need"]

log = structlog.get_logger(__name__)

_ZERO = Decimal(0)
_BPS = Decimal(10_000)


def leg_need(leg: Leg, spec: OrderSpec) -> Decimal:
    """What placing `spec` takes from the balance: a funds buy's taker fee is held on top."""
    return spec.amount * (1 + leg.fee_rate) if spec.by_funds else spec.amount


def _empty_fill(index: int, leg: Leg) -> LegFill:
    """A failed leg's slot between filled ones: nothing moved."""
    return LegFill(leg=index, pair=leg.pair, side=leg.side, order_id="", input_currency=leg.input_currency,
                   output_currency=leg.output_currency, spent=_ZERO, received=_ZERO, filled_size=_ZERO,
                   filled_funds=_ZERO, avg_price=_ZERO, fee=_ZERO, fee_currency="", latency_ms=0.0)


class _ParallelTriangle:
    def __init__(self, signal: Signal, runtime: LiveRuntime, context: ExecutionContext, received_ms: int,
                 received_ns: int, cancelled: Callable[[], bool]) -> None:
        self.signal, self.runtime, self.context = signal, runtime, context
        self.received_ms = received_ms
        self.timeline = Timeline(signal, received_ms, received_ns)
        self.cancelled = cancelled
        self.rebalance = runtime.rebalance
        self.cid = signal.correlation_id
        self.fills: list[LegFill] = []
        self.unwinds: list[Unwind] = []
        self.first_order_ms = 0.0
        self.error_code = ""

    async def run(self) -> ExecutionReport:
        legs = self.signal.legs
        if self.cancelled():
            return self.report(Status.ABORTED, "cancelled")
        specs = []
        for index, leg in enumerate(legs):
            spec = _spec_for(leg, client_oid(self.cid, index), leg.order_param, first=True)
            if spec is None:
                return self.report(Status.FAILED, f"leg {index}: {leg.order_param} is below what can be placed")
            specs.append(spec)
        short = self.short_of_balance(specs)
        if short:
            return self.report(Status.FAILED, f"no_inventory: {short}; nothing placed")
        try:
            placings = [_placing(leg_slot(i), spec) for i, spec in enumerate(specs)]
            if not await self.runtime.journal.begin(self.cid, self.signal.triangle_key, self.signal.primary_quote,
                                                    *placings):
                return self.report(Status.FAILED, "this execution is already journaled: nothing placed twice")
        except (RedisError, OSError) as exc:
            return self.report(Status.FAILED, f"journal unavailable, nothing placed: {exc}")
        outcomes = await asyncio.gather(*(self.runtime.orders.run(spec) for spec in specs))
        return await self.conclude(list(outcomes))

    def short_of_balance(self, specs: list[OrderSpec]) -> str:
        """What the balance view does not show available ("" if it shows all of it)."""
        ws = self.runtime.ws
        needs: dict[str, Decimal] = {}
        for leg, spec in zip(self.signal.legs, specs, strict=True):
            needs[leg.input_currency] = needs.get(leg.input_currency, _ZERO) + leg_need(leg, spec)
        for currency, need in needs.items():
            balance = ws.balance(currency) if ws is not None else None
            available = balance.available if balance is not None else _ZERO
            if available < need:
                return f"{currency} {fmt_decimal(need)} needed, {fmt_decimal(available)} available"
        return ""

    async def conclude(self, outcomes: list[OrderOutcome]) -> ExecutionReport:
        settled: list[SettledOrder] = []
        errors: list[str] = []
        filled: dict[int, LegFill] = {}
        unknown = partial = False
        for index, outcome in enumerate(outcomes):
            settled.append(_settled(leg_slot(index), outcome))
            fired_ms = self.timeline.mark(f"leg{index}_order_fired", outcome.fired_ns)
            self.first_order_ms = fired_ms if index == 0 else min(self.first_order_ms, fired_ms)
            order = outcome.order
            if order is None or order.deal_size == 0:
                errors.append(f"leg {index}: {outcome.error or 'nothing filled'}")
                unknown = unknown or outcome.unknown
                self.error_code = self.error_code or outcome.error_code
                continue
            if outcome.matched_ns:
                self.timeline.mark(f"leg{index}_matched", outcome.matched_ns)
            self.timeline.mark(f"leg{index}_fill_received", outcome.settled_ns)
            filled[index] = _leg_fill(index, outcome, order)
            if _partial(order) or outcome.error:
                partial = True
                errors.append(f"leg {index}: {outcome.error or 'filled in part'}")
        last = max(filled, default=-1)
        self.fills = [filled.get(i) or _empty_fill(i, self.signal.legs[i]) for i in range(last + 1)]
        if not filled and not unknown:
            status = Status.FAILED
        elif unknown:
            status = Status.STRANDED  # what the unknown order moved is not known: never converted
        elif len(filled) == 3 and not partial:
            status = Status.FILLED
        else:
            status = Status.IMBALANCED
            if self.rebalance == "convert" and not partial:
                conversion = await self.convert(filled)
                if conversion is not None:
                    unwind, outcome, complete = conversion
                    settled.append(_settled(unwind_slot(unwind.leg), outcome))
                    if unwind.order_id:
                        self.unwinds.append(unwind)
                    status = Status.UNWOUND if complete else Status.IMBALANCED
        try:
            await self.runtime.journal.close(self.cid, str(status), settled)
        except (RedisError, OSError) as exc:
            log.warning("journal_write_failed", correlation_id=self.cid, error=str(exc))
        return self.report(status, "; ".join(errors))

    async def convert(self, filled: dict[int, LegFill]) -> tuple[Unwind, OrderOutcome, bool] | None:
        """Market-convert the mix back: re-run the one failed leg with what the others delivered of
        its input, or reverse the one leg that filled. None when no order can be placed."""
        legs = self.signal.legs
        if len(filled) == 2:
            index = next(i for i in range(3) if i not in filled)
            leg = legs[index]
            amount = self.inventory().get(leg.input_currency, _ZERO)
        else:
            index = next(iter(filled))
            forward = legs[index]
            leg = replace(forward, side="sell" if forward.side == "buy" else "buy")
            amount = filled[index].received
        if amount <= 0:
            return None
        spec = _spec_for(leg, unwind_client_oid(self.cid, index), amount, first=False)
        if spec is None:
            return None
        await self.journal_intent(unwind_slot(index), spec)
        outcome = await self.runtime.orders.run(spec)
        order = outcome.order
        if order is None or order.deal_size == 0:
            log.error("rebalance_failed", correlation_id=self.cid, leg=index, error=outcome.error)
            return _unwind(index, leg.input_currency, amount, spec, "", _ZERO, _ZERO, _ZERO, "",
                           leg.output_currency), outcome, False
        fill = _leg_fill(index, outcome, order)
        unwind = _unwind(index, fill.input_currency, amount, spec, order.id, fill.spent, fill.received, fill.fee,
                         fill.fee_currency, fill.output_currency)
        return unwind, outcome, not _partial(order) and not outcome.error

    async def journal_intent(self, slot: str, spec: OrderSpec) -> None:
        try:
            await self.runtime.journal.place(self.cid, _placing(slot, spec), None)
        except (RedisError, OSError) as exc:
            log.warning("journal_write_failed", correlation_id=self.cid, error=str(exc))

    def inventory(self) -> dict[str, Decimal]:
        """Change per currency: received − spent over the legs and the conversion."""
        change: dict[str, Decimal] = {}
        for fill in self.fills:
            change[fill.input_currency] = change.get(fill.input_currency, _ZERO) - fill.spent
            change[fill.output_currency] = change.get(fill.output_currency, _ZERO) + fill.received
        for unwind in self.unwinds:
            change[unwind.currency] = change.get(unwind.currency, _ZERO) - unwind.spent
            out = unwind.recovered_currency
            change[out] = change.get(out, _ZERO) + unwind.recovered
        return change

    def report(self, status: Status, error: str = "") -> ExecutionReport:
        signal, fills, quote = self.signal, self.fills, self.signal.primary_quote
        spent = sum((f.spent for f in fills if f.input_currency == quote), _ZERO) + sum(
            (u.spent for u in self.unwinds if u.currency == quote), _ZERO)
        returned = sum((f.received for f in fills if f.output_currency == quote), _ZERO) + sum(
            (u.recovered for u in self.unwinds if u.recovered_currency == quote), _ZERO)
        profit = returned - spent
        effective_bps = round(float(profit / spent * _BPS), 3) if spent else 0.0
        total_ms = self.timeline.mark("execution_complete")
        edge = EdgeBreakdown()
        if status == Status.FILLED:
            edge = attribute(signal, fills, effective_bps, snapshot_prices(signal, fills))
        inventory = tuple(sorted((c, v) for c, v in self.inventory().items()))
        return ExecutionReport(
            correlation_id=self.cid, status=status, mode="live", fill_model="exchange",
            triangle=signal.triangle_key, primary_quote=quote, predicted_bps=signal.predicted_bps,
            effective_bps=effective_bps, profit=profit, spent=spent, returned=returned,
            ts_ms=int(time.time() * 1000), book_ts_ms=signal.book_ts_ms, signal_ts_ms=signal.ts_ms,
            received_ts_ms=self.received_ms, first_order_ms=self.first_order_ms, total_ms=total_ms, error=error,
            worker=self.context.worker, host=self.context.host, fills=tuple(fills),
            book_tops=tuple(book_top(book) for book in signal.books), timings=tuple(self.timeline.steps),
            edge=edge, unwinds=tuple(self.unwinds), error_code=self.error_code, strategy="parallel",
            inventory=inventory,
        )


def _unwind(leg: int, currency: str, amount: Decimal, spec: OrderSpec, order_id: str, spent: Decimal,
            recovered: Decimal, fee: Decimal, fee_currency: str, recovered_currency: str) -> Unwind:
    return Unwind(leg=leg, currency=currency, stranded=amount, pair=spec.pair, side=spec.side, order_id=order_id,
                  spent=spent, recovered=recovered, fee=fee, fee_currency=fee_currency,
                  recovered_currency=recovered_currency)


async def execute_parallel(
    signal: Signal,
    runtime: LiveRuntime,
    context: ExecutionContext,
    *,
    received_ms: int,
    received_ns: int,
    cancelled: Callable[[], bool] = lambda: False,
) -> ExecutionReport:
    """Run one live triangle with its three legs at once; one report, never raises for exchange outcomes."""
    report = await _ParallelTriangle(signal, runtime, context, received_ms, received_ns, cancelled).run()
    if report.fills and runtime.ws is not None:
        await _publish_view(runtime, {leg.input_currency for leg in signal.legs})
    return report


async def _publish_view(runtime: LiveRuntime, currencies: set[str]) -> None:
    """Tell the registry what the balance view shows available of the currencies just traded, so
    the next parallel claims stay within what the account holds (the registry takes the lower of
    this and `target:<CUR>`)."""
    assert runtime.ws is not None
    seen = {c: fmt_decimal(b.available) for c in currencies if (b := runtime.ws.balance(c)) is not None}
    if not seen:
        return
    try:
        await runtime.journal.redis.hset(keys.INVENTORY, mapping=seen)
    except (RedisError, OSError) as exc:  # the claims then rest on the targets (and the last view)
        log.warning("inventory_publish_failed", error=str(exc))
