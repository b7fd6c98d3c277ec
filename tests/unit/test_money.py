"""Rounding to increments, plain formatting and strict parsing of amounts."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import fmt_decimal, parse_decimal, round_down

D = Decimal


@pytest.mark.parametrize(
    ("value", "increment", "expected"),
    [
        ("1.23456789", "0.0001", "1.2345"),
        ("0.0399", "0.0001", "0.0399"),
        ("100", "0.000001", "100.000000"),
        ("7", "2", "6"),
        ("0.99", "0.25", "0.75"),
        ("0.00009", "0.0001", "0.0000"),
        ("123", "1E+1", "1.2E+2"),
        # 29 nines: the default 28-digit context would round the quotient up to 1.
        ("0." + "9" * 29, "1", "0"),
        ("12345678901234567890.123456789", "0.00000001", "12345678901234567890.12345678"),
    ],
)
def test_round_down_truncates_to_the_increment(value: str, increment: str, expected: str) -> None:
    result = round_down(D(value), D(increment))
    assert result == D(expected)
    assert result.as_tuple().exponent == D(increment).as_tuple().exponent


@pytest.mark.parametrize("increment", ["0", "-0.01"])
def test_round_down_without_increment_keeps_the_value(increment: str) -> None:
    assert round_down(D("1.23456789"), D(increment)) == D("1.23456789")


@given(
    st.decimals(min_value=0, max_value=10**12, allow_nan=False, allow_infinity=False, places=12),
    st.sampled_from(["1", "0.1", "0.0001", "0.00000001", "0.5", "0.25", "5", "1E+2"]),
)
def test_round_down_never_rounds_up_and_loses_less_than_one_increment(value: Decimal, increment: str) -> None:
    step = D(increment)
    result = round_down(value, step)
    assert result <= value
    assert value - result < step
    assert (result / step) == (result / step).to_integral_value()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1E+2", "100"),
        ("0.10", "0.1"),
        ("0", "0"),
        ("0.000", "0"),
        ("-0", "0"),
        ("-0.50", "-0.5"),
        ("1E-8", "0.00000001"),
        ("12.3400", "12.34"),
        ("1000", "1000"),
        ("0.0000000000000000000000000000001", "0.0000000000000000000000000000001"),
    ],
)
def test_fmt_decimal_is_plain_and_minimal(value: str, expected: str) -> None:
    assert fmt_decimal(D(value)) == expected


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_fmt_decimal_refuses_non_finite(value: str) -> None:
    with pytest.raises(ValueError):
        fmt_decimal(D(value))


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_fmt_decimal_round_trips_and_never_uses_exponents(value: Decimal) -> None:
    text = fmt_decimal(value)
    assert "E" not in text and "e" not in text
    assert D(text) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.1", D("0.1")), (5, D(5)), (0.1, D("0.1")), (1e-7, D("1E-7")), (D("2.5"), D("2.5")), ("-3", D(-3))],
)
def test_parse_decimal_accepts_numbers(value: object, expected: Decimal) -> None:
    assert parse_decimal(value) == expected


@pytest.mark.parametrize(
    "value", [True, False, None, "abc", "", "NaN", "inf", float("nan"), float("inf"), [1], {"a": 1}, b"1", D("NaN")]
)
def test_parse_decimal_rejects_non_numbers(value: object) -> None:
    with pytest.raises(ValueError):
        parse_decimal(value)


BOUNDS = {"max_abs": D("1e12"), "min_exponent": -30, "max_digits": 30}


@pytest.mark.parametrize("value", ["1e12", "-1e12", 10**12, "1e-30", "0", "0.000000000000000000000000000000000", "1." + "2" * 29])
def test_parse_decimal_bounds_accept_the_edges(value: object) -> None:
    assert parse_decimal(value, **BOUNDS) == D(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("1.0000001e12", "large"),
        (10**12 + 1, "large"),
        (10**400, "large"),
        ("-2e12", "large"),
        ("9e-31", "small"),
        ("1." + "2" * 30, "digits"),
        ("1" * 100, "long"),
    ],
)
def test_parse_decimal_bounds_reject_absurd_values(value: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_decimal(value, **BOUNDS)  # type: ignore[arg-type]
    assert parse_decimal(value) == D(value)  # type: ignore[arg-type]  # unbounded by default
