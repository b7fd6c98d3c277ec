"""The signal contract: parse and validate a raw mapping into frozen, typed objects.

A signal is the seed executor's contract (see its module docstring) plus `correlation_id`
(generated when absent) and `triangle_key` (the three pair symbols). It arrives from a process
we do not control, so `parse_signal` treats its input as hostile: whatever it is given, it
returns a `Signal` or raises `SignalError` with a stable machine-readable `reason` (counted by
the supervisor) and a message an operator can act on. It runs once per signal on the hot path,
so it validates in one pass with precompiled patterns and no per-character work.

Money is `Decimal` from the moment it is parsed; `signal_to_wire` gives the contract mapping
back (amounts as plain decimal strings) so a validated signal can cross a process boundary and
be re-parsed to an equal `Signal`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from shared.money import fmt_decimal
from shared.signal_fields import (
    REASONS,
    SignalError,
    check_places,
    parse_bps,
    parse_currency,
    parse_non_negative,
    parse_positive,
    parse_text,
    parse_timestamp,
    quick_positive,
    required,
    show_value,
)

__all__ = [
    "REASONS", "SignalError", "BookLevel", "Book", "Leg", "Signal", "parse_signal", "signal_to_wire",
    "signal_to_compact", "signal_from_compact",
]

MAX_LEVELS = 200
MAX_FEE_RATE = Decimal("0.1")
DEFAULT_FEE_RATE = Decimal("0.001")
_ZERO = Decimal(0)

_PAIR = re.compile(r"([A-Z0-9]{1,20})-([A-Z0-9]{1,20})")
_CORRELATION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SIDES = frozenset(("buy", "sell"))
_TIMESTAMP_FIELDS = ("book_ts_ms", "ts_ms", "t_sock_arrive_ms", "t_arrive_ms", "t_eval_ms")


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    size: Decimal


class Book:
    """One pair's book snapshot as the engine saw it; asks ascending, bids descending.

    Immutable and compared by value like the other records. Its levels may be held as the flat
    decimal strings they arrived as (`from_flat`, `[price, size, price, size, ...]`, already
    validated): admission reads only the best price of one side, so the `BookLevel` tuples are
    built on first access, in the worker's fill model, and the compact form forwards the strings
    untouched instead of re-formatting every level.
    """

    __slots__ = ("_asks", "_bids", "_flat_asks", "_flat_bids")

    def __init__(self, asks: tuple[BookLevel, ...] = (), bids: tuple[BookLevel, ...] = ()) -> None:
        put = object.__setattr__
        put(self, "_asks", tuple(asks))
        put(self, "_bids", tuple(bids))
        put(self, "_flat_asks", None)
        put(self, "_flat_bids", None)

    @classmethod
    def from_flat(cls, asks: list[str], bids: list[str]) -> "Book":
        """A book over validated flat strings; Decimal levels are built when first read."""
        book = cls.__new__(cls)
        put = object.__setattr__
        put(book, "_asks", None)
        put(book, "_bids", None)
        put(book, "_flat_asks", asks)
        put(book, "_flat_bids", bids)
        return book

    @property
    def asks(self) -> tuple[BookLevel, ...]:
        if self._asks is None:
            object.__setattr__(self, "_asks", _levels_from_compact(self._flat_asks))  # type: ignore[arg-type]
        return self._asks

    @property
    def bids(self) -> tuple[BookLevel, ...]:
        if self._bids is None:
            object.__setattr__(self, "_bids", _levels_from_compact(self._flat_bids))  # type: ignore[arg-type]
        return self._bids

    @property
    def flat_asks(self) -> list[str]:
        """The asks as flat exact decimal strings (the compact form)."""
        return self._flat_asks if self._flat_asks is not None else _levels_to_compact(self.asks)

    @property
    def flat_bids(self) -> list[str]:
        return self._flat_bids if self._flat_bids is not None else _levels_to_compact(self.bids)

    def has_asks(self) -> bool:
        return bool(self._flat_asks) if self._asks is None else bool(self._asks)

    def has_bids(self) -> bool:
        return bool(self._flat_bids) if self._bids is None else bool(self._bids)

    def best_ask_price(self) -> Decimal:
        """The best ask's price without building the other levels (the book must have asks)."""
        flat = self._flat_asks
        return Decimal(flat[0]) if flat is not None else self.asks[0].price  # type: ignore[union-attr]

    @property
    def best_ask(self) -> BookLevel | None:
        asks = self.asks
        return asks[0] if asks else None

    @property
    def best_bid(self) -> BookLevel | None:
        bids = self.bids
        return bids[0] if bids else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Book):
            return NotImplemented
        return self.asks == other.asks and self.bids == other.bids

    def __hash__(self) -> int:
        return hash((self.asks, self.bids))

    def __repr__(self) -> str:
        return f"Book(asks={self.asks!r}, bids={self.bids!r})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Book is immutable (cannot set {name})")


