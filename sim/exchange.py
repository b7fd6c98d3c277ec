"""The matching engine's business rules: accept, fill, book and cancel HF orders.

Fees are the taker rate times `dealFunds`, charged in the quote currency on both sides: a buy
gets the full base `dealSize` and pays `dealFunds + fee` quote; a sell is paid `dealFunds - fee`.
Balances are checked before matching against the worst case the order's parameters allow
(a funds buy: `funds` plus its fee; a size sell: `size`; a size buy / funds sell: what the walk
would take), so a refused order changes nothing.

Limit orders take what crosses (at the taker rate) and rest the remainder (GTC) with its funds
held (GTT as GTC: expiry is not modelled), or cancel it (IOC; FOK cancels all unless fully filled; a crossing post-only order is
cancelled). Resting orders are not shown on the books and never match later: the books are
the market, the account is a price taker.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

from shared.kucoin.constants import (
    DUPLICATE_CLIENT_OID,
    ORDER_NOT_EXIST,
    ORDER_NOT_EXIST_MSG,
    PARAMETER_ERROR,
    PARAMETER_ORDER_NOT_EXIST_MSG,
)
from shared.money import fmt_decimal, round_down
from sim.errors import KucoinError
from sim.knobs import Knobs
from sim.market import Book, MarketSpec, Symbol
from sim.matching import Fill, Ledger, walk_book
from sim.orders import Order, OrderRequest

__all__ = ["Exchange"]

_ZERO = Decimal(0)
_NO_FILL = Fill((), _ZERO, _ZERO, True)
_NOT_CANCELLABLE_MSG = "order_not_exist_or_not_allow_to_cancel"


def _found(order: Order | None, symbol: str, hf_code: bool) -> Order:
    if order is None or order.symbol != symbol:
        if hf_code:
            raise KucoinError(ORDER_NOT_EXIST, ORDER_NOT_EXIST_MSG)
        raise KucoinError(PARAMETER_ERROR, PARAMETER_ORDER_NOT_EXIST_MSG)
    return order


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Exchange:
    """One account trading against static (or, with the knob, consumable) books."""

    def __init__(self, spec: MarketSpec) -> None:
        self.symbols: dict[str, Symbol] = spec.symbols
        self.books: dict[str, Book] = {name: Book(book) for name, book in spec.books.items()}
        self.ledger = Ledger(spec.balances)
        self._by_id: dict[str, Order] = {}
        self._by_client_oid: dict[str, Order] = {}
        self._id_middle = os.urandom(5).hex()
        self._id_counter = int.from_bytes(os.urandom(3), "big")

    def new_order_id(self) -> str:
        """24 hex characters shaped like KuCoin's (an ObjectId: seconds, random, counter)."""
        self._id_counter = (self._id_counter + 1) & 0xFFFFFF
        return f"{int(time.time()):08x}{self._id_middle}{self._id_counter:06x}"

    def test(self, req: OrderRequest, knobs: Knobs) -> dict[str, str]:
        """Validate only (done by the caller's parsing): never matched, never stored."""
        if knobs.test_checks_balance:
            self._plan(req, knobs)
        return {"orderId": self.new_order_id(), "clientOid": req.client_oid or uuid.uuid4().hex}

    def place(self, req: OrderRequest, knobs: Knobs, on_fill: Callable[[Order, Fill], None] | None = None) -> Order:
        """Match the order now, move the balances, and store it; `on_fill` sees it (private WebSocket)."""
        if req.client_oid is not None and req.client_oid in self._by_client_oid:
            raise KucoinError(DUPLICATE_CLIENT_OID)
        symbol = req.symbol
        fill = self._plan(req, knobs)
        may_rest = req.type == "limit" and req.time_in_force in ("GTC", "GTT")
        if req.type == "limit":
            if req.post_only and fill.takes:
                fill, may_rest = _NO_FILL, False
            elif req.time_in_force == "FOK" and fill.deal_size < req.size:
                fill = _NO_FILL
        fee = fill.deal_funds * symbol.taker_fee_rate
        if req.side == "buy":
            self.ledger.move(symbol.base_currency, fill.deal_size)
            self.ledger.move(symbol.quote_currency, -(fill.deal_funds + fee))
        else:
            self.ledger.move(symbol.base_currency, -fill.deal_size)
            self.ledger.move(symbol.quote_currency, fill.deal_funds - fee)
        if knobs.consume_liquidity and fill.takes:
            self.books[symbol.symbol].consume(req.side, fill.takes)

        now = _now_ms()
        order = Order(
            id=self.new_order_id(),
            client_oid=req.client_oid or uuid.uuid4().hex,
            symbol=symbol.symbol,
            type=req.type,
            side=req.side,
            price=req.price or _ZERO,
            size=req.size or _ZERO,
            funds=req.funds or _ZERO,
            deal_size=fill.deal_size,
            deal_funds=fill.deal_funds,
            fee=fee,
            fee_currency=symbol.quote_currency,
            cancelled_size=_ZERO,
            cancelled_funds=_ZERO,
            time_in_force=req.time_in_force,
            post_only=req.post_only,
            remark=req.remark,
            tags=req.tags,
            stp=req.stp,
            active=False,
            created_at=now,
            last_updated_at=now,
        )
        self._settle_remainder(order, req, fill, may_rest=may_rest, fee_inside_funds=knobs.fee_inside_funds)
        self._by_id[order.id] = order
        self._by_client_oid[order.client_oid] = order
        if on_fill is not None:
            on_fill(order, fill)
        return order

    def _plan(self, req: OrderRequest, knobs: Knobs) -> Fill:
        """The fill the book gives this order, after checking the worst-case balance (200004)."""
        symbol = req.symbol
        book = self.books[symbol.symbol]
        rate = symbol.taker_fee_rate
        walk_args = {"side": req.side, "base_increment": symbol.base_increment, "limit_price": req.price}
        if req.side == "buy":
            if req.funds is not None:
                if knobs.fee_inside_funds:
                    budget = round_down(req.funds / (1 + rate), symbol.quote_increment)
                    self.ledger.require(symbol.quote_currency, req.funds)
                else:
                    budget = req.funds
                    self.ledger.require(symbol.quote_currency, req.funds * (1 + rate))
                return walk_book(book.asks, funds=budget, **walk_args)
            if req.price is not None:
                self.ledger.require(symbol.quote_currency, req.price * req.size * (1 + rate))
                return walk_book(book.asks, size=req.size, **walk_args)
            fill = walk_book(book.asks, size=req.size, **walk_args)
            self.ledger.require(symbol.quote_currency, fill.deal_funds * (1 + rate))
            return fill
        if req.size is not None:
            self.ledger.require(symbol.base_currency, req.size)
            return walk_book(book.bids, size=req.size, **walk_args)
        fill = walk_book(book.bids, funds=req.funds, **walk_args)
        self.ledger.require(symbol.base_currency, fill.deal_size)
        return fill

    def _settle_remainder(
        self, order: Order, req: OrderRequest, fill: Fill, *, may_rest: bool, fee_inside_funds: bool
    ) -> None:
        """Cancel what did not fill, or (a GTC limit order) rest it with its funds held."""
        if req.size is not None:
            remainder = req.size - fill.deal_size
            if remainder <= 0:
                return
            if may_rest:
                symbol = req.symbol
                order.active = True
                if req.side == "buy":
                    order.hold_currency = symbol.quote_currency
                    order.hold_amount = remainder * req.price * (1 + symbol.taker_fee_rate)
                else:
                    order.hold_currency = symbol.base_currency
                    order.hold_amount = remainder
                self.ledger.hold(order.hold_currency, order.hold_amount)
            else:
                order.cancelled_size = remainder
        elif fill.exhausted:
            spent = fill.deal_funds + (order.fee if fee_inside_funds and req.side == "buy" else _ZERO)
            order.cancelled_funds = req.funds - spent

    def find(self, order_id: str, symbol: str, hf_code: bool = False) -> Order:
        """The order with this id on this symbol (KuCoin requires the symbol on HF queries);
        not found is 400100 `order not exist.`, or HF's 126043 when `hf_code`."""
        return _found(self._by_id.get(order_id), symbol, hf_code)

    def find_by_client_oid(self, client_oid: str, symbol: str, hf_code: bool = False) -> Order:
        return _found(self._by_client_oid.get(client_oid), symbol, hf_code)

    def cancel(
        self, order_id: str, symbol: str, on_cancel: Callable[[Order, Decimal], None] | None = None
    ) -> Order:
        """Cancel a resting order; a done order (every market order) cannot be cancelled.
        `on_cancel` sees the order and the hold it released (private WebSocket)."""
        order = self._by_id.get(order_id)
        if order is None or order.symbol != symbol or not order.active:
            raise KucoinError(PARAMETER_ERROR, _NOT_CANCELLABLE_MSG)
        order.cancelled_size += order.remain_size
        order.active = False
        order.last_updated_at = _now_ms()
        released = order.hold_amount
        self.ledger.release(order.hold_currency, released)
        order.hold_amount = _ZERO
        if on_cancel is not None:
            on_cancel(order, released)
        return order

    def accounts(self, currency: str | None = None) -> list[dict[str, str]]:
        """`GET /api/v1/accounts` items for the trade account."""
        ledger = self.ledger
        return [
            {
                "id": uuid.uuid5(uuid.NAMESPACE_OID, f"trade:{cur}").hex[:24],
                "currency": cur,
                "type": "trade",
                "balance": fmt_decimal(ledger.available(cur) + ledger.holds(cur)),
                "available": fmt_decimal(ledger.available(cur)),
                "holds": fmt_decimal(ledger.holds(cur)),
            }
            for cur in ledger.currencies()
            if currency is None or cur == currency
        ]
