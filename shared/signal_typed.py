"""The intake's fast path: a signal frame decoded straight from its msgpack bytes into a `Signal`.

msgspec decodes the frame into typed Structs in C (field names, kinds, list lengths, the level
forms `{price, size}` and `[price, size]`); the contract's rules that are not about kinds (the
chain, the volume, the books against the sizes, bounds and places of every amount) are the same
Python checks `parse_signal` runs. Book levels are not turned into Decimals here: admission only
needs one side's best price, so each side stays the flat list of strings it arrived as, checked
in one regular-expression pass, and becomes `BookLevel`s in the worker's fill model.

The fast path is deliberately narrower than the contract: it takes only what the engine sends
(amounts as plain decimal strings, whole-ms integer stamps). Anything else — a msgspec decode or
validation error, any failed check — returns the frame to the canonical path (`msgpack` decode,
then `parse_signal`), which either accepts it (an int amount, `"1e-5"`) or raises the exact
`SignalError` reason and message it always did, so msgspec's errors map onto the existing reason
codes by construction, and undecodable bytes still become the codec's `BadFrame`. Only refused or
unusual frames pay for the second decode.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Union

import msgspec
from msgspec import Meta, Struct, field

from shared.codec import BadFrame, unpack_body
from shared.signal import (
    DEFAULT_FEE_RATE,
    MAX_FEE_RATE,
    MAX_LEVELS,
    Book,
    Leg,
    Signal,
    SignalError,
    check_chain,
    check_volume,
    check_books_and_sizes,
    parse_correlation_id,
    parse_signal,
    parse_triangle_key,
    PAIR,
    SIDES,
)
from shared.signal_fields import (
    check_places,
    parse_bps,
    parse_currency,
    parse_non_negative,
    parse_positive,
    parse_timestamp,
    quick_positive,
)

__all__ = ["decode_signal", "decode_frame"]

_ZERO = Decimal(0)


class _Level(Struct, gc=False):
    price: str
    size: str


_Side = Annotated[list[Union[tuple[str, str], _Level]], Meta(max_length=MAX_LEVELS)]


class _Book(Struct, gc=False):
    asks: _Side | None = None
    bids: _Side | None = None


class _Leg(Struct, gc=False):
    pair: str
    side: str
    order_param: str
    base_min_size: str | None = None
    base_increment: str | None = None
    quote_increment: str | None = None
    fee_rate: str | None = None
    fee_currency: str | None = None


_Stamp = Annotated[int, Meta(ge=0)]


class _Wire(Struct, gc=False):
    legs: Annotated[list[_Leg], Meta(min_length=3, max_length=3)]
    books: Annotated[list[_Book], Meta(min_length=3, max_length=3)]
    primary_quote: str
    starting_volume: str
    correlation_id: str | None = None
    triangle_key: list[str] | None = None
    live: bool | None = None
    predicted_bps: float | None = None
    book_ts_ms: _Stamp | None = None
    ts_ms: _Stamp | None = None
    t_sock_arrive_ms: _Stamp | None = None
    t_arrive_ms: _Stamp | None = None
    t_eval_ms: _Stamp | None = None
    cancelled: bool | None = field(default=None, name="_cancelled")


_decode = msgspec.msgpack.Decoder(_Wire).decode

# A level amount the fast path takes: a plain positive decimal below 1e12 with at most 18 places
# (so within every bound `parse_positive` applies); "1e-5", "5." or "0" go the canonical way.
_NUMBER = r"(?=[0-9.]*[1-9])[0-9]{1,12}(?:\.[0-9]{1,18})?"
_SIDE_TEXT = re.compile(rf"(?:{_NUMBER},)*{_NUMBER}")


def _flat_side(levels: list | None) -> list[str]:
    """One side as [price, size, ...] strings (checked with the others by `_check_amounts`)."""
    if not levels:
        return []
    return [value for level in levels for value in (level if type(level) is tuple else (level.price, level.size))]


def _check_amounts(sides: list[list[str]]) -> None:
    """Every level amount of every side is one the fast path takes: one regular-expression pass."""
    flat = [value for side in sides for value in side]
    if not flat:
        return
    text = ",".join(flat)
    if text.count(",") != len(flat) - 1 or _SIDE_TEXT.fullmatch(text) is None:
        raise SignalError("bad_number", "a level amount the fast path does not take")


def _leg(raw: _Leg, where: str) -> Leg:
    match = PAIR.fullmatch(raw.pair)
    if match is None or match[1] == match[2]:
        raise SignalError("bad_pair", where)
    if raw.side not in SIDES:
        raise SignalError("bad_side", where)
    quick = quick_positive
    value = raw.order_param
    order_param = check_places(quick(value) or parse_positive(value, where), where)
    value = raw.base_min_size
    base_min_size = _ZERO if value is None else quick(value) or parse_non_negative(value, where)
    value = raw.base_increment
    base_increment = _ZERO if value is None else quick(value) or parse_non_negative(value, where)
    value = raw.quote_increment
    quote_increment = _ZERO if value is None else quick(value) or parse_non_negative(value, where)
    value = raw.fee_rate
    if value is None:
        fee_rate = DEFAULT_FEE_RATE
    else:
        fee_rate = quick(value) or parse_non_negative(value, where)
        if fee_rate >= MAX_FEE_RATE:
            raise SignalError("bad_number", where)
    value = raw.fee_currency
    fee_currency = match[2] if value is None else parse_currency(value, where)
    return Leg(raw.pair, raw.side, order_param, base_min_size, base_increment, quote_increment, fee_rate, fee_currency)


def _build(wire: _Wire) -> Signal:
    if wire.cancelled:
        raise SignalError("cancelled", "")
    primary_quote = parse_currency(wire.primary_quote, "primary_quote")
    value = wire.starting_volume
    starting_volume = check_places(quick_positive(value) or parse_positive(value, "starting_volume"), "starting_volume")
    raw_legs = wire.legs
    legs = (_leg(raw_legs[0], "legs[0]"), _leg(raw_legs[1], "legs[1]"), _leg(raw_legs[2], "legs[2]"))
    check_chain(legs, primary_quote)
    b0, b1, b2 = wire.books
    sides = [_flat_side(b0.asks), _flat_side(b0.bids), _flat_side(b1.asks), _flat_side(b1.bids),
             _flat_side(b2.asks), _flat_side(b2.bids)]
    _check_amounts(sides)
    books = (Book.from_flat(sides[0], sides[1]), Book.from_flat(sides[2], sides[3]), Book.from_flat(sides[4], sides[5]))
    check_books_and_sizes(legs, books)
    check_volume(starting_volume, legs[0])
    pairs = (legs[0].pair, legs[1].pair, legs[2].pair)
    triangle_key = parse_triangle_key(wire.triangle_key, pairs)
    correlation_id = parse_correlation_id(wire.correlation_id)
    bps = wire.predicted_bps
    stamps = [0 if stamp is None else parse_timestamp(stamp, "stamp") for stamp in (
        wire.book_ts_ms, wire.ts_ms, wire.t_sock_arrive_ms, wire.t_arrive_ms, wire.t_eval_ms)]
    return Signal(
        correlation_id, triangle_key, primary_quote, starting_volume, 0.0 if bps is None else parse_bps(bps),
        bool(wire.live), legs, books, *stamps,  # type: ignore[arg-type]
    )


def decode_signal(body: bytes) -> Signal | None:
    """The `Signal` in a msgpack frame body by the fast path, or None: take the canonical path."""
    try:
        return _build(_decode(body))
    except (msgspec.DecodeError, msgspec.ValidationError, SignalError):
        return None
    except Exception:  # noqa: BLE001 - whatever the fast path trips on, the canonical path judges
        return None


def decode_frame(body: bytes) -> object:
    """A frame body as the intake handles it: a `Signal` (valid, fast path), a `BadFrame` (not
    msgpack), or the decoded object for `parse_signal` to accept or refuse with its reason."""
    signal = decode_signal(body)
    if signal is not None:
        return signal
    return unpack_body(body)


def parse_frame(body: bytes) -> Signal:
    """`decode_frame` then `parse_signal`: a Signal or SignalError (a non-msgpack body is `not_a_map`
    here; the server counts it as its BadFrame reason instead)."""
    item = decode_frame(body)
    if isinstance(item, Signal):
        return item
    if isinstance(item, BadFrame):
        raise SignalError("not_a_map", f"{item.reason}: {item.detail}")
    return parse_signal(item)
