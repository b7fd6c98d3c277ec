"""Paper-mode fills: what a triangle would have done against the books attached to its signal.

Paper mode never trades, so its numbers are only as honest as this model. Two models exist:

- ``depth`` (default) follows KuCoin market-order semantics over the whole book snapshot: a buy
  spends quote *funds* walking the asks, a sell sells a base *size* into the bids, the price is
  the VWAP of the levels walked, sizes are rounded down to the pair's increments and the fee is
  charged in the currency the exchange charges it. Legs chain as live mode will: each leg
  spends what the previous one actually delivered, so dust lost to rounding shows up in profit.
- ``top`` reproduces the seed executor's top-of-book arithmetic exactly (each leg from its own
  precomputed ``order_param``) so results can be compared with the old system; only its profit
  is corrected — the seed left the fee paid on top of a buy's funds out of the amount spent,
  and counted a first-leg sell's quote proceeds as the amount spent.

Fee convention (KuCoin, see kucoin-api.md "Symbols and fees"): with the fee in the quote
currency, a market buy credits the full base and costs ``dealFunds + fee`` (fee on top of the
funds), a market sell pays out ``dealFunds - fee``; ``fee = rate * dealFunds``. When the signal
says the fee is charged in the base currency, ``fee = rate * base``: a buy credits
``base - fee``, a sell takes ``base + fee`` from the balance. Everything is exact ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Context, Decimal, localcontext

from shared.money import round_down
from shared.report import LegFill
from shared.signal import Book, BookLevel, Leg, Signal

__all__ = ["PaperAbort", "PaperOutcome", "fill_depth", "fill_top", "simulate_triangle"]

_ZERO = Decimal(0)
_BPS = Decimal(10_000)
# Base bought for some funds is a quotient; rounding it *down* guarantees the base we take from
# a level never costs more than the funds left, whatever the last digit does.
_DIVIDE_DOWN = Context(prec=40, rounding=ROUND_DOWN)
# Sums and products of such quotients with prices need more than the default 28 digits to stay
# exact; the depth walk and its fee run in this context so that only the quotient ever rounds.
_EXACT = Context(prec=80)
# An average price is a report figure, not money that moves: 28 digits are plenty.
_PRICE = Context(prec=28)


class PaperAbort(Exception):
    """A leg that the exchange would refuse (or could not fill): the execution is aborted."""

    def __init__(self, reason: str, leg: int, detail: str = "") -> None:
        self.reason = reason
        self.leg = leg
        self.detail = detail
        super().__init__(reason, leg, detail)

    def __str__(self) -> str:
        suffix = f": {self.detail}" if self.detail else ""
        return f"leg {self.leg} aborted ({self.reason}){suffix}"


@dataclass(frozen=True, slots=True)
class PaperOutcome:
    """A completed paper triangle, measured in the primary quote currency.

    ``spent`` is what left the account on leg 0 (fee included when it was charged on top),
    ``returned`` what leg 2 credited (net of its fee), so ``profit`` is what the account gained.
    """

    fills: tuple[LegFill, ...]
    spent: Decimal
    returned: Decimal
    profit: Decimal
    effective_bps: float


def _fee_in_base(leg: Leg, index: int) -> bool:
    """Whether the leg's fee is charged in its base (True) or quote (False) currency.

    A third currency (KCS fee discount) would need its own balance and price to be modelled;
    refusing it beats silently charging the wrong asset.
    """
    if leg.fee_currency == leg.base:
        return True
    if leg.fee_currency == leg.quote:
        return False
    raise ValueError(
        f"leg {index} {leg.pair}: fee currency {leg.fee_currency!r} is neither base nor quote"
    )


def _levels_for(leg: Leg, book: Book, index: int) -> tuple[BookLevel, ...]:
    """The side of the book a market order on this leg consumes (asks for a buy)."""
    levels = book.asks if leg.side == "buy" else book.bids
    if not levels:
        side = "asks" if leg.side == "buy" else "bids"
        raise PaperAbort("empty_book", index, f"{leg.pair} has no {side}")
    return levels


def _base_for_funds(levels: Sequence[BookLevel], funds: Decimal) -> Decimal:
    """Base a funds-sized market buy takes from the asks before its funds or the book run out."""
    base = _ZERO
    remaining = funds
    for level in levels:
        if remaining <= 0:
            break
        take = min(level.size, _DIVIDE_DOWN.divide(remaining, level.price))
        base += take
        remaining -= take * level.price
    return base


def _cost_of_base(levels: Sequence[BookLevel], base: Decimal) -> Decimal:
    """Quote traded when ``base`` is taken from the levels best-first (the order's dealFunds)."""
    funds = _ZERO
    remaining = base
    for level in levels:
        if remaining <= 0:
            break
        take = min(level.size, remaining)
        funds += take * level.price
        remaining -= take
    return funds


def _leg_fill(
    leg: Leg,
    index: int,
    *,
    order_id: str,
    latency_ms: float,
    base: Decimal,
    funds: Decimal,
    avg_price: Decimal,
    fee: Decimal,
    fee_in_base: bool,
) -> LegFill:
    """Turn a trade (base, funds, fee) into what left the account and what arrived in it."""
    if leg.side == "buy":
        spent, received = (funds, base - fee) if fee_in_base else (funds + fee, base)
    else:
        spent, received = (base + fee, funds) if fee_in_base else (base, funds - fee)
    return LegFill(
        leg=index,
        pair=leg.pair,
        side=leg.side,
        order_id=order_id,
        input_currency=leg.input_currency,
        output_currency=leg.output_currency,
        spent=spent,
        received=received,
        filled_size=base,
        filled_funds=funds,
        avg_price=avg_price,
        fee=fee,
        fee_currency=leg.base if fee_in_base else leg.quote,
        latency_ms=latency_ms,
    )


def fill_depth(
    leg: Leg,
    book: Book,
    amount_in: Decimal,
    *,
    index: int,
    order_id: str = "",
    latency_ms: float = 0.0,
) -> LegFill:
    """Fill a market order of ``amount_in`` (quote funds for a buy, base size for a sell) by
    walking the book's depth.

    The base filled is rounded down to ``base_increment`` (the exchange never trades a
    fraction of an increment); ``dealFunds`` is then what exactly that base costs at the walked
    levels, so it never exceeds the funds. When the book runs out the order fills partially
    with what was there, as a market order does. A fill below ``base_min_size`` (or of nothing)
    raises ``PaperAbort("volume_below_minimum")``; an empty side raises ``"empty_book"``.
    """
    fee_in_base = _fee_in_base(leg, index)
    levels = _levels_for(leg, book, index)
    with localcontext(_EXACT):
        if leg.side == "buy":
            raw_base = _base_for_funds(levels, round_down(amount_in, leg.quote_increment))
        else:
            raw_base = min(amount_in, sum((level.size for level in levels), _ZERO))
        base = round_down(raw_base, leg.base_increment)
        if base <= 0 or base < leg.base_min_size:
            raise PaperAbort(
                "volume_below_minimum", index, f"{leg.pair} fills {base} < min {leg.base_min_size}"
            )
        funds = _cost_of_base(levels, base)
        fee = leg.fee_rate * (base if fee_in_base else funds)
        return _leg_fill(
            leg, index, order_id=order_id, latency_ms=latency_ms, base=base, funds=funds,
            avg_price=_PRICE.divide(funds, base), fee=fee, fee_in_base=fee_in_base,
        )


def fill_top(
    leg: Leg,
    book: Book,
    amount_in: Decimal,
    *,
    index: int,
    order_id: str = "",
    latency_ms: float = 0.0,
) -> LegFill:
    """The seed executor's top-of-book fill, figure for figure.

    Everything trades at the best price regardless of size; ``avg_price`` is that price (not
    funds/base). A buy's quote fee is ``amount_in * rate`` (the seed used the unrounded order
    parameter) paid on top of the funds; a sell's quote fee is ``quote * rate`` taken from the
    proceeds (the seed's ``quote * (1 - rate)``, exactly). The minimum check is the seed's: a
    buy's rounded base, a sell's unrounded size.
    """
    fee_in_base = _fee_in_base(leg, index)
    price = _levels_for(leg, book, index)[0].price
    rate = leg.fee_rate
    if leg.side == "buy":
        funds = round_down(amount_in, leg.quote_increment)
        base = round_down(funds / price, leg.base_increment)
        fee = base * rate if fee_in_base else amount_in * rate
        below_min = base < leg.base_min_size
    else:
        base = round_down(amount_in, leg.base_increment)
        funds = base * price
        fee = base * rate if fee_in_base else funds * rate
        below_min = amount_in < leg.base_min_size
    if below_min:
        raise PaperAbort(
            "volume_below_minimum", index, f"{leg.pair} {amount_in} below min {leg.base_min_size}"
        )
    return _leg_fill(
        leg, index, order_id=order_id, latency_ms=latency_ms,
        base=base, funds=funds, avg_price=price, fee=fee, fee_in_base=fee_in_base,
    )


_FILLERS = {"depth": fill_depth, "top": fill_top}


def spendable(leg: Leg, available: Decimal) -> Decimal:
    """The most a leg can commit from `available` of its input currency, fee included.

    A buy whose fee is charged in its quote (the input) pays `funds × rate` on top of `funds`.
    """
    if leg.side == "buy" and leg.fee_currency == leg.quote:
        return available / (1 + leg.fee_rate)
    return available


def simulate_triangle(
    signal: Signal,
    model: str = "depth",
    *,
    order_ids: Sequence[str] = ("", "", ""),
    latencies_ms: Sequence[float] = (0.0, 0.0, 0.0),
) -> PaperOutcome:
    """Fill the signal's three legs against its books and measure the result.

    ``depth`` chains the legs as live execution does: leg 0 spends its ``order_param``, each
    later leg spends what the previous leg credited (``fill_depth`` rounds it down to the leg's
    increment). A chained buy whose fee is charged in its quote pays that fee on top of its
    funds, so it is funded with ``credited / (1 + fee_rate)``: the account never spends more
    than it holds. ``top`` fills every leg from its own ``order_param``, as the seed did.
    Raises ``PaperAbort`` for a leg the exchange would refuse and ``ValueError`` for an unknown
    model.
    """
    fill = _FILLERS.get(model)
    if fill is None:
        raise ValueError(f"unknown paper fill model {model!r}; expected one of {tuple(_FILLERS)}")
    fills: list[LegFill] = []
    for index, (leg, book) in enumerate(zip(signal.legs, signal.books, strict=True)):
        amount_in = spendable(leg, fills[-1].received) if model == "depth" and fills else leg.order_param
        fills.append(
            fill(leg, book, amount_in, index=index,
                 order_id=order_ids[index], latency_ms=latencies_ms[index])
        )
    spent, returned = fills[0].spent, fills[-1].received
    profit = returned - spent
    return PaperOutcome(
        fills=tuple(fills),
        spent=spent,
        returned=returned,
        profit=profit,
        effective_bps=float(profit / spent * _BPS),
    )