@dataclass(frozen=True, slots=True)
class Leg:
    """One order of the triangle; `order_param` is funds (quote) for a buy, size (base) for a sell."""

    pair: str
    side: str
    order_param: Decimal
    base_min_size: Decimal
    base_increment: Decimal
    quote_increment: Decimal
    fee_rate: Decimal
    fee_currency: str

    @property
    def base(self) -> str:
        return self.pair.partition("-")[0]

    @property
    def quote(self) -> str:
        return self.pair.partition("-")[2]

    @property
    def input_currency(self) -> str:
        """What the order spends: quote for a buy, base for a sell."""
        return self.quote if self.side == "buy" else self.base

    @property
    def output_currency(self) -> str:
        return self.base if self.side == "buy" else self.quote


@dataclass(frozen=True, slots=True)
class Signal:
    correlation_id: str
    triangle_key: tuple[str, str, str]
    primary_quote: str
    starting_volume: Decimal
    predicted_bps: float
    live: bool
    legs: tuple[Leg, Leg, Leg]
    books: tuple[Book, Book, Book]
    book_ts_ms: int
    ts_ms: int
    t_sock_arrive_ms: int
    t_arrive_ms: int
    t_eval_ms: int

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(leg.pair for leg in self.legs)

    @property
    def triangle_id(self) -> str:
        """Order-free identity of the triangle (the seed compared frozenset(triangle_key))."""
        return ",".join(sorted(leg.pair for leg in self.legs))


def _parse_leg(raw: object, index: int) -> Leg:
    where = f"legs[{index}]."
    if not isinstance(raw, Mapping):
        raise SignalError("bad_type", f"legs[{index}] must be a map, got {type(raw).__name__}")
    pair = parse_text(required(raw, "pair", where), where + "pair")
    match = _PAIR.fullmatch(pair)
    if match is None or match[1] == match[2]:
        raise SignalError("bad_pair", f"{where}pair must be BASE-QUOTE of two [A-Z0-9]{{1,20}} symbols, got {show_value(pair)}")
    side = required(raw, "side", where)
    if type(side) is not str or side not in _SIDES:
        raise SignalError("bad_side", f"{where}side must be 'buy' or 'sell', got {show_value(side)}")
    value = required(raw, "order_param", where)
    quick = quick_positive
    order_param = check_places(quick(value) or parse_positive(value, where + "order_param"), where + "order_param")
    get = raw.get
    value = get("base_min_size")
    base_min_size = _ZERO if value is None else quick(value) or parse_non_negative(value, where + "base_min_size")
    value = get("base_increment")
    base_increment = _ZERO if value is None else quick(value) or parse_non_negative(value, where + "base_increment")
    value = get("quote_increment")
    quote_increment = _ZERO if value is None else quick(value) or parse_non_negative(value, where + "quote_increment")
    value = get("fee_rate")
    if value is None:
        fee_rate = DEFAULT_FEE_RATE
    else:
        fee_rate = quick(value) or parse_non_negative(value, where + "fee_rate")
        if fee_rate >= MAX_FEE_RATE:
            raise SignalError("bad_number", f"{where}fee_rate must be in [0, 0.1), got {show_value(value)}")
    value = get("fee_currency")
    fee_currency = match[2] if value is None else parse_currency(value, where + "fee_currency")
    return Leg(pair, side, order_param, base_min_size, base_increment, quote_increment, fee_rate, fee_currency)  # type: ignore[arg-type]


