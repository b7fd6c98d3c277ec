"""Edge attribution: where a triangle's predicted edge went, in basis points of what leg 0 spent.

A completed triangle turns `spent` of the primary quote into `returned`. Each leg turns its
input into its output at some price and fee, so `returned / spent` is a product of per-leg
factors. Swapping in one effect at a time gives a waterfall of hypothetical multipliers:

    M_G = Π rate(best_i)               gross: each leg at its snapshot's best price, no fee
    M_F = Π rate(best_i) · fee_i       + fees, by the convention the leg is charged in
    M_S = Π rate(snapshot_i) · fee_i   + slippage: the snapshot's VWAP for the size each leg traded
    M_L = Π rate(fill_i) · fee_i       + latency drift: the price each leg actually filled at
    E   = returned / spent             + rounding: increments and dust, what the account really did

where rate(p) is output per input (1/p for a buy, p for a sell; p = dealFunds / dealSize) and
fee_i is 1/(1+r) for a fee charged on top of what the leg spends (a buy's quote fee, a sell's
base fee) and 1−r for one taken from what it receives. Then, in bps (×10⁴):

    gross    = (M_G − 1)        fees     = M_G − M_F      slippage = M_F − M_S
    latency  = M_S − M_L        rounding = M_L − E        model    = predicted − gross

so `predicted − model − fees − slippage − latency − rounding = effective`. `model` is what the
engine's figure claimed beyond the snapshot's gross edge: 0 for an engine that predicts gross,
about −(fees + rounding) for one that predicts net of them. `rounding` is everything left once
prices and fees are accounted for: each leg spending less than the previous one delivered
(increments, the funds set aside for a buy's fee), and with the seed's `top` model, the engine's
pre-sized legs not chaining exactly.

Paper fills come from the snapshot itself, so the snapshot price *is* the fill price and
latency drift is 0. In live mode the snapshot price is `snapshot_prices(signal, fills)`, the
VWAP the signal's book promised for the size each leg really traded; the live executor passes
it to `attribute`.

Each term is rounded to 0.001 bps, as the report writes bps; predicted and effective are taken
as the report writes them, and `rounding` absorbs the ≤ 0.002 bps this quantisation leaves, so
the identity holds exactly on the stream's decimal strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Context, Decimal

from shared.report import EdgeBreakdown, LegFill
from shared.signal import BookLevel, Leg, Signal

__all__ = ["attribute", "snapshot_prices", "snapshot_vwap"]

_ONE = Decimal(1)
_BPS = Decimal(10_000)
_PLACES = Decimal("0.001")
_CONTEXT = Context(prec=40)  # products of three quotients: far more digits than 0.001 bps needs


def _leg_rate(side: str, price: Decimal) -> Decimal:
    """Output per unit of input at `price` (quote per base)."""
    return _CONTEXT.divide(_ONE, price) if side == "buy" else price


def _fee_factor(leg: Leg, fee_currency: str) -> Decimal:
    """What one unit of input delivers after the fee, relative to no fee."""
    rate = leg.fee_rate
    on_top = (fee_currency == leg.quote) if leg.side == "buy" else (fee_currency == leg.base)
    return _CONTEXT.divide(_ONE, _ONE + rate) if on_top else _ONE - rate


def _fill_price(fill: LegFill) -> Decimal:
    return _CONTEXT.divide(fill.filled_funds, fill.filled_size)


def snapshot_vwap(levels: Sequence[BookLevel], base: Decimal) -> Decimal:
    """Average price of taking `base` from `levels` best first; beyond the book's depth the rest
    is priced at its last level (the snapshot says nothing worse)."""
    if not levels or base <= 0:
        raise ValueError("a VWAP needs levels and a positive size")
    funds = Decimal(0)
    remaining = base
    for level in levels:
        take = min(level.size, remaining)
        funds = _CONTEXT.add(funds, _CONTEXT.multiply(take, level.price))
        remaining -= take
        if remaining <= 0:
            break
    if remaining > 0:
        funds = _CONTEXT.add(funds, _CONTEXT.multiply(remaining, levels[-1].price))
    return _CONTEXT.divide(funds, base)


def snapshot_prices(signal: Signal, fills: Sequence[LegFill]) -> tuple[Decimal, ...]:
    """Per leg, the VWAP the signal's book promised for the base size that leg actually traded
    (asks for a buy, bids for a sell): the live executor's reference for latency drift."""
    prices = []
    for fill, leg, book in zip(fills, signal.legs, signal.books, strict=True):
        prices.append(snapshot_vwap(book.asks if leg.side == "buy" else book.bids, fill.filled_size))
    return tuple(prices)


def _bps_text(value: float) -> Decimal:
    """A report float as the stream writes it (3 decimals)."""
    return Decimal(f"{value:.3f}")


def _to_bps(multiplier_delta: Decimal) -> Decimal:
    return _CONTEXT.multiply(multiplier_delta, _BPS).quantize(_PLACES)


def attribute(
    signal: Signal,
    fills: Sequence[LegFill],
    effective_bps: float,
    snapshot: Sequence[Decimal] | None = None,
) -> EdgeBreakdown:
    """The breakdown of a triangle whose three legs all filled; `effective_bps` is the report's.

    `snapshot` holds each leg's snapshot price (live: `snapshot_prices`); None means the fills
    came from the snapshot (paper), so there is no latency drift by construction.
    Raises ValueError unless there are three fills with a traded size.
    """
    if len(fills) != 3 or any(fill.filled_size <= 0 for fill in fills):
        raise ValueError("attribution needs three legs that traded")
    fill_prices = [_fill_price(fill) for fill in fills]
    snapshot_px = list(snapshot) if snapshot is not None else fill_prices
    gross = fees = depth = filled = _ONE
    legs = zip(signal.legs, signal.books, fills, fill_prices, snapshot_px, strict=True)
    for leg, book, fill, fill_px, snap_px in legs:
        best = book.asks[0].price if leg.side == "buy" else book.bids[0].price
        fee = _fee_factor(leg, fill.fee_currency)
        gross = _CONTEXT.multiply(gross, _leg_rate(leg.side, best))
        fees = _CONTEXT.multiply(fees, _CONTEXT.multiply(_leg_rate(leg.side, best), fee))
        depth = _CONTEXT.multiply(depth, _CONTEXT.multiply(_leg_rate(leg.side, snap_px), fee))
        filled = _CONTEXT.multiply(filled, _CONTEXT.multiply(_leg_rate(leg.side, fill_px), fee))
    predicted = _bps_text(signal.predicted_bps)
    gross_bps = _to_bps(gross - _ONE)
    fees_bps = _to_bps(gross - fees)
    slippage_bps = _to_bps(fees - depth)
    latency_bps = _to_bps(depth - filled)
    rounding_bps = gross_bps - fees_bps - slippage_bps - latency_bps - _bps_text(effective_bps)
    return EdgeBreakdown(
        predicted=predicted,
        gross=gross_bps,
        model=predicted - gross_bps,
        fees=fees_bps,
        slippage=slippage_bps,
        latency=latency_bps,
        rounding=rounding_bps,
    )
