"""Realistic signals built from an exchange's markets (the simulator's, in the demo and benchmarks).

Triangles are found in the symbol graph (primary quote → A → B → primary quote); each signal is
sized the way the opportunity engine does it: leg 0 spends the starting volume, each later leg
spends what the previous one is expected to deliver at top of book net of fees, rounded down to
the exchange's increments, so the exchange's order-test accepts every leg.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.kucoin.models import OrderBook, SymbolInfo
from shared.kucoin.rest import KucoinRest
from shared.money import fmt_decimal, round_down

__all__ = ["Market", "Triangle", "fetch_markets", "find_triangles", "make_signal", "paying_triangles",
           "synthetic_signals"]

_BASE_TAKER_FEE = Decimal("0.001")
_BOOK_LEVELS = 5


@dataclass(frozen=True, slots=True)
class Market:
    symbol: SymbolInfo
    book: OrderBook

    @property
    def fee_rate(self) -> Decimal:
        return _BASE_TAKER_FEE * (self.symbol.taker_fee_coefficient or Decimal(1))


@dataclass(frozen=True, slots=True)
class Triangle:
    """Three (pair, side) hops that start and end in `primary_quote`."""

    primary_quote: str
    hops: tuple[tuple[str, str], tuple[str, str], tuple[str, str]]

    @property
    def pairs(self) -> tuple[str, str, str]:
        return (self.hops[0][0], self.hops[1][0], self.hops[2][0])


async def fetch_markets(client: KucoinRest) -> dict[str, Market]:
    """Every trading symbol with its current book (public endpoints only: no credentials needed)."""
    markets: dict[str, Market] = {}
    for info in await client.symbols():
        if info.enable_trading:
            markets[info.symbol] = Market(info, await client.order_book(info.symbol))
    return markets


def find_triangles(markets: dict[str, Market], primary_quote: str = "USDT") -> list[Triangle]:
    """Every 3-hop cycle through distinct pairs from `primary_quote` back to it, in a stable order."""
    edges: dict[str, list[tuple[str, str, str]]] = {}  # currency → (pair, side, currency it becomes)
    for name in sorted(markets):
        info = markets[name].symbol
        edges.setdefault(info.quote_currency, []).append((name, "buy", info.base_currency))
        edges.setdefault(info.base_currency, []).append((name, "sell", info.quote_currency))
    triangles = []
    for pair0, side0, first in edges.get(primary_quote, []):
        for pair1, side1, second in edges.get(first, []):
            if second == primary_quote or pair1 == pair0:
                continue
            for pair2, side2, last in edges.get(second, []):
                if last == primary_quote and pair2 not in (pair0, pair1):
                    triangles.append(Triangle(primary_quote, ((pair0, side0), (pair1, side1), (pair2, side2))))
    return triangles


def _levels(levels: Sequence[tuple[Decimal, Decimal]]) -> list[dict[str, str]]:
    return [{"price": fmt_decimal(p), "size": fmt_decimal(s)} for p, s in levels[:_BOOK_LEVELS]]


def make_signal(
    triangle: Triangle,
    markets: dict[str, Market],
    starting_volume: Decimal,
    *,
    correlation_id: str,
    now_ms: int,
    rng: random.Random | None = None,
) -> dict[str, object]:
    """One signal in the wire contract (strings for money), sized from top of book."""
    rng = rng or random.Random(0)
    legs, books = [], []
    amount = starting_volume
    spent_total = Decimal(0)
    for index, (pair, side) in enumerate(triangle.hops):
        market = markets[pair]
        info = market.symbol
        fee_rate = market.fee_rate
        if side == "buy":
            # after leg 0 the funds must leave room for the quote fee charged on top
            funds = amount if index == 0 else amount / (1 + fee_rate)
            order_param = round_down(funds, info.quote_increment)
        else:
            order_param = round_down(amount, info.base_increment)
        if side == "buy":
            price = market.book.asks[0][0]
            received = round_down(order_param / price, info.base_increment)
            fee = order_param * fee_rate  # charged in quote, on top of the funds
            if index == 0:
                spent_total = order_param + fee
        else:
            price = market.book.bids[0][0]
            received = order_param * price * (1 - fee_rate)
            if index == 0:
                spent_total = order_param
        legs.append({
            "pair": pair, "side": side, "order_param": fmt_decimal(order_param),
            "base_min_size": fmt_decimal(info.base_min_size), "base_increment": fmt_decimal(info.base_increment),
            "quote_increment": fmt_decimal(info.quote_increment), "fee_rate": fmt_decimal(fee_rate),
            "fee_currency": info.quote_currency,
        })
        books.append({"asks": _levels(market.book.asks), "bids": _levels(market.book.bids)})
        amount = received
    predicted_bps = float((amount - spent_total) / spent_total * 10000) if spent_total else 0.0
    book_ts_ms = now_ms - rng.randint(2, 20)
    return {
        "correlation_id": correlation_id,
        "triangle_key": list(triangle.pairs),
        "primary_quote": triangle.primary_quote,
        "starting_volume": legs[0]["order_param"],  # what leg 0 spends (rounded to its increment), or bad_volume
        "predicted_bps": round(predicted_bps, 3),
        "live": False,
        "legs": legs,
        "books": books,
        "book_ts_ms": book_ts_ms,
        "t_sock_arrive_ms": book_ts_ms + 1,
        "t_arrive_ms": book_ts_ms + 1,
        "t_eval_ms": book_ts_ms + 2,
        "ts_ms": book_ts_ms + 2,
    }


def synthetic_signals(
    markets: dict[str, Market], count: int, *, seed: int = 7, now_ms: int, prefix: str = "syn",
    spread_pairs: int = 0, min_predicted_bps: float | None = None,
) -> list[dict[str, object]]:
    """`count` signals cycling over every triangle with random starting volumes (50–500 quote).

    `spread_pairs` = k > 0 orders them as an engine that knows what it just sent would: a
    triangle sharing a pair with one of the previous k signals is picked only when no other is
    left, so with pair isolation on, back-to-back signals rarely refuse each other (`pair_busy`).
    `min_predicted_bps` keeps only the triangles whose books pay that much after fees, as an
    engine sends only what it predicts to pay (`trident send --synthetic` asks for 0).
    """
    rng = random.Random(seed)
    triangles = paying_triangles(markets, min_predicted_bps)
    signals = []
    recent: list[frozenset[str]] = []
    for index in range(count):
        triangle = triangles[rng.randrange(len(triangles))]
        if spread_pairs:
            busy = frozenset().union(*recent[-spread_pairs:])
            free = [t for t in triangles if busy.isdisjoint(t.pairs)]
            if free:
                triangle = free[rng.randrange(len(free))]
            recent.append(frozenset(triangle.pairs))
        volume = Decimal(rng.randint(50, 500))
        signals.append(make_signal(triangle, markets, volume, correlation_id=f"{prefix}-{index:06d}",
                                   now_ms=now_ms, rng=rng))
    return signals


def paying_triangles(markets: dict[str, Market], min_predicted_bps: float | None = None) -> list[Triangle]:
    """Every triangle through USDT, or only those whose top of book pays `min_predicted_bps` after fees."""
    triangles = find_triangles(markets)
    if min_predicted_bps is not None:
        triangles = [t for t in triangles if float(make_signal(  # type: ignore[arg-type]
            t, markets, Decimal(100), correlation_id="probe", now_ms=0)["predicted_bps"]) >= min_predicted_bps]
    if not triangles:
        raise ValueError("the markets contain no triangle through USDT" +
                         (f" predicted to pay {min_predicted_bps} bps" if min_predicted_bps is not None else ""))
    return triangles


def restamped(signal: Mapping[str, object], now_ms: int | None = None, *, book_age_ms: int = 0,
              eval_ms: int = 0) -> dict[str, object]:
    """The signal stamped as an engine would stamp it at send time (`now_ms`, default the clock).

    A book older than its triangle's last completed trade is refused as stale, so signals built
    ahead of time must be stamped when they are sent. The engine read the book `book_age_ms`
    before the signal arrived, and evaluated it for `eval_ms` before it was sent at `now_ms`.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    arrived = now - eval_ms
    return {**signal, "book_ts_ms": arrived - book_age_ms, "t_sock_arrive_ms": arrived, "t_arrive_ms": arrived,
            "t_eval_ms": now, "ts_ms": now}
