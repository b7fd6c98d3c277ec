"""Symbols, order books and starting balances: the market the simulator trades in.

Markets load from a JSON or TOML file (chosen by extension); the built-in default,
`sim/data/default_markets.json`, is in this same format. Top level::

    {
      "symbols": [
        {
          "symbol": "BTC-USDT",                 # required, BASE-QUOTE
          "baseMinSize": "0.00001",             # required
          "quoteMinSize": "0.1",                # required
          "baseIncrement": "0.00000001",        # required
          "quoteIncrement": "0.000001",         # required
          "priceIncrement": "0.1",              # required
          "minFunds": "0.1",                    # default: quoteMinSize
          "baseMaxSize": "10000000000",         # default
          "quoteMaxSize": "99999999",           # default
          "priceLimitRate": "0.1",              # default
          "enableTrading": true,                # default true; false -> 400600 on orders
          "isMarginEnabled": false,             # default false
          "market": "USDS",                     # default "USDS"
          "feeCategory": 1, "st": false,        # defaults
          "takerFeeRate": "0.001",              # this account's rates (default 0.001 both)
          "makerFeeRate": "0.001",
          "book": {"bids": [["66976.4", "0.69"], ...], "asks": [["66976.5", "0.05"], ...]}
        }
      ],
      "balances": {"USDT": "100000", "BTC": "2"}   # the demo account's trade balances
    }

Field names are KuCoin's `/api/v2/symbols` ones, so a real symbols answer can be pasted in and
completed with books. Amounts are strings (numbers are accepted and read exactly); book levels
are `[price, size]` and are sorted on load (bids high to low, asks low to high).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.money import fmt_decimal, parse_decimal

__all__ = ["Symbol", "BookSpec", "MarketSpec", "Book", "DEFAULT_MARKETS_PATH", "load_markets", "parse_markets"]

DEFAULT_MARKETS_PATH = Path(__file__).with_name("data") / "default_markets.json"

Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Symbol:
    """One trading pair's rules and this account's fee rates."""

    symbol: str
    base_currency: str
    quote_currency: str
    base_min_size: Decimal
    quote_min_size: Decimal
    base_max_size: Decimal
    quote_max_size: Decimal
    base_increment: Decimal
    quote_increment: Decimal
    price_increment: Decimal
    price_limit_rate: Decimal
    min_funds: Decimal
    enable_trading: bool
    is_margin_enabled: bool
    market: str
    fee_category: int
    st: bool
    taker_fee_rate: Decimal
    maker_fee_rate: Decimal

    def to_wire(self) -> dict[str, Any]:
        """The `/api/v2/symbols` item."""
        return {
            "symbol": self.symbol,
            "name": self.symbol,
            "baseCurrency": self.base_currency,
            "quoteCurrency": self.quote_currency,
            "feeCurrency": self.quote_currency,
            "market": self.market,
            "baseMinSize": fmt_decimal(self.base_min_size),
            "quoteMinSize": fmt_decimal(self.quote_min_size),
            "baseMaxSize": fmt_decimal(self.base_max_size),
            "quoteMaxSize": fmt_decimal(self.quote_max_size),
            "baseIncrement": fmt_decimal(self.base_increment),
            "quoteIncrement": fmt_decimal(self.quote_increment),
            "priceIncrement": fmt_decimal(self.price_increment),
            "priceLimitRate": fmt_decimal(self.price_limit_rate),
            "minFunds": fmt_decimal(self.min_funds),
            "isMarginEnabled": self.is_margin_enabled,
            "enableTrading": self.enable_trading,
            "feeCategory": self.fee_category,
            "makerFeeCoefficient": "1.00",
            "takerFeeCoefficient": "1.00",
            "st": self.st,
            "callauctionIsEnabled": False,
            "callauctionPriceFloor": None,
            "callauctionPriceCeiling": None,
            "callauctionFirstStageStartTime": None,
            "callauctionSecondStageStartTime": None,
            "callauctionThirdStageStartTime": None,
            "tradingStartTime": None,
        }


@dataclass(frozen=True, slots=True)
class BookSpec:
    """A book as loaded: the state `reset` returns to."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """A whole market file: symbols by name, their books, and starting balances."""

    symbols: dict[str, Symbol]
    books: dict[str, BookSpec]
    balances: dict[str, Decimal]


class Book:
    """A live order book; levels are `[price, size]` lists so fills can shrink them in place."""

    __slots__ = ("bids", "asks", "sequence")

    def __init__(self, spec: BookSpec) -> None:
        self.bids: list[list[Decimal]] = [[p, s] for p, s in spec.bids]
        self.asks: list[list[Decimal]] = [[p, s] for p, s in spec.asks]
        self.sequence = 1

    def consume(self, side: str, takes: tuple[Level, ...]) -> None:
        """Remove what a taker on `side` filled (its levels are the front of the opposite side)."""
        levels = self.asks if side == "buy" else self.bids
        for index, (_, qty) in enumerate(takes):
            levels[index][1] -= qty
        while levels and levels[0][1] <= 0:
            levels.pop(0)
        self.sequence += 1

    def snapshot(self, depth: int, time_ms: int) -> dict[str, Any]:
        """The level2 answer: `[price, size]` strings, best first."""
        return {
            "time": time_ms,
            "sequence": str(self.sequence),
            "bids": [[fmt_decimal(p), fmt_decimal(s)] for p, s in self.bids[:depth]],
            "asks": [[fmt_decimal(p), fmt_decimal(s)] for p, s in self.asks[:depth]],
        }


def load_markets(path: Path | str | None = None) -> MarketSpec:
    """Read a JSON or TOML market file (the built-in default when `path` is None)."""
    path = Path(path) if path is not None else DEFAULT_MARKETS_PATH
    if path.suffix.lower() == ".toml":
        with path.open("rb") as handle:
            raw = tomllib.load(handle, parse_float=Decimal)
    else:
        raw = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    try:
        return parse_markets(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid market file: {exc!r}") from exc


def parse_markets(raw: dict[str, Any]) -> MarketSpec:
    """Build a MarketSpec from the file's mapping (see the module docstring)."""
    symbols: dict[str, Symbol] = {}
    books: dict[str, BookSpec] = {}
    for item in raw["symbols"]:
        symbol = _parse_symbol(item)
        if symbol.symbol in symbols:
            raise ValueError(f"symbol {symbol.symbol} listed twice")
        symbols[symbol.symbol] = symbol
        book = item.get("book", {})
        books[symbol.symbol] = BookSpec(
            bids=_parse_levels(book.get("bids", []), descending=True),
            asks=_parse_levels(book.get("asks", []), descending=False),
        )
    balances = {str(cur): parse_decimal(amount) for cur, amount in raw.get("balances", {}).items()}
    return MarketSpec(symbols=symbols, books=books, balances=balances)


