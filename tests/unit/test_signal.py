"""The signal contract: the example parses, every reason code fires, junk only ever yields SignalError."""

from __future__ import annotations

import copy
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.signal import (
    REASONS,
    Book,
    BookLevel,
    Leg,
    Signal,
    SignalError,
    parse_signal,
    signal_from_compact,
    signal_to_compact,
    signal_to_wire,
)
from tests.support.examples import examples

EXAMPLE_PATH = Path("/work/shared/examples/signal.json")
D = Decimal


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE_PATH.read_text())


def test_example_signal_parses_into_the_fields_it_carries() -> None:
    signal = parse_signal(example())
    assert signal.correlation_id == "c-20261125-000001"
    assert signal.triangle_key == ("BTC-USDT", "ETH-BTC", "ETH-USDT")
    assert signal.primary_quote == "USDT"
    assert signal.starting_volume == D("100")
    assert signal.predicted_bps == 29.96
    assert signal.live is False
    assert signal.legs[0] == Leg("BTC-USDT", "buy", D("100"), D("0.00001"), D("1E-8"), D("0.000001"), D("0.001"), "USDT")
    assert signal.legs[1] == Leg("ETH-BTC", "buy", D("0.001998"), D("0.0001"), D("1E-7"), D("1E-8"), D("0.001"), "BTC")
    assert signal.legs[2] == Leg("ETH-USDT", "sell", D("0.0399"), D("0.0001"), D("0.0001"), D("0.000001"), D("0.001"), "USDT")
    assert [(leg.input_currency, leg.output_currency) for leg in signal.legs] == [
        ("USDT", "BTC"),
        ("BTC", "ETH"),
        ("ETH", "USDT"),
    ]
    assert (signal.legs[1].base, signal.legs[1].quote) == ("ETH", "BTC")
    assert signal.books[0] == Book(
        asks=(BookLevel(D("50000"), D("0.8")), BookLevel(D("50001.5"), D("2.1"))),
        bids=(BookLevel(D("49990"), D("1.2")), BookLevel(D("49988"), D("3"))),
    )
    assert signal.books[1].best_ask == BookLevel(D("0.05"), D("12"))
    assert signal.books[2].best_bid == BookLevel(D("2510"), D("5"))
    assert (signal.book_ts_ms, signal.t_sock_arrive_ms, signal.t_arrive_ms) == (1795600000000, 1795600000001, 1795600000001)
    assert (signal.t_eval_ms, signal.ts_ms) == (1795600000002, 1795600000002)
    assert signal.pairs == ("BTC-USDT", "ETH-BTC", "ETH-USDT")
    assert signal.triangle_id == "BTC-USDT,ETH-BTC,ETH-USDT"


def test_optional_fields_take_their_defaults() -> None:
    raw = example()
    for key in ("correlation_id", "triangle_key", "live", "predicted_bps", "book_ts_ms", "ts_ms"):
        del raw[key]
    for leg in raw["legs"]:
        for key in ("fee_rate", "fee_currency", "base_increment", "quote_increment", "base_min_size"):
            del leg[key]
    signal = parse_signal(raw)
    assert len(signal.correlation_id) == 32 and int(signal.correlation_id, 16) >= 0
    assert parse_signal(raw).correlation_id != signal.correlation_id
    assert signal.triangle_key == ("BTC-USDT", "ETH-BTC", "ETH-USDT")
    assert signal.live is False and signal.predicted_bps == 0.0
    assert signal.book_ts_ms == 0 and signal.ts_ms == 0
    assert [leg.fee_currency for leg in signal.legs] == ["USDT", "BTC", "USDT"]
    assert all(leg.fee_rate == D("0.001") and leg.base_min_size == 0 and leg.base_increment == 0 for leg in signal.legs)


def test_numbers_may_be_ints_floats_and_levels_pairs() -> None:
    raw = example()
    raw["starting_volume"] = 100
    raw["legs"][2]["order_param"] = 0.0399
    raw["books"][0]["asks"] = [[50000, "0.8"], ["50001.5", 2.1]]
    raw["triangle_key"] = ["ETH-USDT", "BTC-USDT", "ETH-BTC"]  # any order: stored in legs order
    raw["book_ts_ms"] = 1795600000000.0
    signal = parse_signal(raw)
    assert signal.starting_volume == D(100)
    assert signal.legs[2].order_param == D("0.0399")
    assert signal.books[0].asks == (BookLevel(D(50000), D("0.8")), BookLevel(D("50001.5"), D("2.1")))
    assert signal.triangle_key == ("BTC-USDT", "ETH-BTC", "ETH-USDT")
    assert signal.book_ts_ms == 1795600000000 and type(signal.book_ts_ms) is int