def _parse_levels(raw: object, where: str) -> tuple[BookLevel, ...]:
    if raw is None:
        return ()
    if type(raw) is not list and type(raw) is not tuple:
        raise SignalError("bad_type", f"{where} must be a list of levels, got {type(raw).__name__}")
    if len(raw) > MAX_LEVELS:  # type: ignore[arg-type]
        raise SignalError("bad_type", f"{where} has {len(raw)} levels, at most {MAX_LEVELS} allowed")  # type: ignore[arg-type]
    levels = []
    quick = quick_positive
    for n, level in enumerate(raw):  # type: ignore[arg-type]
        kind = type(level)
        if kind is dict or (kind is not list and kind is not tuple and isinstance(level, Mapping)):
            price = level.get("price")
            size = level.get("size")
            if price is None or size is None:
                raise SignalError("missing_field", f"{where}[{n}] needs both price and size")
        elif (kind is list or kind is tuple) and len(level) == 2:
            price, size = level
        else:
            raise SignalError("bad_type", f"{where}[{n}] must be a {{price, size}} map or a [price, size] pair")
        price_amount = quick(price) or parse_positive(price, f"{where}[{n}].price")
        size_amount = quick(size) or parse_positive(size, f"{where}[{n}].size")
        levels.append(BookLevel(price_amount, size_amount))
    return tuple(levels)


def _parse_book(raw: object, index: int) -> Book:
    if not isinstance(raw, Mapping):
        raise SignalError("bad_type", f"books[{index}] must be a map, got {type(raw).__name__}")
    return Book(_parse_levels(raw.get("asks"), f"books[{index}].asks"), _parse_levels(raw.get("bids"), f"books[{index}].bids"))


def _check_chain(legs: tuple[Leg, ...], primary_quote: str) -> None:
    held = primary_quote
    for i, leg in enumerate(legs):
        if leg.input_currency != held:
            raise SignalError(
                "broken_chain",
                f"legs[{i}] ({leg.side} {leg.pair}) spends {leg.input_currency} but the chain holds {held}",
            )
        held = leg.output_currency
    if held != primary_quote:
        raise SignalError("broken_chain", f"legs[2] returns {held}, not primary_quote {primary_quote}")


def _check_volume(starting_volume: Decimal, leg: Leg) -> None:
    """The declared volume must be what leg 0 spends, since admission claims capital for it.

    The chain check has made leg 0 spend primary_quote, and `order_param` is that spend in
    primary_quote units: the funds of a buy (quote = primary_quote) or the size of a sell (base =
    primary_quote; size x price would be in the other currency). A signal declaring less than
    its first order spends would get past the capital cap, so any disagreement is refused.
    """
    if starting_volume != leg.order_param:
        raise SignalError(
            "bad_volume",
            f"starting_volume {starting_volume} disagrees with what legs[0] spends: "
            f"{leg.order_param} {leg.input_currency} ({'funds' if leg.side == 'buy' else 'size'} of the {leg.side})",
        )


def _check_books_and_sizes(legs: tuple[Leg, ...], books: tuple[Book, ...]) -> None:
    for i, (leg, book) in enumerate(zip(legs, books)):
        if leg.side == "buy":
            if not book.has_asks():
                raise SignalError("missing_book", f"books[{i}] has no asks for the buy on {leg.pair}")
            # funds / best ask >= min base size, without a division
            best = book.best_ask_price()
            if leg.order_param < leg.base_min_size * best:
                raise SignalError(
                    "below_min_size",
                    f"legs[{i}] buys {leg.order_param} {leg.quote} of {leg.pair}: about "
                    f"{leg.order_param / best:.8g} {leg.base} < base_min_size {leg.base_min_size}",
                )
        else:
            if not book.has_bids():
                raise SignalError("missing_book", f"books[{i}] has no bids for the sell on {leg.pair}")
            if leg.order_param < leg.base_min_size:
                raise SignalError(
                    "below_min_size",
                    f"legs[{i}] sells {leg.order_param} {leg.base} < base_min_size {leg.base_min_size}",
                )


def _parse_triangle_key(raw: object, pairs: tuple[str, str, str]) -> tuple[str, str, str]:
    if raw is None:
        return pairs
    if (type(raw) is not list and type(raw) is not tuple) or len(raw) != 3:  # type: ignore[arg-type]
        raise SignalError("bad_triangle_key", f"triangle_key must be a list of 3 pair symbols, got {show_value(raw)}")
    for item in raw:  # type: ignore[union-attr]
        if type(item) is not str:
            raise SignalError("bad_triangle_key", f"triangle_key holds a non-string: {show_value(item)}")
    if set(raw) != set(pairs):  # type: ignore[arg-type]
        raise SignalError("bad_triangle_key", f"triangle_key {show_value(raw)} does not name the legs' pairs {list(pairs)}")
    return pairs


