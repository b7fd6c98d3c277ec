"""Report stream encoding: flat, type-stable, same keys for every report, and invertible."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.report import (
    TIMING_STEPS,
    BookTop,
    ExecutionReport,
    LegFill,
    Status,
    report_from_fields,
    report_to_fields,
)
from tests.support.examples import examples

D = Decimal
LEG_FIELDS = (
    "pair", "side", "order_id", "input_currency", "output_currency", "spent", "received",
    "filled_size", "filled_funds", "avg_price", "fee", "fee_currency", "latency_ms",
)  # fmt: skip


def fill(leg: int) -> LegFill:
    return LegFill(
        leg=leg,
        pair=("BTC-USDT", "ETH-BTC", "ETH-USDT")[leg],
        side=("buy", "buy", "sell")[leg],
        order_id=f"order-{leg}",
        input_currency=("USDT", "BTC", "ETH")[leg],
        output_currency=("BTC", "ETH", "USDT")[leg],
        spent=D("100"),
        received=D("0.001998"),
        filled_size=D("0.002"),
        filled_funds=D("100.000"),
        avg_price=D("5E+4"),
        fee=D("0.000002"),
        fee_currency=("BTC", "ETH", "USDT")[leg],
        latency_ms=12.5,
    )


def report(legs: int, **changes: object) -> ExecutionReport:
    values: dict[str, object] = dict(
        correlation_id="c-1",
        status=Status.FILLED,
        mode="paper",
        fill_model="depth",
        triangle=("BTC-USDT", "ETH-BTC", "ETH-USDT"),
        primary_quote="USDT",
        predicted_bps=29.96,
        effective_bps=-3.125,
        profit=D("-0.031"),
        spent=D("100"),
        returned=D("99.969"),
        ts_ms=1795600000100,
        book_ts_ms=1795600000000,
        signal_ts_ms=1795600000002,
        received_ts_ms=1795600000003,
        first_order_ms=0.412,
        total_ms=97.0,
        error="",
        worker="w0",
        host="box",
        fills=tuple(fill(i) for i in range(legs)),
        book_tops=(BookTop(D("50000"), D("0.8"), D("49990"), D("1.2")), BookTop(D("0.05"), D("12"), D(0), D(0))),
        timings=(("t-2_book_snapshot", -3.0), ("signal_received", 0.0), ("leg0_order_fired", 0.412)),
    )
    values.update(changes)
    return ExecutionReport(**values)  # type: ignore[arg-type]


def test_fields_for_a_one_leg_report_by_hand() -> None:
    fields = report_to_fields(report(1))
    assert fields["status"] == "filled"
    assert fields["triangle"] == "BTC-USDT,ETH-BTC,ETH-USDT"
    assert fields["profit"] == "-0.031"
    assert fields["predicted_bps"] == "29.96"
    assert fields["effective_bps"] == "-3.125"
    assert fields["total_ms"] == "97"
    assert fields["ts_ms"] == "1795600000100"
    assert fields["legs_done"] == "1"
    assert fields["leg0_avg_price"] == "50000"  # never exponent notation
    assert fields["leg0_filled_funds"] == "100"
    assert fields["leg0_latency_ms"] == "12.5"
    assert fields["leg1_pair"] == "" and fields["leg1_spent"] == "0" and fields["leg2_latency_ms"] == "0"
    assert fields["leg1_ask_px"] == "0.05" and fields["leg1_bid_px"] == "0"
    assert fields["leg2_ask_px"] == "0"
    assert fields["t_book_snapshot_ms"] == "-3"
    assert fields["t_signal_received_ms"] == "0"
    assert fields["t_leg0_order_fired_ms"] == "0.412"
    assert fields["t_execution_complete_ms"] == "0"


def test_key_set_is_the_same_for_every_report() -> None:
    keys = [set(report_to_fields(report(n, timings=(), book_tops=()))) for n in range(4)]
    keys.append(set(report_to_fields(report(3, status=Status.LOST, error="worker died"))))
    assert all(k == keys[0] for k in keys)
    for slot in range(3):
        for name in LEG_FIELDS + ("ask_px", "ask_sz", "bid_px", "bid_sz"):
            assert f"leg{slot}_{name}" in keys[0]
    assert {f"t_{step}_ms" for step in TIMING_STEPS} <= keys[0]


NUMERIC_SUFFIXES = ("_ms", "_bps", "_px", "_sz", "profit", "spent", "returned", "received", "_size", "_funds", "_price", "_fee", "legs_done", "book_tops")  # fmt: skip


def test_values_are_strings_and_numbers_parse_as_decimals() -> None:
    for legs in (0, 3):
        for key, value in report_to_fields(report(legs, effective_bps=float("nan"))).items():
            assert isinstance(value, str), key
            if key.endswith(NUMERIC_SUFFIXES):
                assert value != "" and "e" not in value.lower(), key
                Decimal(value)


@pytest.mark.parametrize("legs", [0, 1, 3])
def test_round_trip_with_str_and_bytes(legs: int) -> None:
    original = report(legs)
    fields = report_to_fields(original)
    assert report_from_fields(fields) == original
    assert report_from_fields({k.encode(): v.encode() for k, v in fields.items()}) == original


def test_timings_come_back_with_seed_names_in_order() -> None:
    timings = (("t-1_eval_complete", -1.5), ("t_signal_created", -1.0), ("signal_received", 0.0), ("execution_complete", 88.25))
    decoded = report_from_fields(report_to_fields(report(0, timings=timings)))
    assert decoded.timings == timings


def test_fills_out_of_leg_order_or_too_many_are_refused() -> None:
    with pytest.raises(ValueError):
        report_to_fields(report(0, fills=(fill(1),)))
    with pytest.raises(ValueError):
        report_to_fields(report(0, fills=(fill(0), fill(1), fill(2), fill(2))))


def test_missing_or_bad_fields_name_the_field() -> None:
    fields = report_to_fields(report(1))
    with pytest.raises(ValueError, match="leg0_fee"):
        report_from_fields({k: v for k, v in fields.items() if k != "leg0_fee"})
    with pytest.raises(ValueError, match="profit"):
        report_from_fields({**fields, "profit": "lots"})
    with pytest.raises(ValueError, match="status"):
        report_from_fields({**fields, "status": "exploded"})


ROUNDED = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False).map(lambda x: round(x, 3))
AMOUNT = st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, allow_infinity=False, places=10)
TEXT = st.text(max_size=12)
SYMBOL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=9)


@st.composite
def reports(draw: st.DrawFn) -> ExecutionReport:
    legs = draw(st.integers(0, 3))
    fills = tuple(
        LegFill(i, draw(SYMBOL), draw(TEXT), draw(TEXT), draw(TEXT), draw(TEXT), draw(AMOUNT), draw(AMOUNT),
                draw(AMOUNT), draw(AMOUNT), draw(AMOUNT), draw(AMOUNT), draw(TEXT), draw(ROUNDED))
        for i in range(legs)
    )  # fmt: skip
    tops = tuple(BookTop(draw(AMOUNT), draw(AMOUNT), draw(AMOUNT), draw(AMOUNT)) for _ in range(draw(st.integers(0, 3))))
    steps = draw(st.lists(st.sampled_from(TIMING_STEPS), unique=True))
    seed_names = {"book_snapshot": "t-2_book_snapshot", "eval_complete": "t-1_eval_complete", "signal_created": "t_signal_created"}
    timings = tuple((seed_names.get(step, step), draw(ROUNDED)) for step in steps)
    return ExecutionReport(
        correlation_id=draw(TEXT), status=draw(st.sampled_from(list(Status))), mode=draw(TEXT),
        fill_model=draw(TEXT), triangle=tuple(draw(st.lists(SYMBOL, max_size=3))), primary_quote=draw(TEXT),
        predicted_bps=draw(ROUNDED), effective_bps=draw(ROUNDED), profit=draw(AMOUNT), spent=draw(AMOUNT),
        returned=draw(AMOUNT), ts_ms=draw(st.integers(0, 2**53)), book_ts_ms=draw(st.integers(0, 2**53)),
        signal_ts_ms=draw(st.integers(0, 2**53)), received_ts_ms=draw(st.integers(0, 2**53)),
        first_order_ms=draw(ROUNDED), total_ms=draw(ROUNDED), error=draw(TEXT), worker=draw(TEXT), host=draw(TEXT),
        fills=fills, book_tops=tops, timings=timings,
    )  # fmt: skip


REFERENCE_KEYS = set(report_to_fields(report(0)))


@settings(max_examples=examples(200))
@given(reports())
def test_any_report_round_trips_with_a_stable_key_set(original: ExecutionReport) -> None:
    fields = report_to_fields(original)
    assert set(fields) == REFERENCE_KEYS
    assert all(isinstance(value, str) for value in fields.values())
    assert report_from_fields({k.encode(): v.encode() for k, v in fields.items()}) == original