def _set(raw: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target = raw
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


_DELETE = object()

REJECTIONS: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("missing_field", ("legs",), _DELETE, "legs"),
    ("missing_field", ("books",), _DELETE, "books"),
    ("missing_field", ("primary_quote",), None, "primary_quote"),
    ("missing_field", ("starting_volume",), _DELETE, "starting_volume"),
    ("missing_field", ("legs", 1, "order_param"), _DELETE, "legs[1].order_param"),
    ("missing_field", ("legs", 0, "pair"), _DELETE, "legs[0].pair"),
    ("missing_field", ("legs", 2, "side"), _DELETE, "legs[2].side"),
    ("missing_field", ("books", 0, "asks", 0, "price"), _DELETE, "books[0].asks[0]"),
    ("cancelled", ("_cancelled",), True, "_cancelled"),
    ("bad_type", ("_cancelled",), "yes", "_cancelled"),
    ("bad_type", ("live",), "yes", "live"),
    ("bad_type", ("live",), 1, "live"),
    ("bad_type", ("legs", 0), "BTC-USDT", "legs[0]"),
    ("bad_type", ("books",), "none", "books"),
    ("bad_type", ("books", 1), [], "books[1]"),
    ("bad_type", ("books", 1, "asks"), {"price": "1"}, "books[1].asks"),
    ("bad_type", ("books", 1, "asks", 0), ["1", "2", "3"], "books[1].asks[0]"),
    ("bad_type", ("books", 1, "asks"), [["1", "1"]] * 201, "books[1].asks"),
    ("bad_type", ("starting_volume",), True, "starting_volume"),
    ("bad_type", ("legs", 0, "order_param"), ["100"], "legs[0].order_param"),
    ("bad_type", ("ts_ms",), "1795600000002", "ts_ms"),
    ("bad_type", ("ts_ms",), True, "ts_ms"),
    ("bad_type", ("predicted_bps",), False, "predicted_bps"),
    ("bad_type", ("primary_quote",), 5, "primary_quote"),
    ("bad_number", ("starting_volume",), "abc", "starting_volume"),
    ("bad_number", ("starting_volume",), "NaN", "starting_volume"),
    ("bad_number", ("starting_volume",), float("inf"), "starting_volume"),
    ("bad_number", ("starting_volume",), float("nan"), "starting_volume"),
    ("bad_number", ("starting_volume",), "0", "starting_volume"),
    ("bad_number", ("starting_volume",), -5, "starting_volume"),
    ("bad_number", ("starting_volume",), "1e13", "starting_volume"),
    ("bad_number", ("starting_volume",), 10**13, "starting_volume"),
    ("bad_number", ("starting_volume",), "1E-40", "starting_volume"),
    ("bad_number", ("starting_volume",), "1." + "1" * 35, "starting_volume"),
    ("bad_number", ("starting_volume",), "1" * 100, "starting_volume"),
    ("bad_number", ("starting_volume",), "100.0000000000000000001", "18 decimal places"),  # 19 places
    ("bad_number", ("starting_volume",), "1e-30", "18 decimal places"),
    ("bad_number", ("starting_volume",), 1e-30, "18 decimal places"),
    ("bad_number", ("legs", 1, "order_param"), "0.0019980000000000001", "legs[1].order_param"),
    ("bad_number", ("legs", 0, "fee_rate"), "0.1", "legs[0].fee_rate"),
    ("bad_number", ("legs", 0, "fee_rate"), "-0.001", "legs[0].fee_rate"),
    ("bad_number", ("legs", 1, "base_increment"), "-1", "legs[1].base_increment"),
    ("bad_number", ("books", 2, "bids", 1, "size"), "0", "books[2].bids[1].size"),
    ("bad_number", ("books", 2, "bids", 0, "price"), -2510, "books[2].bids[0].price"),
    ("bad_number", ("ts_ms",), -1, "ts_ms"),
    ("bad_number", ("ts_ms",), 1.5, "ts_ms"),
    ("bad_number", ("ts_ms",), 2**64, "ts_ms"),
    ("bad_number", ("predicted_bps",), float("nan"), "predicted_bps"),
    ("bad_number", ("predicted_bps",), "lots", "predicted_bps"),
    ("bad_legs", ("legs",), "three", "legs"),
    ("bad_pair", ("legs", 0, "pair"), "BTCUSDT", "legs[0].pair"),
    ("bad_pair", ("legs", 0, "pair"), "btc-usdt", "legs[0].pair"),
    ("bad_pair", ("legs", 0, "pair"), "BTC-BTC", "legs[0].pair"),
    ("bad_pair", ("legs", 0, "pair"), "BTC-USDT-X", "legs[0].pair"),
    ("bad_pair", ("legs", 0, "pair"), "BTC-USDT\n", "legs[0].pair"),
    ("bad_pair", ("legs", 0, "fee_currency"), "usdt", "legs[0].fee_currency"),
    ("bad_pair", ("primary_quote",), "US DT", "primary_quote"),
    ("bad_side", ("legs", 1, "side"), "BUY", "legs[1].side"),
    ("bad_side", ("legs", 1, "side"), ["buy"], "legs[1].side"),
    ("broken_chain", ("primary_quote",), "BTC", "legs[0]"),
    ("broken_chain", ("legs", 1, "side"), "sell", "legs[1]"),
    ("broken_chain", ("legs", 2, "pair"), "ETH-USDC", "USDC"),
    ("missing_book", ("books", 0, "asks"), [], "books[0]"),
    ("missing_book", ("books", 0, "asks"), _DELETE, "books[0]"),
    ("missing_book", ("books", 2, "bids"), [], "books[2]"),
    ("below_min_size", ("legs", 0, "order_param"), "0.49999", "legs[0]"),
    ("below_min_size", ("legs", 2, "order_param"), "0.00009", "legs[2]"),
    # the cap bypass: the declared volume is not what leg 0 spends
    ("bad_volume", ("legs", 0, "order_param"), "1000.999613", "legs[0]"),
    ("bad_volume", ("starting_volume",), "99.99", "starting_volume"),
    ("bad_triangle_key", ("triangle_key",), ["BTC-USDT", "ETH-BTC"], "triangle_key"),
    ("bad_triangle_key", ("triangle_key",), ["BTC-USDT", "ETH-BTC", "XRP-USDT"], "triangle_key"),
    ("bad_triangle_key", ("triangle_key",), ["BTC-USDT", "ETH-BTC", "ETH-BTC"], "triangle_key"),
    ("bad_triangle_key", ("triangle_key",), "BTC-USDT,ETH-BTC,ETH-USDT", "triangle_key"),
    ("bad_triangle_key", ("triangle_key",), [1, 2, 3], "triangle_key"),
    ("bad_correlation_id", ("correlation_id",), "", "correlation_id"),
    ("bad_correlation_id", ("correlation_id",), "has space", "correlation_id"),
    ("bad_correlation_id", ("correlation_id",), "x" * 65, "correlation_id"),
    ("bad_correlation_id", ("correlation_id",), 12345, "correlation_id"),
]