def _parse_correlation_id(raw: object) -> str:
    if raw is None:
        return uuid.uuid4().hex
    if type(raw) is not str or _CORRELATION_ID.fullmatch(raw) is None:  # type: ignore[arg-type]
        raise SignalError("bad_correlation_id", f"correlation_id must match [A-Za-z0-9_.:-]{{1,64}}, got {show_value(raw)}")
    return raw  # type: ignore[return-value]


def _check_not_cancelled(flag: object) -> None:
    """The seed aborted a signal whose `_cancelled` flag was set; Trident refuses it at the door."""
    if flag is True:
        raise SignalError("cancelled", "the signal carries _cancelled: true")
    if flag is not None and flag is not False:
        raise SignalError("bad_type", f"_cancelled must be true or false, got {show_value(flag)}")


def _parse(raw: Mapping) -> Signal:
    _check_not_cancelled(raw.get("_cancelled"))
    legs_raw = required(raw, "legs", "")
    if type(legs_raw) is not list and type(legs_raw) is not tuple:
        raise SignalError("bad_legs", f"legs must be a list of 3 legs, got {type(legs_raw).__name__}")
    if len(legs_raw) != 3:  # type: ignore[arg-type]
        raise SignalError("bad_legs", f"a triangle has exactly 3 legs, got {len(legs_raw)}")  # type: ignore[arg-type]
    books_raw = required(raw, "books", "")
    primary_quote = parse_currency(required(raw, "primary_quote", ""), "primary_quote")
    value = required(raw, "starting_volume", "")
    starting_volume = check_places(quick_positive(value) or parse_positive(value, "starting_volume"), "starting_volume")
    legs = (_parse_leg(legs_raw[0], 0), _parse_leg(legs_raw[1], 1), _parse_leg(legs_raw[2], 2))  # type: ignore[index]
    _check_chain(legs, primary_quote)
    if type(books_raw) is not list and type(books_raw) is not tuple:
        raise SignalError("bad_type", f"books must be a list of 3 books, got {type(books_raw).__name__}")
    if len(books_raw) != 3:  # type: ignore[arg-type]
        raise SignalError("missing_book", f"one book per leg is needed (3), got {len(books_raw)}")  # type: ignore[arg-type]
    books = (_parse_book(books_raw[0], 0), _parse_book(books_raw[1], 1), _parse_book(books_raw[2], 2))  # type: ignore[index]
    _check_books_and_sizes(legs, books)
    _check_volume(starting_volume, legs[0])
    pairs = (legs[0].pair, legs[1].pair, legs[2].pair)
    get = raw.get
    triangle_key = _parse_triangle_key(get("triangle_key"), pairs)
    correlation_id = _parse_correlation_id(get("correlation_id"))
    live = get("live")
    if live is None:
        live = False
    elif type(live) is not bool:
        raise SignalError("bad_type", f"live must be true or false, got {show_value(live)}")
    bps = get("predicted_bps")
    stamps = []
    for name in _TIMESTAMP_FIELDS:
        value = get(name)
        stamps.append(0 if value is None else parse_timestamp(value, name))
    return Signal(
        correlation_id,
        triangle_key,
        primary_quote,
        starting_volume,
        0.0 if bps is None else parse_bps(bps),
        live,
        legs,
        books,
        *stamps,
    )


def parse_signal(raw: object) -> Signal:
    """Validate `raw` (a decoded frame) into a `Signal`; SignalError is the only thing it raises.

    A missing optional field (or an explicit null) takes its default; unknown keys are ignored
    so the engine can add fields without breaking us.
    """
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise SignalError("not_a_map", f"a signal must be a map, got {type(raw).__name__}")
    try:
        for key in raw:
            if type(key) is not str:
                raise SignalError("not_a_map", f"signal keys must be strings, got {show_value(key)}")
        return _parse(raw)
    except SignalError:
        raise
    except Exception as exc:  # a hostile Mapping or container; the contract is "only SignalError"
        raise SignalError("bad_type", f"unreadable signal ({type(exc).__name__})") from exc


def _levels_to_wire(levels: tuple[BookLevel, ...]) -> list[dict[str, str]]:
    return [{"price": fmt_decimal(level.price), "size": fmt_decimal(level.size)} for level in levels]


