"""Reconciliation: resolve, at the exchange, every journaled order whose outcome nobody knows.

Why: a placement whose answer was lost is resolved by the worker for `resolve_timeout_s`; when
that gives up (the report says `stranded` with the order unknown), or when the worker or its
supervisor died mid-execution (`lost`, or a journal left `running`), the account may hold what
no report mentions. Like Nautilus Trader's reconciliation against the venue, a background pass
(every `reconcile_interval_s`, the first at start-up) reads every journal and, for each one that
still has orders `placing`/`unknown` and is no longer being executed (no lease, or a lease this
supervisor holds only because of those orders), queries each such order by its clientOid — each
query paid from the fleet's rate budget (weight 2), never placing anything. Once every order of
the journal is known it publishes one `reconciled` report carrying the whole execution's true
amounts (its own publish-once marker; `corrects` names the status of the report it replaces),
closes the journal (state done, status reconciled, TTL) and releases the held lease.

An order not found is taken as never placed only once the journal has been quiet for
`resolve_timeout_s + fill_timeout_s` (a request in flight could still arrive); an order found
still active, or a query that fails, is left for the next pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from decimal import Decimal

import structlog
from redis.exceptions import RedisError

from shared import clock
from shared.kucoin.errors import InvalidOrder, KucoinError
from shared.kucoin.rest import KucoinRest
from shared.report import ExecutionReport, Status
from shared.settings import Settings
from shared.stopping import Stopping
from shared.store.journal import Journal, SettledOrder, journal_legs, unresolved_slots
from shared.store.ratebudget import RateBudget
from shared.store.registry import Registry
from shared.store.reports import ReportPublisher

__all__ = ["Reconciler", "journal_report"]

log = structlog.get_logger(__name__)

_QUERY_WEIGHT = 2  # GET /api/v1/hf/orders/client-order/{clientOid}
_D0 = Decimal(0)


class Reconciler:
    """One per supervisor in live mode; `run()` is its background loop, `hold()` hands it a lease
    kept for a dead worker's unresolved orders, `pass_once()` is one reconciliation pass."""

    def __init__(self, settings: Settings, client: KucoinRest, journal: Journal, registry: Registry,
                 budget: RateBudget, publisher: ReportPublisher, host: str,
                 release: Callable[[str, int, str], None]) -> None:
        self._settings = settings
        self._client = client
        self._journal = journal
        self._registry = registry
        self._budget = budget
        self._publisher = publisher
        self._host = host
        self._release = release
        self._held: dict[str, int] = {}  # correlation id -> token of a lease kept for its unresolved orders
        self._quiet_ms = int((settings.resolve_timeout_s + settings.fill_timeout_s) * 1000)
        self.reconciled = 0

    def hold(self, correlation_id: str, token: int) -> None:
        """A dead worker's lease, kept while its orders are unresolved: released once they are."""
        self._held[correlation_id] = token

    async def run(self, stopping: Stopping) -> None:
        while not stopping.is_set():
            try:
                await self.pass_once()
            except (RedisError, OSError) as exc:
                log.debug("reconcile_pass_failed", error=str(exc))
            await stopping.pause(self._settings.reconcile_interval_s)

    async def pass_once(self) -> int:
        """Reconcile what can be; returns how many executions were reconciled in this pass."""
        leased = {lease.lease_id for lease in await self._registry.leases()}
        now_ms = clock.redis_ms()  # journals are stamped on Redis's clock by whichever host wrote them
        reconciled = 0
        for cid in await self._journal.ids():
            if cid in leased and cid not in self._held:
                continue  # being executed (here or by a live supervisor elsewhere)
            fields = await self._journal.read(cid)
            quiet = now_ms - int(fields.get("updated_ms") or 0) >= self._quiet_ms
            # orders unknown, or a journal left running by a worker or supervisor that is gone
            if unresolved_slots(fields) or (fields.get("state") == "running" and quiet):
                outcome = await self._reconcile(cid, fields, quiet)
                if outcome is None:
                    break  # the rate budget is spent: the next pass goes on
                reconciled += outcome
        return reconciled

    async def _reconcile(self, cid: str, fields: Mapping[str, str], quiet: bool) -> bool | None:
        """Query each unresolved order; once all are known, report and close. True: reconciled,
        False: something is not known yet (the next pass asks again), None: no budget left."""
        settled: list[SettledOrder] = []
        for slot in unresolved_slots(fields):
            if not await self._budget.take(_QUERY_WEIGHT):
                return None
            found = await self._query(fields[f"{slot}_client_oid"], fields[f"{slot}_pair"], slot, quiet)
            if found is None:
                return False
            settled.append(found)
        closed = {**fields, **{name: value for order in settled for name, value in order.fields().items()}}
        corrects = (fields.get("status") if fields.get("state") == "done" else "") or str(Status.LOST)
        await self._publisher.publish(self._report(cid, closed, corrects))
        await self._journal.close(cid, str(Status.RECONCILED), settled)
        self.reconciled += 1
        log.warning("execution_reconciled", correlation_id=cid, corrects=corrects,
                    orders={order.slot: order.state for order in settled})
        token = self._held.pop(cid, None)
        if token is not None:
            self._release(cid, token, str(Status.RECONCILED))
        return True

    async def _query(self, client_oid: str, pair: str, slot: str, quiet: bool) -> SettledOrder | None:
        """What the exchange says this order did; None when that is not known yet."""
        try:
            order = await self._client.get_order_by_client_oid(client_oid, pair)
        except InvalidOrder as exc:  # not at the exchange; final only once nothing can still arrive
            return SettledOrder(slot, "rejected", f"not at the exchange ({exc.msg or exc.code})") if quiet else None
        except (KucoinError, OSError, asyncio.TimeoutError) as exc:
            log.info("reconcile_query_failed", client_oid=client_oid, error=str(exc))
            return None
        if order.active:
            return None
        return SettledOrder(slot, "done", "", order.id, order.deal_size, order.deal_funds, order.fee,
                            order.fee_currency)

    def _report(self, cid: str, fields: Mapping[str, str], corrects: str) -> ExecutionReport:
        return journal_report(cid, fields, Status.RECONCILED, self._settings.mode, self._host,
                              f"reconciled at the exchange; replaces the {corrects} report", corrects)


def journal_report(cid: str, fields: Mapping[str, str], status: Status, mode: str, host: str, error: str,
                   corrects: str = "", fill_model: str = "exchange") -> ExecutionReport:
    """A report of what a journal says the execution's orders moved (a dead worker's `lost`, or
    `reconciled`): legs and unwinds as fields, spent/returned/profit from them."""
    fills, unwinds = journal_legs(fields)
    spent = fills[0].spent if fills else _D0
    returned = (fills[2].received if len(fills) == 3 else _D0) + sum((u.recovered for u in unwinds), _D0)
    profit = returned - spent
    return ExecutionReport(
        correlation_id=cid, status=status, mode=mode, fill_model=fill_model,
        triangle=tuple(filter(None, fields.get("triangle", "").split(","))),
        primary_quote=fields.get("primary_quote", ""), predicted_bps=0.0,
        effective_bps=round(float(profit / spent * 10_000), 3) if spent else 0.0, profit=profit, spent=spent,
        returned=returned, ts_ms=clock.wall_ms(), book_ts_ms=0, signal_ts_ms=0, received_ts_ms=0,
        first_order_ms=0.0, total_ms=0.0, error=error, worker="", host=host, fills=fills, unwinds=unwinds,
        corrects=corrects,
    )
