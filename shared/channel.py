"""The supervisor↔worker duplex channel: length-prefixed msgpack over a socketpair.

aiomultiprocess's own queue polls every 5 ms; a socketpair hop costs 60–75 µs here, so jobs and
acknowledgements travel on this channel while aiomultiprocess only starts and runs the processes.
Every message is one typed record (a NamedTuple) sent as a msgpack array tagged by its kind.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import msgpack

from shared.codec import HEADER, FrameDecoder
from shared.signal import Signal, signal_from_compact, signal_to_compact

__all__ = ["Job", "Done", "Cancel", "Hello", "Message", "Channel", "decode_message"]

_JOB, _DONE, _CANCEL, _HELLO = 1, 2, 3, 4


class Job(NamedTuple):
    """Supervisor → worker: run one admitted signal.

    `signal` is the validated `Signal`: it crosses the socketpair in its compact pre-validated
    form and the worker rebuilds it without validating again (the inline pool hands over the
    object itself). A contract mapping (`dict`) is still accepted, and the executor validates
    that one: nothing unvalidated ever runs.
    """

    correlation_id: str
    signal: Signal | dict[str, Any]
    received_ms: int  # wall clock when the supervisor read the frame (reports, Grafana)
    received_ns: int  # monotonic when the supervisor read the frame (latency)
    # live only: "parallel" when the registry's grant claimed the legs' inventory (worker.live)
    strategy: str = "sequential"

    def to_wire(self) -> list[Any]:
        signal = signal_to_compact(self.signal) if isinstance(self.signal, Signal) else self.signal
        return [_JOB, self.correlation_id, signal, self.received_ms, self.received_ns, self.strategy]


class Done(NamedTuple):
    """Worker → supervisor: the execution ended and its report is published (or spooled).

    The timing fields let the supervisor keep latency histograms for every worker process
    without reading the stream back; they mirror the report's (0 = that step never happened,
    as in the stream encoding). Fields after `ts_ms` have defaults, so a shorter message from an
    older worker still decodes.
    """

    correlation_id: str
    status: str
    ts_ms: int  # report time; a filled triangle's last-trade time for the stale rule
    first_order_ms: float = 0.0  # frame read → first order fired
    total_ms: float = 0.0  # frame read → report built
    leg0_ms: float = 0.0  # each leg's exchange round trip
    leg1_ms: float = 0.0
    leg2_ms: float = 0.0
    error_code: str = ""  # the exchange's error code when the exchange refused a leg
    # What the account did, for the profit and fee counters (decimal strings: msgpack has no Decimal)
    primary_quote: str = ""
    spent: str = "0"  # primary quote that left the account, fees included
    returned: str = "0"  # primary quote that came back
    fees: tuple[tuple[str, str], ...] = ()  # (currency, amount) per currency a fee was charged in

    def to_wire(self) -> list[Any]:
        return [_DONE, *self]


class Cancel(NamedTuple):
    """Supervisor → worker: stop this execution at the next step boundary."""

    correlation_id: str

    def to_wire(self) -> list[Any]:
        return [_CANCEL, self.correlation_id]


class Hello(NamedTuple):
    """Worker → supervisor: the session is warm and the worker takes jobs from now on."""

    index: int
    pid: int

    def to_wire(self) -> list[Any]:
        return [_HELLO, self.index, self.pid]


Message = Job | Done | Cancel | Hello


def _done_from_wire(*fields: Any) -> Done:
    """Done as sent: msgpack turns the `fees` pairs into lists, the record holds tuples."""
    done = Done(*fields)
    if not isinstance(done.fees, (list, tuple)):
        raise TypeError("fees is not an array")
    return done._replace(fees=tuple((str(currency), str(amount)) for currency, amount in done.fees))


_BUILDERS: dict[int, Callable[..., Message]] = {_JOB: Job, _DONE: _done_from_wire, _CANCEL: Cancel, _HELLO: Hello}


def decode_message(wire: Any) -> Message:
    """Rebuild a record from its wire array; a malformed one raises ValueError."""
    if not isinstance(wire, list) or not wire or wire[0] not in _BUILDERS:
        raise ValueError(f"unknown channel message: {wire!r:.80}")
    try:
        if wire[0] == _JOB and len(wire) in (5, 6) and isinstance(wire[2], list):  # the compact, validated form
            return Job(wire[1], signal_from_compact(wire[2]), *wire[3:])
        return _BUILDERS[wire[0]](*wire[1:])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed channel message: {wire!r:.80}") from exc


class Channel:
    """One end of the socketpair, with framing; `send` never awaits (the kernel buffer absorbs it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(mode="msgpack")
        self._pending: deque[Any] = deque()
        self._packer = msgpack.Packer(use_bin_type=True)

    @classmethod
    async def open(cls, sock: socket.socket) -> "Channel":
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    def send(self, message: Message) -> None:
        body = self._packer.pack(message.to_wire())
        self._writer.write(HEADER.pack(len(body)) + body)

    async def recv(self) -> Message | None:
        """Next message, or None once the peer has gone (EOF or reset)."""
        while not self._pending:
            try:
                data = await self._reader.read(65536)
            except ConnectionError:
                return None
            if not data:
                return None
            self._pending.extend(self._decoder.feed(data))
        return decode_message(self._pending.popleft())

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()