def signal_to_wire(signal: Signal) -> dict:
    """The contract mapping for `signal` (amounts as plain strings): what crosses to a worker."""
    return {
        "correlation_id": signal.correlation_id,
        "triangle_key": list(signal.triangle_key),
        "primary_quote": signal.primary_quote,
        "starting_volume": fmt_decimal(signal.starting_volume),
        "predicted_bps": signal.predicted_bps,
        "live": signal.live,
        "legs": [
            {
                "pair": leg.pair,
                "side": leg.side,
                "order_param": fmt_decimal(leg.order_param),
                "base_min_size": fmt_decimal(leg.base_min_size),
                "base_increment": fmt_decimal(leg.base_increment),
                "quote_increment": fmt_decimal(leg.quote_increment),
                "fee_rate": fmt_decimal(leg.fee_rate),
                "fee_currency": leg.fee_currency,
            }
            for leg in signal.legs
        ],
        "books": [{"asks": _levels_to_wire(book.asks), "bids": _levels_to_wire(book.bids)} for book in signal.books],
        "book_ts_ms": signal.book_ts_ms,
        "ts_ms": signal.ts_ms,
        "t_sock_arrive_ms": signal.t_sock_arrive_ms,
        "t_arrive_ms": signal.t_arrive_ms,
        "t_eval_ms": signal.t_eval_ms,
    }


# --- the pre-validated form that crosses to a worker --------------------------------------------


def _levels_to_compact(levels: tuple[BookLevel, ...]) -> list[str]:
    flat: list[str] = []
    for level in levels:
        flat.append(str(level.price))
        flat.append(str(level.size))
    return flat


def _levels_from_compact(flat: list[str]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(Decimal(flat[i]), Decimal(flat[i + 1])) for i in range(0, len(flat), 2))


def _strings(flat: object) -> list[str]:
    """A compact side, checked for shape only (its values were validated by the supervisor)."""
    if type(flat) is not list or len(flat) % 2:  # type: ignore[arg-type]
        raise ValueError("a compact book side is a flat list of price, size pairs")
    for value in flat:  # type: ignore[union-attr]
        if type(value) is not str:
            raise ValueError("a compact book level holds decimal strings")
    return flat  # type: ignore[return-value]


# The checks the typed intake (shared.signal_typed) shares with parse_signal.
PAIR = _PAIR
SIDES = _SIDES
check_chain = _check_chain
check_volume = _check_volume
check_books_and_sizes = _check_books_and_sizes
parse_triangle_key = _parse_triangle_key
parse_correlation_id = _parse_correlation_id


def signal_to_compact(signal: Signal) -> list:
    """`signal` as plain msgpack-able lists, in field order, amounts as exact Decimal strings.

    The supervisor validates a signal once; its workers receive this form and rebuild the
    `Signal` with `signal_from_compact`, which checks nothing. It carries no keys, so it also
    packs and unpacks in less time than the contract mapping.
    """
    return [
        signal.correlation_id, list(signal.triangle_key), signal.primary_quote, str(signal.starting_volume),
        signal.predicted_bps, signal.live,
        [[leg.pair, leg.side, str(leg.order_param), str(leg.base_min_size), str(leg.base_increment),
          str(leg.quote_increment), str(leg.fee_rate), leg.fee_currency] for leg in signal.legs],
        [[book.flat_asks, book.flat_bids] for book in signal.books],
        signal.book_ts_ms, signal.ts_ms, signal.t_sock_arrive_ms, signal.t_arrive_ms, signal.t_eval_ms,
    ]


def signal_from_compact(compact: list) -> Signal:
    """Rebuild the `Signal` that `signal_to_compact` flattened, without validating it again.

    Only for what a supervisor validated (the worker channel between Trident's own processes);
    anything from outside goes through `parse_signal`. A malformed form raises ValueError.
    """
    try:
        cid, key, quote, volume, bps, live, legs, books, *stamps = compact
        return Signal(
            cid, (key[0], key[1], key[2]), quote, Decimal(volume), bps, live,
            tuple(Leg(pair, side, Decimal(op), Decimal(bms), Decimal(bi), Decimal(qi), Decimal(fee), fee_ccy)
                  for pair, side, op, bms, bi, qi, fee, fee_ccy in legs),  # type: ignore[arg-type]
            tuple(Book.from_flat(_strings(asks), _strings(bids)) for asks, bids in books),  # type: ignore[arg-type]
            *stamps,
        )
    except (TypeError, ValueError, IndexError, ArithmeticError) as exc:
        raise ValueError(f"malformed compact signal ({type(exc).__name__})") from exc
