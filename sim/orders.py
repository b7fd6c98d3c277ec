"""HF order requests (parsed and validated like KuCoin does) and order records (as it answers them).

Validation order: body shape, symbol (900001 / 400600), side, type, clientOid, remark/tags/stp,
then amounts: unparsable or non-positive 300000, then minimum / increment / maximum (400100,
600100 for funds). The increment and minimum codes are the API notes' best knowledge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.kucoin.constants import (
    FUNDS_BELOW_MINIMUM,
    INVALID_AMOUNT,
    NOT_TRADING,
    PARAMETER_ERROR,
    UNKNOWN_SYMBOL,
)
from shared.money import fmt_decimal, parse_decimal
from sim.errors import KucoinError
from sim.market import Symbol

__all__ = ["OrderRequest", "Order", "parse_order_request"]

_CLIENT_OID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_STP = frozenset({"DC", "CO", "CN", "CB"})
_TIME_IN_FORCE = frozenset({"GTC", "GTT", "IOC", "FOK"})  # GTT rests like GTC (cancelAfter is not modelled)
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated order; `size` and `funds` are None when not given."""

    symbol: Symbol
    type: str
    side: str
    client_oid: str | None
    size: Decimal | None
    funds: Decimal | None
    price: Decimal | None
    time_in_force: str
    post_only: bool
    remark: str | None
    tags: str | None
    stp: str | None


def parse_order_request(body: Any, symbols: dict[str, Symbol]) -> OrderRequest:
    """Validate a place/sync/test body against the symbol's rules; raise KucoinError on the first fault."""
    if not isinstance(body, dict):
        raise KucoinError(PARAMETER_ERROR, "Request body must be a JSON object.")
    name = body.get("symbol")
    if not isinstance(name, str) or not name:
        raise KucoinError(PARAMETER_ERROR, "symbol is required.")
    symbol = symbols.get(name)
    if symbol is None:
        raise KucoinError(UNKNOWN_SYMBOL)
    if not symbol.enable_trading:
        raise KucoinError(NOT_TRADING)
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise KucoinError(PARAMETER_ERROR, "side is invalid.")
    order_type = body.get("type")
    if order_type not in ("market", "limit"):
        raise KucoinError(PARAMETER_ERROR, "type is invalid.")
    client_oid = body.get("clientOid")
    if client_oid is not None and (not isinstance(client_oid, str) or not _CLIENT_OID.fullmatch(client_oid)):
        raise KucoinError(PARAMETER_ERROR, "clientOid is invalid.")
    remark = _optional_text(body, "remark")
    tags = _optional_text(body, "tags")
    stp = body.get("stp")
    if stp is not None and stp not in _STP:
        raise KucoinError(PARAMETER_ERROR, "stp is invalid.")
    if stp == "DC" and order_type == "market":
        raise KucoinError(PARAMETER_ERROR, "stp DC is not supported for market orders.")
    time_in_force = body.get("timeInForce", "GTC")
    if time_in_force not in _TIME_IN_FORCE:
        raise KucoinError(PARAMETER_ERROR, "timeInForce is invalid.")
    post_only = body.get("postOnly", False)
    if not isinstance(post_only, bool):
        raise KucoinError(PARAMETER_ERROR, "postOnly is invalid.")

    size = _amount(body, "size", "Order size invalid.")
    funds = _amount(body, "funds", "Order funds invalid.")
    price = None
    if order_type == "market":
        if (size is None) == (funds is None):
            raise KucoinError(PARAMETER_ERROR, "Exactly one of size and funds is required for a market order.")
    else:
        price = _amount(body, "price", "Order price invalid.")
        if price is None or size is None or funds is not None:
            raise KucoinError(PARAMETER_ERROR, "A limit order needs price and size, and no funds.")
        if not _multiple_of(price, symbol.price_increment):
            raise KucoinError(PARAMETER_ERROR, "Price increment invalid.")
    if size is not None:
        _check_size(symbol, size)
        if price is not None:
            _check_min_funds(symbol, price * size)
    if funds is not None:
        _check_funds(symbol, funds)
    return OrderRequest(
        symbol=symbol, type=order_type, side=side, client_oid=client_oid, size=size, funds=funds,
        price=price, time_in_force=time_in_force, post_only=post_only, remark=remark, tags=tags, stp=stp,
    )


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > 20):
        raise KucoinError(PARAMETER_ERROR, f"{key} is invalid (at most 20 characters).")
    return value


def _amount(body: dict[str, Any], key: str, invalid_msg: str) -> Decimal | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        amount = parse_decimal(value)
    except ValueError:
        raise KucoinError(INVALID_AMOUNT, invalid_msg) from None
    if amount <= 0:
        raise KucoinError(INVALID_AMOUNT, invalid_msg)
    return amount