@pytest.mark.parametrize(("reason", "path", "value", "named"), REJECTIONS)
def test_each_defect_is_rejected_with_its_reason(reason: str, path: tuple[Any, ...], value: Any, named: str) -> None:
    raw = _set(example(), path, value)
    with pytest.raises(SignalError) as caught:
        parse_signal(raw)
    assert caught.value.reason == reason, str(caught.value)
    assert named in caught.value.message
    assert str(caught.value) == f"{reason}: {caught.value.message}"


@pytest.mark.parametrize("legs", [2, 4])
def test_a_triangle_has_exactly_three_legs(legs: int) -> None:
    raw = example()
    raw["legs"] = (raw["legs"] * 2)[:legs]
    with pytest.raises(SignalError) as caught:
        parse_signal(raw)
    assert caught.value.reason == "bad_legs"


@pytest.mark.parametrize("books", [2, 4])
def test_one_book_per_leg(books: int) -> None:
    raw = example()
    raw["books"] = (raw["books"] * 2)[:books]
    with pytest.raises(SignalError) as caught:
        parse_signal(raw)
    assert caught.value.reason == "missing_book"


@pytest.mark.parametrize("raw", [None, [], "signal", 42, b"{}", {1: "x"}, {b"legs": []}])
def test_not_a_map(raw: object) -> None:
    with pytest.raises(SignalError) as caught:
        parse_signal(raw)
    assert caught.value.reason == "not_a_map"


