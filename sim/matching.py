"""Taker fills against a book, and the account's balances.

A taker walks the opposite side best level first. By `size` it takes base until the size is
met; by `funds` it takes, at each level, as much base (in whole `baseIncrement`s) as the quote
left can pay for. The VWAP is `deal_funds / deal_size`. If the walk runs out of levels (or
reaches a limit price) before the order is met, the fill is marked `exhausted` and the rest of
the order is cancelled by the caller. Dust of a funds order that cannot buy one more
`baseIncrement` is left unspent and is not an exhaustion.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from shared.kucoin.constants import INSUFFICIENT_BALANCE
from shared.money import round_down
from sim.errors import KucoinError

__all__ = ["Fill", "walk_book", "Ledger"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Fill:
    """What a taker took: per-level `(price, qty)` and totals; `exhausted` = depth ran out."""

    takes: tuple[tuple[Decimal, Decimal], ...]
    deal_size: Decimal
    deal_funds: Decimal
    exhausted: bool


def walk_book(
    levels: Sequence[Sequence[Decimal]],
    *,
    side: str,
    size: Decimal | None = None,
    funds: Decimal | None = None,
    base_increment: Decimal,
    limit_price: Decimal | None = None,
) -> Fill:
    """Fill a taker on `side` against `levels` (the opposite side, best first); exactly one of size/funds."""
    if (size is None) == (funds is None):
        raise ValueError("exactly one of size and funds")
    takes: list[tuple[Decimal, Decimal]] = []
    deal_size = _ZERO
    deal_funds = _ZERO
    exhausted = True
    for price, available in levels:
        if limit_price is not None and (price > limit_price if side == "buy" else price < limit_price):
            break
        if size is not None:
            qty = min(available, size - deal_size)
        else:
            qty = min(available, round_down((funds - deal_funds) / price, base_increment))
            if qty <= 0:
                exhausted = False  # dust: what is left cannot buy one increment here
                break
        takes.append((price, qty))
        deal_size += qty
        deal_funds += price * qty
        if size is not None and deal_size >= size:
            exhausted = False
            break
        if funds is not None and qty < available:
            exhausted = False  # stopped inside this level: the funds ran out, not the book
            break
    return Fill(tuple(takes), deal_size, deal_funds, exhausted)


class Ledger:
    """Trade-account balances: `available` spends, `holds` back resting orders."""

    __slots__ = ("_available", "_holds")

    def __init__(self, balances: dict[str, Decimal]) -> None:
        self._available: dict[str, Decimal] = dict(balances)
        self._holds: dict[str, Decimal] = {}

    def available(self, currency: str) -> Decimal:
        return self._available.get(currency, _ZERO)

    def holds(self, currency: str) -> Decimal:
        return self._holds.get(currency, _ZERO)

    def currencies(self) -> list[str]:
        """Every currency the account has ever held, sorted."""
        return sorted(self._available.keys() | self._holds.keys())

    def require(self, currency: str, amount: Decimal) -> None:
        """Refuse with 200004 unless `amount` is available."""
        if amount > self.available(currency):
            raise KucoinError(INSUFFICIENT_BALANCE)

    def move(self, currency: str, delta: Decimal) -> None:
        """Add `delta` (negative to debit) to available."""
        self._available[currency] = self.available(currency) + delta

    def hold(self, currency: str, amount: Decimal) -> None:
        self.move(currency, -amount)
        self._holds[currency] = self.holds(currency) + amount

    def release(self, currency: str, amount: Decimal) -> None:
        self._holds[currency] = self.holds(currency) - amount
        self.move(currency, amount)

    def set_available(self, currency: str, amount: Decimal) -> None:
        self._available[currency] = amount
