"""Decimal helpers for money: rounding to exchange increments, plain formatting, strict parsing.

Amounts are `Decimal` from the moment they are parsed; these helpers exist so that nobody is
tempted to go through `float`, and so that every place that rounds an order size rounds the
same way (down: an order rounded up would spend money the account does not have).
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext

__all__ = ["round_down", "fmt_decimal", "parse_decimal"]

# Head-room beyond the digits a quotient needs, so the integer part is always exact.
_EXTRA_DIGITS = 10


def round_down(value: Decimal, increment: Decimal) -> Decimal:
    """Truncate `value` to a multiple of `increment`, with `increment`'s exponent.

    The division runs in a context wide enough for the whole integer part and with ROUND_DOWN,
    so a value a hair below a multiple can never be rounded *up* to it by the default
    28-digit, half-even context.
    """
    if increment <= 0:
        return value
    digits_needed = max(value.adjusted() - increment.adjusted(), 0) + 2 * len(increment.as_tuple().digits)
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, digits_needed + _EXTRA_DIGITS)
        ctx.rounding = ROUND_DOWN
        steps = (value / increment).to_integral_value()
        return (steps * increment).quantize(increment)


def fmt_decimal(value: Decimal) -> str:
    """Plain decimal text ("100", "0.1", "0"): what exchanges and Grafana expect.

    `str(Decimal)` may use exponent notation ("1E+2") and keeps trailing zeros; `normalize()`
    would round to the context precision, so the zeros are stripped from the text instead.
    """
    if not value.is_finite():
        raise ValueError(f"cannot format non-finite amount {value!r}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def parse_decimal(
    value: object,
    *,
    max_abs: Decimal | None = None,
    min_exponent: int | None = None,
    max_digits: int | None = None,
) -> Decimal:
    """A finite Decimal from str/int/float/Decimal; floats go through `str` to keep their digits.

    Raises ValueError for bool (a JSON `true` is not an amount), NaN, infinities, anything that
    is not a number, and -- when the bounds are given -- for magnitudes above `max_abs`, non-zero
    magnitudes below 10**min_exponent, or more than `max_digits` significant digits: input from
    another process is bounded before Decimal arithmetic (28 digits by default) rounds it.
    """
    if isinstance(value, bool):
        raise ValueError(f"a boolean is not a number: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        if max_abs is not None and abs(value) > max_abs:  # before converting a huge int
            raise ValueError(f"absurdly large: {value!r:.40}")
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        result = Decimal(str(value))
    elif isinstance(value, str):
        if max_digits is not None and len(value) > 2 * max_digits + 8:  # before parsing a huge text
            raise ValueError(f"too long to be a number: {value[:40]!r}")
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a number: {value[:40]!r}") from None
    else:
        raise ValueError(f"not a number: {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r:.40}")
    if max_abs is not None and abs(result) > max_abs:
        raise ValueError(f"absurdly large: {value!r:.40}")
    if min_exponent is not None and result and result.adjusted() < min_exponent:
        raise ValueError(f"absurdly small: {value!r:.40}")
    if max_digits is not None and len(result.as_tuple().digits) > max_digits:
        raise ValueError(f"more than {max_digits} significant digits: {value!r:.40}")
    return result
