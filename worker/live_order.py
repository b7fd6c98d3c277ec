"""One live market order, end to end: place it once, learn that it is done, query what it did.

Placement is never repeated. A placement whose outcome is unknown (timeout, dropped connection,
5xx: `UnknownOutcome`), or one refused as a duplicate clientOid (an earlier attempt with this
deterministic id got through), is resolved by querying the order by clientOid until it shows up
or `resolve_timeout_s` passes. Orders that consistently come back "not found" were not placed;
an exchange that never answers leaves the outcome unknown, and the caller must treat the money
as possibly moved.

How a leg learns its end is the `fills` choice (measured in bench/live_legs.py):
- "sync": `POST /hf/orders/sync` answers once the order is matched (status done), then one
  `GET` order brings the money (dealFunds, fee, feeCurrency) the sync answer lacks;
- "ws": `POST /hf/orders`, wait for the order's terminal private-WebSocket event, then the
  same `GET`. A lost event costs at most `fill_timeout_s` before the query decides.
Either way the money always comes from the order query: events and sync answers carry no fee.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import structlog

from shared.kucoin.errors import (
    DuplicateClientOid,
    KucoinError,
    OrderNotFound,
    UnknownOutcome,
)
from shared.kucoin.models import Order
from shared.kucoin.rest import KucoinRest
from shared.kucoin.ws import PrivateWs
from worker.context import exchange_error_code

__all__ = ["OrderSpec", "OrderOutcome", "OrderRunner"]

log = structlog.get_logger(__name__)

_FIRST_POLL_S = 0.005
_MAX_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """A market order to place: `amount` is quote funds when `by_funds`, else base size."""

    client_oid: str
    pair: str
    side: str
    amount: Decimal
    by_funds: bool


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What became of a spec: `order` as settled at the exchange (None if never placed or unknown).

    `unknown` is True when the exchange never told us whether the order exists: money may have
    moved. `error` explains anything short of a settled order (or an order still active at the
    deadline, whose partial state is in `order`); `error_code` is the exchange's code when it
    refused the placement (`worker.context.exchange_error_code`). Times are monotonic ns.
    """

    spec: OrderSpec
    order: Order | None
    error: str
    unknown: bool
    fired_ns: int
    settled_ns: int
    error_code: str = ""
    # "" when the exchange answered the placement; else what the query by clientOid found after
    # an unknown outcome: "found", "not found" or "no answer" (the execution log's `order_resolved`)
    resolved: str = ""
    # when the exchange first said the order is done (the sync answer), before the query that
    # brings its money; 0 when only the query said so (then `settled_ns` is that moment)
    matched_ns: int = 0


class _Settled(NamedTuple):
    """What placing and settling found, before the outcome is timed."""

    order: Order | None
    error: str
    unknown: bool
    error_code: str = ""
    resolved: str = ""
    matched_ns: int = 0


class OrderRunner:
    """Places and settles orders for one worker; `fills` is "sync" or "ws" (see module docstring)."""

    def __init__(
        self,
        client: KucoinRest,
        ws: PrivateWs | None,
        *,
        fills: str,
        fill_timeout_s: float,
        resolve_timeout_s: float,
    ) -> None:
        if fills not in ("sync", "ws"):
            raise ValueError(f"fills must be 'sync' or 'ws', got {fills!r}")
        self._client = client
        self._ws = ws
        self._fills = fills
        self._fill_timeout_s = fill_timeout_s
        self._resolve_timeout_s = resolve_timeout_s

    async def run(self, spec: OrderSpec) -> OrderOutcome:
        """Place `spec` once and settle it; never raises for exchange outcomes."""
        if self._ws is not None:
            self._ws.watch(spec.client_oid, spec.pair)
        fired_ns = time.monotonic_ns()
        try:
            settled = await self._place_and_settle(spec)
        finally:
            if self._ws is not None:
                self._ws.forget(spec.client_oid)
        return OrderOutcome(spec, settled.order, settled.error, settled.unknown, fired_ns, time.monotonic_ns(),
                            settled.error_code, settled.resolved, settled.matched_ns)

    async def _place_and_settle(self, spec: OrderSpec) -> _Settled:
        amount = {"funds": spec.amount} if spec.by_funds else {"size": spec.amount}
        order_id = ""
        done = False
        resolved = ""
        matched_ns = 0
        try:
            if self._fills == "sync":
                answer = await self._client.place_order_sync(spec.pair, spec.side, client_oid=spec.client_oid, **amount)
                order_id, done = answer.order_id, answer.status == "done"
                matched_ns = time.monotonic_ns() if done else 0
            else:
                ack = await self._client.place_order(spec.pair, spec.side, client_oid=spec.client_oid, **amount)
                order_id = ack.order_id
        except (UnknownOutcome, DuplicateClientOid) as exc:
            log.warning("placement_outcome_unknown", client_oid=spec.client_oid, error=str(exc))
            found, unknown = await self._resolve(spec)
            if found is None:
                reason = "no answer from the exchange" if unknown else "not found by clientOid"
                return _Settled(None, f"placement outcome unknown ({exc.msg or exc.code}); {reason}", unknown,
                                resolved="no answer" if unknown else "not found")
            order_id, resolved = found.id, "found"
            done = not found.active
        except KucoinError as exc:  # refused: nothing was placed
            return _Settled(None, str(exc), False, exchange_error_code(exc))
        if not done and self._fills == "ws" and self._ws is not None and self._ws.connected:
            await self._ws.wait_done(spec.client_oid, self._fill_timeout_s)
        order = await self._settle(order_id, spec.pair)
        if order is None:
            return _Settled(None, f"order {order_id} placed but its state could not be read", True, resolved=resolved)
        if order.active:
            return _Settled(order, f"order {order_id} still active after {self._fill_timeout_s} s", False,
                            resolved=resolved)
        return _Settled(order, "", False, resolved=resolved, matched_ns=matched_ns)

    async def _resolve(self, spec: OrderSpec) -> tuple[Order | None, bool]:
        """Query by clientOid until the order shows up or the deadline passes.

        Returns (order, unknown): (None, False) means every answer said "not found".
        """
        deadline = time.monotonic() + self._resolve_timeout_s
        pause_s = _FIRST_POLL_S
        unknown = True
        while True:
            try:
                return await self._client.get_order_by_client_oid(spec.client_oid, spec.pair), False
            except KucoinError as exc:
                # "order not exist" (126043, or 400100 `order not exist.`) is knowledge; a transport,
                # server, auth or other parameter error is not
                unknown = not isinstance(exc, OrderNotFound)
            if time.monotonic() + pause_s > deadline:
                return None, unknown
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, _MAX_POLL_S)

    async def _settle(self, order_id: str, pair: str) -> Order | None:
        """The order once it is no longer active (or as it stands at the deadline; None if unreadable)."""
        deadline = time.monotonic() + self._fill_timeout_s
        pause_s = _FIRST_POLL_S
        latest: Order | None = None
        while True:
            try:
                latest = await self._client.get_order(order_id, pair)
                if not latest.active:
                    return latest
            except KucoinError as exc:
                log.warning("order_query_failed", order_id=order_id, error=str(exc))
            if time.monotonic() + pause_s > deadline:
                return latest
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, _MAX_POLL_S)