def test_sizes_exactly_at_the_minimum_are_accepted() -> None:
    raw = example()
    raw["legs"][0]["order_param"] = raw["starting_volume"] = "0.5"  # 0.5 USDT / 50000 = 0.00001 BTC, the minimum
    raw["legs"][2]["order_param"] = "0.0001"
    signal = parse_signal(raw)
    assert signal.legs[0].order_param == D("0.5") and signal.legs[2].order_param == D("0.0001")


def test_every_reason_code_is_exercised() -> None:
    provoked = {reason for reason, *_ in REJECTIONS} | {"bad_legs", "missing_book", "not_a_map"}
    assert provoked == set(REASONS)


def test_hostile_mapping_still_yields_signal_error() -> None:
    class Hostile(dict):  # type: ignore[type-arg]
        def get(self, key: object, default: object = None) -> object:
            raise RuntimeError("boom")

    with pytest.raises(SignalError) as caught:
        parse_signal(Hostile(example()))
    assert caught.value.reason == "bad_type"


# --- hypothesis: junk in, only SignalError out ---------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(["NaN", "-inf", "1e400", "0", "-1", "1e12", "1e-31", "BTC-USDT", "buy", "sell", "USDT", "  7 "]),
)
JUNK = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), children, max_size=5),
        st.dictionaries(
            st.sampled_from(["legs", "books", "asks", "bids", "price", "size", "pair", "side", "order_param"]),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, prefix + (index,))
    return found


EXAMPLE_PATHS = _paths(example())


def _check_only_signal_error(raw: object) -> None:
    try:
        result = parse_signal(raw)
    except SignalError as exc:
        assert exc.reason in REASONS
        assert str(exc) == f"{exc.reason}: {exc.message}"
        assert len(exc.message) < 400
    else:
        assert isinstance(result, Signal)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(JUNK)
def test_arbitrary_junk_only_raises_signal_error(raw: object) -> None:
    _check_only_signal_error(raw)


@settings(max_examples=examples(400), suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(EXAMPLE_PATHS), st.one_of(JUNK, st.just(_DELETE))),
        min_size=1,
        max_size=3,
    ),
    st.lists(st.sampled_from(["drop_leg", "dup_leg", "drop_book", "extra_key", "none"]), max_size=2),
)
def test_mutated_signals_only_raise_signal_error(mutations: list[tuple[Any, Any]], edits: list[str]) -> None:
    raw = example()
    for path, value in mutations:
        try:
            _set(raw, path, copy.deepcopy(value) if value is not _DELETE else value)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced the container
    for edit in edits:
        if isinstance(raw.get("legs"), list) and raw["legs"]:
            if edit == "drop_leg":
                raw["legs"].pop()
            elif edit == "dup_leg":
                raw["legs"].append(raw["legs"][0])
        if edit == "drop_book" and isinstance(raw.get("books"), list) and raw["books"]:
            raw["books"].pop()
        if edit == "extra_key":
            raw["unexpected"] = {"nested": [1, 2]}
    _check_only_signal_error(raw)


# --- hypothesis: valid variations round-trip -------------------------------------------------

SYMBOL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
PRICE = st.decimals(min_value=D("0.00000001"), max_value=D(1_000_000), places=8)
SIZE = st.decimals(min_value=D("0.00000001"), max_value=D(1_000_000), places=8)
INCREMENT = st.sampled_from(["0", "0.00000001", "0.0001", "0.01", "1"])


def _as_number(value: Decimal, form: str) -> object:
    """The same amount written as the engine might: string, int when whole, or float."""
    if form == "int" and value == value.to_integral_value():
        return int(value)
    if form == "float" and D(repr(float(value))) == value:
        return float(value)
    return str(value)


