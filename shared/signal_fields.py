"""Scalar checks for signal fields (amounts, timestamps, symbols, bps) and the one error type.

Split from `shared.signal` so the contract's structure (legs, books, chain) reads apart from the
rules for a single value. Every check raises `SignalError` with a stable reason code; the fast
path (`quick_positive`) builds no message for the common well-formed amount.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from shared.money import parse_decimal

__all__ = [
    "REASONS", "SignalError", "show_value", "parse_amount", "quick_positive", "parse_positive",
    "parse_non_negative", "required", "parse_text", "parse_currency", "parse_timestamp", "parse_bps",
    "MAX_AMOUNT", "MAX_TIMESTAMP", "MAX_PLACES", "check_places",
]  # fmt: skip

REASONS: tuple[str, ...] = (
    "not_a_map", "missing_field", "bad_type", "bad_number", "bad_legs", "bad_pair", "bad_side",
    "broken_chain", "missing_book", "below_min_size", "bad_triangle_key", "bad_correlation_id",
    "bad_volume", "cancelled",
)  # fmt: skip


MAX_AMOUNT = Decimal("1e12")
MIN_ADJUSTED_EXPONENT = -30  # smaller non-zero amounts are typos, not prices
MAX_DIGITS = 30  # beyond this, Decimal arithmetic at 28 digits would silently round
MAX_PLACES = 18  # the registry counts capital in 10^-18 units (shared/store/lua/common.lua)
_SMALLEST = Decimal(1).scaleb(MIN_ADJUSTED_EXPONENT)
MAX_TIMESTAMP = 1 << 53  # epoch ms far beyond any real clock, still exact as a float
MAX_ABS_BPS = 1e9
_ZERO = Decimal(0)

_CURRENCY = re.compile(r"[A-Z0-9]{1,20}")


class SignalError(Exception):
    """A rejected signal: `reason` is one of REASONS (for counters), `message` is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def show_value(value: object) -> str:
    """A short repr for messages: a hostile signal must not be able to flood the logs."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_amount(value: object, where: str) -> Decimal:
    """A finite, bounded Decimal from str/int/float (not bool: `true` is not an amount)."""
    kind = type(value)
    if kind is not str and kind is not int and kind is not float:
        raise SignalError("bad_type", f"{where} must be a number (string, int or float), got {kind.__name__}")
    try:
        return parse_decimal(value, max_abs=MAX_AMOUNT, min_exponent=MIN_ADJUSTED_EXPONENT, max_digits=MAX_DIGITS)
    except ValueError as exc:
        raise SignalError("bad_number", f"{where}: {exc}") from None


def quick_positive(value: object) -> Decimal | None:
    """The common case in one step: a short string holding a plain positive amount.

    Returns None for anything else, and the caller re-checks with `parse_positive`, which knows the
    exact complaint; messages are only built when they are needed.
    """
    if type(value) is str and len(value) <= MAX_DIGITS:  # type: ignore[arg-type]
        try:
            amount = Decimal(value)  # type: ignore[arg-type]
            if _SMALLEST <= amount <= MAX_AMOUNT:
                return amount
        except InvalidOperation:  # not a number, or a NaN in the comparison
            return None
    return None


def check_places(amount: Decimal, where: str) -> Decimal:
    """`amount` if it has at most MAX_PLACES significant decimal places, else `bad_number`.

    Applied to the amounts the registry counts (starting_volume, order_param): a finer amount
    could not be claimed exactly against a capital cap, so it is refused here, with a reason,
    rather than failing inside the registry call. Trailing zeros carry no value and pass.
    """
    _, digits, exponent = amount.as_tuple()
    if type(exponent) is not int or exponent >= -MAX_PLACES:
        return amount
    places, end = -exponent, len(digits)
    while places > MAX_PLACES and end > 0 and digits[end - 1] == 0:  # no quantize: it can overflow the context
        places, end = places - 1, end - 1
    if places > MAX_PLACES:
        raise SignalError("bad_number", f"{where} has more than {MAX_PLACES} decimal places: {show_value(str(amount))}")
    return amount


def parse_positive(value: object, where: str) -> Decimal:
    amount = parse_amount(value, where)
    if amount <= _ZERO:
        raise SignalError("bad_number", f"{where} must be > 0, got {show_value(value)}")
    return amount


def parse_non_negative(value: object, where: str) -> Decimal:
    amount = parse_amount(value, where)
    if amount < _ZERO:
        raise SignalError("bad_number", f"{where} must be >= 0, got {show_value(value)}")
    return amount


def required(raw: Mapping, key: str, where: str) -> object:
    value = raw.get(key)
    if value is None:
        raise SignalError("missing_field", f"{where}{key} is required")
    return value


def parse_text(value: object, where: str) -> str:
    if type(value) is not str:
        raise SignalError("bad_type", f"{where} must be a string, got {type(value).__name__}")
    return value  # type: ignore[return-value]


def parse_currency(value: object, where: str) -> str:
    text = parse_text(value, where)
    if _CURRENCY.fullmatch(text) is None:
        raise SignalError("bad_pair", f"{where} must be a currency symbol [A-Z0-9]{{1,20}}, got {show_value(text)}")
    return text


def parse_timestamp(value: object, where: str) -> int:
    kind = type(value)
    if kind is int:
        stamp = value
    elif kind is float:
        if not math.isfinite(value) or not value.is_integer():  # type: ignore[union-attr, arg-type]
            raise SignalError("bad_number", f"{where} must be whole milliseconds, got {show_value(value)}")
        stamp = int(value)  # type: ignore[arg-type]
    else:
        raise SignalError("bad_type", f"{where} must be an integer (epoch ms), got {kind.__name__}")
    if not 0 <= stamp <= MAX_TIMESTAMP:  # type: ignore[operator]
        raise SignalError("bad_number", f"{where} must be epoch ms >= 0, got {show_value(value)}")
    return stamp  # type: ignore[return-value]


def parse_bps(value: object) -> float:
    kind = type(value)
    if kind is float:
        bps = value
    elif kind is int or kind is str:
        try:
            bps = float(value)  # type: ignore[arg-type]
        except (ValueError, OverflowError):
            raise SignalError("bad_number", f"predicted_bps is not a number: {show_value(value)}") from None
    else:
        raise SignalError("bad_type", f"predicted_bps must be a number, got {kind.__name__}")
    if not math.isfinite(bps) or abs(bps) > MAX_ABS_BPS:  # type: ignore[arg-type]
        raise SignalError("bad_number", f"predicted_bps must be finite and bounded, got {show_value(value)}")
    return bps  # type: ignore[return-value]