def _parse_symbol(item: dict[str, Any]) -> Symbol:
    name = str(item["symbol"])
    base, sep, quote = name.partition("-")
    if not sep or not base or not quote:
        raise ValueError(f"symbol {name!r} is not BASE-QUOTE")

    def amount(key: str, default: str | None = None) -> Decimal:
        value = item.get(key, default)
        if value is None:
            raise KeyError(f"{name}: {key} is required")
        return parse_decimal(value)

    return Symbol(
        symbol=name,
        base_currency=str(item.get("baseCurrency", base)),
        quote_currency=str(item.get("quoteCurrency", quote)),
        base_min_size=amount("baseMinSize"),
        quote_min_size=amount("quoteMinSize"),
        base_max_size=amount("baseMaxSize", "10000000000"),
        quote_max_size=amount("quoteMaxSize", "99999999"),
        base_increment=amount("baseIncrement"),
        quote_increment=amount("quoteIncrement"),
        price_increment=amount("priceIncrement"),
        price_limit_rate=amount("priceLimitRate", "0.1"),
        min_funds=amount("minFunds", item.get("quoteMinSize")),
        enable_trading=bool(item.get("enableTrading", True)),
        is_margin_enabled=bool(item.get("isMarginEnabled", False)),
        market=str(item.get("market", "USDS")),
        fee_category=int(item.get("feeCategory", 1)),
        st=bool(item.get("st", False)),
        taker_fee_rate=amount("takerFeeRate", "0.001"),
        maker_fee_rate=amount("makerFeeRate", "0.001"),
    )


def _parse_levels(raw_levels: list[Any], *, descending: bool) -> tuple[Level, ...]:
    levels = [(parse_decimal(price), parse_decimal(size)) for price, size in raw_levels]
    if any(price <= 0 or size <= 0 for price, size in levels):
        raise ValueError("book prices and sizes must be positive")
    return tuple(sorted(levels, key=lambda level: level[0], reverse=descending))
