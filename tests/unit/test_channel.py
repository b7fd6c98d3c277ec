"""The supervisor↔worker channel carries typed records intact, in order, and reports EOF."""

import socket

import pytest

from shared.channel import Cancel, Channel, Done, Hello, Job, decode_message
from shared.signal import Signal, parse_signal, signal_to_compact
from tests.support.signals import EXAMPLE_SIGNAL


async def test_records_round_trip_in_order_and_eof() -> None:
    left, right = socket.socketpair()
    a, b = await Channel.open(left), await Channel.open(right)
    sent = [
        Hello(1, 4242),
        Job("c-1", {"legs": [], "x": "1.5"}, 1_700_000_000_000, 123_456_789),
        Cancel("c-1"),
        Done("c-1", "filled", 1_700_000_000_123),
        Done("c-2", "filled", 1_700_000_000_124, 0.4, 9.5, 1.0, 2.0, 3.0, "", "USDT", "100.1", "100.3",
             (("BTC", "0.0000001"), ("USDT", "0.1"))),
    ] * 50
    for message in sent:
        a.send(message)
    await a.drain()
    received = [await b.recv() for _ in sent]
    assert received == sent
    assert type(received[1]) is Job and received[1].signal == {"legs": [], "x": "1.5"}
    a.close()
    assert await b.recv() is None
    b.close()


@pytest.mark.parametrize("wire", [None, [], [99, "x"], [2, "only-cid"], {"k": 1}, "text"])
def test_malformed_messages_raise_value_error(wire: object) -> None:
    with pytest.raises(ValueError):
        decode_message(wire)


async def test_a_validated_signal_crosses_as_its_compact_form_and_arrives_typed() -> None:
    """The worker gets the supervisor's `Signal` back, equal, without parsing the contract again."""
    left, right = socket.socketpair()
    a, b = await Channel.open(left), await Channel.open(right)
    signal = parse_signal(EXAMPLE_SIGNAL)
    job = Job(signal.correlation_id, signal, 1_700_000_000_000, 42)
    assert job.to_wire()[2] == signal_to_compact(signal)
    a.send(job)
    received = await b.recv()
    assert isinstance(received, Job) and isinstance(received.signal, Signal)
    assert received == job
    a.close()
    b.close()


def test_a_job_with_a_malformed_compact_signal_raises_value_error() -> None:
    with pytest.raises(ValueError):
        decode_message([1, "c-1", ["not", "a", "signal"], 0, 0])
