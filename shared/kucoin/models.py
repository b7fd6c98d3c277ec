"""KuCoin REST payloads as frozen value objects, amounts as `Decimal` from the moment they arrive.

KuCoin sends every amount as a decimal string; each `from_api` turns those strings straight into
Decimal (never through float) and maps camelCase wire names to snake_case fields. Amounts that
KuCoin leaves empty or null on some order types (a market order's `price`, a size order's
`funds`) become Decimal 0 so arithmetic on them never needs a None check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Self

from shared.kucoin.constants import (
    RATE_LIMIT_LIMIT_HEADER,
    RATE_LIMIT_REMAINING_HEADER,
    RATE_LIMIT_RESET_HEADER,
)

__all__ = [
    "OrderAck",
    "SyncOrder",
    "Order",
    "SymbolInfo",
    "TradeFee",
    "Account",
    "BulletToken",
    "RateLimitInfo",
    "OrderBook",
]

_ZERO = Decimal(0)


def _amount(value: Any) -> Decimal:
    """A wire amount as Decimal; "", None and absent mean zero."""
    if value is None or value == "":
        return _ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _millis(value: Any) -> int:
    """Epoch ms; KuCoin sends numbers here but some endpoints quote them."""
    return 0 if value is None or value == "" else int(value)


@dataclass(frozen=True, slots=True)
class OrderAck:
    """Answer to place and order-test: the exchange took the order, nothing about fills."""

    order_id: str
    client_oid: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(order_id=str(data["orderId"]), client_oid=_text(data.get("clientOid")))


@dataclass(frozen=True, slots=True)
class SyncOrder:
    """Answer to place-and-wait (`/hf/orders/sync`); it carries no dealFunds and no fee."""

    order_id: str
    client_oid: str
    order_time: int
    origin_size: Decimal
    deal_size: Decimal
    remain_size: Decimal
    canceled_size: Decimal
    status: str
    match_time: int

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            order_id=str(data["orderId"]),
            client_oid=_text(data.get("clientOid")),
            order_time=_millis(data.get("orderTime")),
            origin_size=_amount(data.get("originSize")),
            deal_size=_amount(data.get("dealSize")),
            remain_size=_amount(data.get("remainSize")),
            canceled_size=_amount(data.get("canceledSize")),
            status=str(data["status"]),
            match_time=_millis(data.get("matchTime")),
        )


@dataclass(frozen=True, slots=True)
class Order:
    """A full HF order as returned by get-by-id and get-by-clientOid (`active` false once done)."""

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
    remain_size: Decimal
    remain_funds: Decimal
    cancelled_size: Decimal
    cancelled_funds: Decimal
    fee: Decimal
    fee_currency: str
    active: bool
    in_order_book: bool
    created_at: int
    last_updated_at: int

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            id=str(data["id"]),
            client_oid=_text(data.get("clientOid")),
            symbol=str(data["symbol"]),
            type=str(data["type"]),
            side=str(data["side"]),
            price=_amount(data.get("price")),
            size=_amount(data.get("size")),
            funds=_amount(data.get("funds")),
            deal_size=_amount(data.get("dealSize")),
            deal_funds=_amount(data.get("dealFunds")),
            remain_size=_amount(data.get("remainSize")),
            remain_funds=_amount(data.get("remainFunds")),
            cancelled_size=_amount(data.get("cancelledSize")),
            cancelled_funds=_amount(data.get("cancelledFunds")),
            fee=_amount(data.get("fee")),
            fee_currency=_text(data.get("feeCurrency")),
            active=bool(data["active"]),
            in_order_book=bool(data.get("inOrderBook", False)),
            created_at=_millis(data.get("createdAt")),
            last_updated_at=_millis(data.get("lastUpdatedAt")),
        )


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """Trading rules of one pair from `/api/v2/symbols`: minimums, maximums and increments."""

    symbol: str
    base_currency: str
    quote_currency: str
    fee_currency: str
    base_min_size: Decimal
    quote_min_size: Decimal
    base_max_size: Decimal
    quote_max_size: Decimal
    base_increment: Decimal
    quote_increment: Decimal
    price_increment: Decimal
    min_funds: Decimal
    enable_trading: bool
    taker_fee_coefficient: Decimal
    maker_fee_coefficient: Decimal

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            symbol=str(data["symbol"]),
            base_currency=str(data["baseCurrency"]),
            quote_currency=str(data["quoteCurrency"]),
            fee_currency=_text(data.get("feeCurrency")),
            base_min_size=_amount(data.get("baseMinSize")),
            quote_min_size=_amount(data.get("quoteMinSize")),
            base_max_size=_amount(data.get("baseMaxSize")),
            quote_max_size=_amount(data.get("quoteMaxSize")),
            base_increment=_amount(data.get("baseIncrement")),
            quote_increment=_amount(data.get("quoteIncrement")),
            price_increment=_amount(data.get("priceIncrement")),
            min_funds=_amount(data.get("minFunds")),
            enable_trading=bool(data.get("enableTrading", False)),
            taker_fee_coefficient=_amount(data.get("takerFeeCoefficient")),
            maker_fee_coefficient=_amount(data.get("makerFeeCoefficient")),
        )


@dataclass(frozen=True, slots=True)
class TradeFee:
    """The account's actual fee rates for one symbol (VIP level and discounts applied)."""

    symbol: str
    taker_fee_rate: Decimal
    maker_fee_rate: Decimal

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            symbol=str(data["symbol"]),
            taker_fee_rate=_amount(data["takerFeeRate"]),
            maker_fee_rate=_amount(data["makerFeeRate"]),
        )


@dataclass(frozen=True, slots=True)
class Account:
    """One currency balance of one account type (`trade` is the one orders draw on)."""

    id: str
    currency: str
    type: str
    balance: Decimal
    available: Decimal
    holds: Decimal

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            id=str(data["id"]),
            currency=str(data["currency"]),
            type=str(data["type"]),
            balance=_amount(data.get("balance")),
            available=_amount(data.get("available")),
            holds=_amount(data.get("holds")),
        )


@dataclass(frozen=True, slots=True)
class BulletToken:
    """What the private WebSocket needs: the token and the first instance server's settings."""

    token: str
    endpoint: str
    ping_interval_ms: int
    ping_timeout_ms: int
    encrypt: bool

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        server = data["instanceServers"][0]
        return cls(
            token=str(data["token"]),
            endpoint=str(server["endpoint"]),
            ping_interval_ms=int(server["pingInterval"]),
            ping_timeout_ms=int(server["pingTimeout"]),
            encrypt=bool(server.get("encrypt", True)),
        )


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """The account pool as the gateway last reported it (`gw-ratelimit-*` response headers)."""

    limit: int
    remaining: int
    reset_ms: int

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        """`data` is the response headers; KeyError when the gateway sent none."""
        return cls(
            limit=int(data[RATE_LIMIT_LIMIT_HEADER]),
            remaining=int(data[RATE_LIMIT_REMAINING_HEADER]),
            reset_ms=int(data[RATE_LIMIT_RESET_HEADER]),
        )


@dataclass(frozen=True, slots=True)
class OrderBook:
    """A level-2 snapshot: bids high→low, asks low→high, each level `(price, size)`."""

    time_ms: int
    sequence: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            time_ms=_millis(data.get("time")),
            sequence=int(data["sequence"]),
            bids=tuple((_amount(p), _amount(s)) for p, s in data.get("bids") or ()),
            asks=tuple((_amount(p), _amount(s)) for p, s in data.get("asks") or ()),
        )
