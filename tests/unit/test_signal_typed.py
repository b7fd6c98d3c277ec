"""The typed intake (msgspec from the frame bytes) says exactly what `parse_signal` says.

Each rejection keeps its reason and message, every valid signal decodes to the equal `Signal`,
and junk bytes, mutated signals or undecodable frames only ever yield SignalError (or the codec's
BadFrame for bytes that are not msgpack).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.codec import BadFrame
from shared.signal import REASONS, Signal, SignalError, parse_signal, signal_from_compact, signal_to_compact
from shared.signal_typed import decode_frame, decode_signal, parse_frame
from tests.support.examples import examples
from tests.unit.test_signal import _DELETE, EXAMPLE_PATHS, JUNK, REJECTIONS, _set, example, valid_raw_signals


def _pack(raw: object) -> bytes:
    try:
        return msgpack.packb(raw, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):  # a Decimal or a huge int: not a frame anyone can send
        assume(False)
        raise


def _same_verdict(raw: object) -> None:
    """The frame path and parse_signal agree: the equal Signal, or the same reason and message."""
    body = _pack(raw)
    try:
        expected: Signal | SignalError = parse_signal(msgpack.unpackb(body, raw=False, strict_map_key=False))
    except SignalError as exc:
        expected = exc
    try:
        got: Signal | SignalError = parse_frame(body)
    except SignalError as exc:
        got = exc
    if isinstance(expected, SignalError):
        assert isinstance(got, SignalError), got
        assert (got.reason, got.message) == (expected.reason, expected.message)
        assert got.reason in REASONS
    else:
        assert isinstance(got, Signal), got
        if "correlation_id" in raw and raw["correlation_id"] is not None:  # type: ignore[operator]
            assert got == expected
        else:  # a generated id differs by design
            assert got.legs == expected.legs and got.books == expected.books


def test_the_example_takes_the_fast_path_and_equals_parse_signal() -> None:
    signal = decode_signal(_pack(example()))
    assert signal is not None
    assert signal == parse_signal(example())
    assert signal.books[1].best_ask is not None


# an integer of 2**64 or more cannot be packed by msgpack: no frame can carry that defect
FRAMEABLE = [case for case in REJECTIONS if not (isinstance(case[2], int) and case[2] >= 2**64)]


@pytest.mark.parametrize(("reason", "path", "value", "named"), FRAMEABLE)
def test_each_defect_keeps_its_reason_and_message(reason: str, path: tuple[Any, ...], value: Any, named: str) -> None:
    raw = _set(example(), path, value)
    body = msgpack.packb(raw, use_bin_type=True)
    with pytest.raises(SignalError) as caught:
        parse_frame(body)
    assert caught.value.reason == reason
    with pytest.raises(SignalError) as canonical:
        parse_signal(raw)
    assert caught.value.message == canonical.value.message


@pytest.mark.parametrize("edit", [
    ("legs", 0, "order_param", 100), ("books", 0, "asks", 0, "price", 50000), ("books", 0, "asks", 0, "price", "5e4"),
    ("books", 0, "asks", 0, "size", "0.8000000000000000000001"), ("ts_ms", 1795600000002.0),
    ("predicted_bps", "29.96"), ("books", 2, "bids", [["2510", "5"], {"price": "2509", "size": "1"}]),
])
def test_forms_outside_the_fast_path_are_still_accepted_as_before(edit: tuple[Any, ...]) -> None:
    raw = example()
    if edit[0] == "legs":  # an int order_param must still agree with starting_volume
        raw["starting_volume"] = 100
    _set(raw, edit[:-1], edit[-1])
    assert parse_frame(_pack(raw)) == parse_signal(raw)


def test_bytes_that_are_not_msgpack_are_a_bad_frame() -> None:
    assert isinstance(decode_frame(b"\xc1"), BadFrame)
    assert isinstance(decode_frame(_pack(example()) + b"\x00"), BadFrame)
    with pytest.raises(SignalError):
        parse_frame(b"\xc1")


def test_a_fast_path_signal_crosses_to_the_worker_unchanged() -> None:
    signal = decode_signal(_pack(example()))
    assert signal is not None
    rebuilt = signal_from_compact(msgpack.unpackb(msgpack.packb(signal_to_compact(signal)), raw=False))
    assert rebuilt == signal
    assert rebuilt.books[0].asks[1].price == Decimal("50001.5")


@settings(max_examples=examples(200), suppress_health_check=[HealthCheck.too_slow])
@given(valid_raw_signals())
def test_valid_signals_decode_from_bytes_to_what_parse_signal_gives(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _same_verdict(case[0])


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(JUNK)
def test_arbitrary_junk_frames_only_raise_signal_error(raw: object) -> None:
    _same_verdict(raw)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(EXAMPLE_PATHS), st.one_of(JUNK, st.just(_DELETE))), min_size=1, max_size=3))
def test_mutated_signal_frames_give_parse_signals_verdict(mutations: list[tuple[Any, Any]]) -> None:
    raw = example()
    for path, value in mutations:
        try:
            _set(raw, path, copy.deepcopy(value) if value is not _DELETE else value)
        except (KeyError, IndexError, TypeError):
            pass
    _same_verdict(raw)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_signal_error(body: bytes) -> None:
    try:
        parse_frame(body)
    except SignalError as exc:
        assert exc.reason in REASONS