@st.composite
def valid_raw_signals(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid raw signal plus the values it must parse to (computed independently)."""
    quote, first, second = draw(st.lists(SYMBOL, min_size=3, max_size=3, unique=True))
    chain = [(quote, first), (first, second), (second, quote)]
    form = st.sampled_from(["str", "int", "float"])
    legs, books, expected_legs = [], [], []
    for spend, get in chain:
        side = draw(st.sampled_from(["buy", "sell"]))
        pair = f"{get}-{spend}" if side == "buy" else f"{spend}-{get}"
        order_param = draw(st.decimals(min_value=1, max_value=D(1_000_000), places=6))
        leg: dict[str, Any] = {"pair": pair, "side": side, "order_param": _as_number(order_param, draw(form))}
        expected = {"pair": pair, "side": side, "order_param": order_param}
        if draw(st.booleans()):
            leg["base_min_size"] = expected["base_min_size"] = draw(st.sampled_from(["0", "0.00000001"]))
        if draw(st.booleans()):
            leg["base_increment"] = draw(INCREMENT)
        if draw(st.booleans()):
            leg["fee_rate"] = draw(st.sampled_from(["0", "0.001", 0.00075, "0.0999"]))
        if draw(st.booleans()):
            leg["fee_currency"] = draw(st.sampled_from([spend, get]))
        legs.append(leg)
        expected_legs.append(expected)
        levels = st.lists(st.tuples(PRICE, SIZE), min_size=1, max_size=4)
        shape = draw(st.sampled_from(["map", "pair"]))

        def render(side_levels: list[tuple[Decimal, Decimal]]) -> list[Any]:
            if shape == "map":
                return [{"price": str(p), "size": str(s)} for p, s in side_levels]
            return [[str(p), str(s)] for p, s in side_levels]

        books.append({"asks": render(draw(levels)), "bids": render(draw(levels))})
    raw: dict[str, Any] = {"legs": legs, "books": books, "primary_quote": quote}
    starting_volume = expected_legs[0]["order_param"]  # what leg 0 spends, or it is bad_volume
    raw["starting_volume"] = _as_number(starting_volume, draw(form))
    if draw(st.booleans()):
        raw["correlation_id"] = draw(st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True))
    if draw(st.booleans()):
        raw["triangle_key"] = draw(st.permutations([leg["pair"] for leg in legs]))
    if draw(st.booleans()):
        raw["live"] = draw(st.booleans())
    if draw(st.booleans()):
        raw["predicted_bps"] = draw(st.floats(min_value=-1e4, max_value=1e4))
    for name in ("book_ts_ms", "ts_ms", "t_sock_arrive_ms", "t_arrive_ms", "t_eval_ms"):
        if draw(st.booleans()):
            raw[name] = draw(st.integers(min_value=0, max_value=2**53))
    return raw, {"legs": expected_legs, "starting_volume": starting_volume}


@settings(max_examples=examples(200), suppress_health_check=[HealthCheck.too_slow])
@given(valid_raw_signals())
def test_valid_signals_parse_and_round_trip_through_the_wire(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    raw, expected = case
    signal = parse_signal(raw)
    assert signal.starting_volume == expected["starting_volume"]
    for leg, want in zip(signal.legs, expected["legs"]):
        assert (leg.pair, leg.side, leg.order_param) == (want["pair"], want["side"], want["order_param"])
        assert leg.base_min_size == D(want.get("base_min_size", "0"))
    assert signal.legs[0].input_currency == signal.primary_quote == signal.legs[2].output_currency
    assert signal.triangle_key == signal.pairs
    wire = signal_to_wire(signal)
    assert json.loads(json.dumps(wire)) == wire  # plain JSON/msgpack types only
    assert parse_signal(wire) == signal
    assert not math.isnan(signal.predicted_bps)


@settings(max_examples=examples(200), suppress_health_check=[HealthCheck.too_slow])
@given(valid_raw_signals())
def test_the_compact_form_rebuilds_the_same_signal_exactly(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """What crosses to a worker: through msgpack and back, equal, every amount with its exponent."""
    signal = parse_signal(case[0])
    rebuilt = signal_from_compact(msgpack.unpackb(msgpack.packb(signal_to_compact(signal)), raw=False))
    assert rebuilt == signal
    amounts = [(leg.order_param, leg.fee_rate) for leg in signal.legs]
    assert [(leg.order_param.as_tuple(), leg.fee_rate.as_tuple()) for leg in rebuilt.legs] == [
        (a.as_tuple(), f.as_tuple()) for a, f in amounts]


@pytest.mark.parametrize("compact", [[], ["c"], [1, 2, 3, 4, 5, 6, 7, 8], "text"])
def test_a_malformed_compact_form_raises_value_error(compact: Any) -> None:
    with pytest.raises(ValueError):
        signal_from_compact(compact)