def _check_size(symbol: Symbol, size: Decimal) -> None:
    if size < symbol.base_min_size:
        raise KucoinError(PARAMETER_ERROR, "Order size below the minimum requirement.")
    if size > symbol.base_max_size:
        raise KucoinError(PARAMETER_ERROR, "Order size above the maximum requirement.")
    if not _multiple_of(size, symbol.base_increment):
        raise KucoinError(PARAMETER_ERROR, "Order size increment invalid.")


def _check_funds(symbol: Symbol, funds: Decimal) -> None:
    if funds < symbol.quote_min_size:
        raise KucoinError(FUNDS_BELOW_MINIMUM)
    _check_min_funds(symbol, funds)
    if funds > symbol.quote_max_size:
        raise KucoinError(PARAMETER_ERROR, "Funds above the maximum requirement.")
    if not _multiple_of(funds, symbol.quote_increment):
        raise KucoinError(PARAMETER_ERROR, "Funds increment invalid.")


def _multiple_of(value: Decimal, increment: Decimal) -> bool:
    try:
        return not value % increment
    except InvalidOperation:  # the quotient has more digits than the context: far off any grid
        return False


def _check_min_funds(symbol: Symbol, value: Decimal) -> None:
    if value < symbol.min_funds:
        raise KucoinError(FUNDS_BELOW_MINIMUM)


@dataclass(slots=True)
class Order:
    """An order the exchange accepted; mutable until done (a resting limit order can be cancelled)."""

    id: str
    client_oid: str
    symbol: str
    type: str
    side: str
    price: Decimal
    size: Decimal
    funds: Decimal
    deal_size: Decimal
    deal_funds: Decimal
    fee: Decimal
    fee_currency: str
    cancelled_size: Decimal
    cancelled_funds: Decimal
    time_in_force: str
    post_only: bool
    remark: str | None
    tags: str | None
    stp: str | None
    active: bool
    created_at: int
    last_updated_at: int
    hold_currency: str = ""
    hold_amount: Decimal = _ZERO

    @property
    def remain_size(self) -> Decimal:
        """Base still open on the book (a resting limit order); zero once done."""
        if not self.active or self.type != "limit":
            return _ZERO
        return self.size - self.deal_size - self.cancelled_size

    @property
    def remain_funds(self) -> Decimal:
        """KuCoin's `remainFunds`: `funds − dealFunds` for an order placed by funds, else zero."""
        return self.funds - self.deal_funds if self.funds > 0 else _ZERO

    def to_wire(self) -> dict[str, Any]:
        """The full HF order (`GET /api/v1/hf/orders/{id}`), amounts as decimal strings."""
        return {
            "id": self.id,
            "clientOid": self.client_oid,
            "symbol": self.symbol,
            "opType": "DEAL",
            "type": self.type,
            "side": self.side,
            "price": fmt_decimal(self.price),
            "size": fmt_decimal(self.size),
            "funds": fmt_decimal(self.funds),
            "dealSize": fmt_decimal(self.deal_size),
            "dealFunds": fmt_decimal(self.deal_funds),
            "remainSize": fmt_decimal(self.remain_size),
            "remainFunds": fmt_decimal(self.remain_funds),
            "cancelledSize": fmt_decimal(self.cancelled_size),
            "cancelledFunds": fmt_decimal(self.cancelled_funds),
            "fee": fmt_decimal(self.fee),
            "feeCurrency": self.fee_currency,
            "stp": self.stp,  # null when unset: strict clients (KuCoin's SDK) refuse ""
            "timeInForce": self.time_in_force,
            "postOnly": self.post_only,
            "hidden": False,
            "iceberg": False,
            "visibleSize": "0",
            "cancelAfter": 0,
            "channel": "API",
            "remark": self.remark,
            "tags": self.tags,
            "cancelExist": self.cancelled_size > 0 or self.cancelled_funds > 0,
            "tradeType": "TRADE",
            "inOrderBook": self.active,
            "active": self.active,
            "tax": "0",
            "createdAt": self.created_at,
            "lastUpdatedAt": self.last_updated_at,
        }

    def to_sync_wire(self) -> dict[str, Any]:
        """The `/hf/orders/sync` answer: no dealFunds and no fee."""
        return {
            "orderId": self.id,
            "clientOid": self.client_oid,
            "orderTime": self.created_at,
            "originSize": fmt_decimal(self.size),
            "dealSize": fmt_decimal(self.deal_size),
            "remainSize": fmt_decimal(self.remain_size),
            "canceledSize": fmt_decimal(self.cancelled_size),
            "status": "open" if self.active else "done",
            "matchTime": self.last_updated_at,
        }
