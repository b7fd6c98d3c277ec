"""The simulator's markets for benchmarks: the built-in ones plus synthetic coins with many triangles.

The built-in markets hold 7 distinct triangles, and the registry lets one execution per triangle
run at a time, so a saturating benchmark on them measures isolation refusals, not execution
capacity. Each synthetic coin `Xnn` trades against USDT and BTC at consistent prices (two
directed triangles, one isolation id), with books deep enough that no benchmark signal walks
past the top levels.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.money import fmt_decimal
from sim.market import DEFAULT_MARKETS_PATH

__all__ = ["write_bench_markets"]

_LEVELS = 10
_STEP = Decimal("0.0002")  # 2 bps between levels
_BTC_USDT = Decimal("67000")


def _book(mid: Decimal, size: Decimal, price_increment: Decimal) -> dict[str, list[list[str]]]:
    def price(offset: int) -> str:
        return fmt_decimal((mid * (1 + _STEP * offset)).quantize(price_increment))

    return {
        "bids": [[price(-level), fmt_decimal(size * level)] for level in range(1, _LEVELS + 1)],
        "asks": [[price(level), fmt_decimal(size * level)] for level in range(1, _LEVELS + 1)],
    }


def _symbol(name: str, mid: Decimal, size: Decimal, price_increment: Decimal) -> dict[str, Any]:
    return {
        "symbol": name,
        "baseMinSize": "0.01",
        "quoteMinSize": "0.00000001",
        "baseIncrement": "0.01",
        "quoteIncrement": "0.00000001",
        "priceIncrement": fmt_decimal(price_increment),
        "minFunds": "0.00000001",
        "takerFeeRate": "0.001",
        "makerFeeRate": "0.001",
        "book": _book(mid, size, price_increment),
    }


def write_bench_markets(path: Path, coins: int) -> Path:
    """The built-in markets plus `coins` synthetic coins (X01…), as a market file at `path`."""
    raw = json.loads(DEFAULT_MARKETS_PATH.read_text(encoding="utf-8"))
    for index in range(1, coins + 1):
        coin = f"X{index:02d}"
        usdt_price = Decimal(index) + Decimal("0.5")
        raw["symbols"].append(_symbol(f"{coin}-USDT", usdt_price, Decimal(5000), Decimal("0.0001")))
        raw["symbols"].append(_symbol(f"{coin}-BTC", usdt_price / _BTC_USDT, Decimal(5000), Decimal("0.000000001")))
        raw["balances"][coin] = "1000000"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path
