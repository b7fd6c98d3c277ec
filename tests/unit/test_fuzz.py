"""Hostile input, property-tested with hypothesis (a short budget for CI; `python -m bench.fuzz`
pushes a million frames): the frame decoder, the signal validator and the socket server.

The contract under test: the decoder only ever raises FrameError (fatal for the connection) and
otherwise returns objects or BadFrame values, in stream order, however the bytes are split; the
validator only ever raises SignalError; the server survives anything a connection sends and
keeps serving other connections.
"""

from __future__ import annotations

import asyncio
import math
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.codec import (
    HEADER,
    BadFrame,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_json_line,
)
from shared.signal import Signal, SignalError, parse_signal
from sim.server import start_simulator
from supervisor.server import SignalServer
from tests.support.e2e import markets_of
from tests.support.examples import examples
from tools.synthetic import synthetic_signals

LIMIT = 4096  # a small max_frame_bytes, so oversize frames are cheap to generate
BUDGET = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.binary(max_size=20),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=4), max_leaves=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _chunks(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        yield data[start:cut]
        start = cut
    yield data[start:]


def _decode_all(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> tuple[list[object], FrameError | None]:
    out: list[object] = []
    for chunk in _chunks(data, cuts):
        try:
            out.extend(decoder.feed(chunk))
        except FrameError as exc:
            out.extend(exc.decoded)
            return out, exc
        assert decoder.buffered <= LIMIT + 4 + len(chunk)  # never holds more than one frame plus a read
    return out, None


# --- the frame decoder --------------------------------------------------------------------------


@BUDGET
@given(st.binary(max_size=3 * LIMIT), st.lists(st.integers(min_value=0), max_size=8))
def test_arbitrary_bytes_only_ever_raise_frame_error(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(LIMIT)
    _, fatal = _decode_all(decoder, data, cuts)
    if fatal is not None:  # once failed, a connection stays failed
        with pytest.raises(FrameError):
            decoder.feed(b"\x00\x00\x00\x01\x01")


@BUDGET
@given(st.lists(values, max_size=6), st.lists(st.integers(min_value=0), max_size=10))
def test_msgpack_frames_round_trip_however_the_stream_is_split(objects: list[object], cuts: list[int]) -> None:
    frames = [encode_frame(obj) for obj in objects]
    frames = [f for f in frames if len(f) - 4 <= LIMIT]
    expected = [msgpack.unpackb(f[4:], raw=False, strict_map_key=False) for f in frames]
    out, fatal = _decode_all(FrameDecoder(LIMIT, mode="msgpack"), b"".join(frames), cuts)
    assert fatal is None
    assert _same(out, expected)


@BUDGET
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), min_size=1, max_size=6),
       st.lists(st.integers(min_value=0), max_size=10))
def test_json_lines_round_trip_however_the_stream_is_split(objects: list[dict], cuts: list[int]) -> None:
    data = b"".join(encode_json_line(obj) for obj in objects)
    out, fatal = _decode_all(FrameDecoder(LIMIT * 64), data, cuts)
    assert fatal is None
    assert _same(out, objects)


@BUDGET
@given(st.lists(st.one_of(values.map(lambda v: ("ok", v)), st.binary(min_size=1, max_size=64).map(lambda b: ("junk", b))),
                max_size=8),
       st.lists(st.integers(min_value=0), max_size=10))
def test_garbage_inside_well_framed_frames_costs_one_bad_frame_and_keeps_sync(
    items: list[tuple[str, object]], cuts: list[int]
) -> None:
    stream = b""
    expected: list[object] = []
    for kind, item in items:
        if kind == "ok":
            frame = encode_frame(item)
            if len(frame) - 4 > LIMIT:
                continue
            stream += frame
            expected.append(msgpack.unpackb(frame[4:], raw=False, strict_map_key=False))
        else:
            body = bytes(item)  # type: ignore[arg-type]
            stream += HEADER.pack(len(body)) + body
            expected.append(_unpack_or_bad(body))
    out, fatal = _decode_all(FrameDecoder(LIMIT, mode="msgpack"), stream, cuts)
    assert fatal is None
    assert len(out) == len(expected)
    for got, want in zip(out, expected):
        assert isinstance(got, BadFrame) == isinstance(want, BadFrame)
        if not isinstance(want, BadFrame):
            assert _same([got], [want])


def _unpack_or_bad(body: bytes) -> object:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception:  # noqa: BLE001 - whatever msgpack raises is a bad frame
        return BadFrame("bad", "")


def _same(got: list[object], want: list[object]) -> bool:
    """Equality where NaN equals NaN (msgpack carries NaN through)."""
    if len(got) != len(want):
        return False
    return all(_same_value(a, b) for a, b in zip(got, want))


def _same_value(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return a == b


# --- the signal validator -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    """Valid signals over the simulator's markets, to mutate."""

    async def build() -> list[dict]:
        running = await start_simulator()
        try:
            markets = await markets_of(running)
        finally:
            await running.stop()
        return synthetic_signals(markets, 20, now_ms=int(time.time() * 1000))

    return asyncio.run(build())


@BUDGET
@given(values)
def test_the_validator_only_ever_raises_signal_error(raw: object) -> None:
    try:
        parse_signal(raw)
    except SignalError:
        pass


def _mutate(tree: object, path: list[int], replacement: object) -> object:
    """`tree` with the node `path` leads to replaced (indices pick among a node's children)."""
    if not path or not isinstance(tree, (dict, list)) or not tree:
        return replacement
    keys = list(tree) if isinstance(tree, dict) else list(range(len(tree)))
    key = keys[path[0] % len(keys)]
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    copy[key] = _mutate(tree[key], path[1:], replacement)  # type: ignore[index]
    return copy


@BUDGET
@given(st.integers(min_value=0), st.lists(st.integers(min_value=0), min_size=1, max_size=5), values)
def test_mutated_valid_signals_are_accepted_or_refused_with_a_reason(
    corpus: list[dict], pick: int, path: list[int], replacement: object
) -> None:
    raw = _mutate(corpus[pick % len(corpus)], path, replacement)
    try:
        signal = parse_signal(raw)
    except SignalError as exc:
        assert exc.reason and isinstance(exc.reason, str)
        return
    assert isinstance(signal, Signal) and len(signal.legs) == 3


# --- the socket server --------------------------------------------------------------------------


class _ServerThread:
    """A SignalServer on its own event loop in a thread, so hypothesis can drive it synchronously."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.good = threading.Condition()
        self.good_frames: list[object] = []
        self.handler_errors = 0
        self.loop = asyncio.new_event_loop()
        self.server = SignalServer(str(path), LIMIT, self._on_frame, lambda reason, detail: None)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _on_frame(self, frame: object, received_ns: int) -> None:
        try:
            parse_signal(frame)
        except SignalError:
            pass
        except Exception:  # noqa: BLE001 - a crash is what the fuzz looks for
            self.handler_errors += 1
        if isinstance(frame, dict) and frame.get("probe") is not None:
            with self.good:
                self.good_frames.append(frame["probe"])
                self.good.notify_all()

    def __enter__(self) -> _ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def probe(self, number: int) -> None:
        """A well-behaved client's frame must still get through."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(self.path))
            sock.sendall(encode_frame({"probe": number}))
            with self.good:
                assert self.good.wait_for(lambda: number in self.good_frames, timeout=5)


@pytest.fixture(scope="module")
def server_thread() -> Iterator[_ServerThread]:
    with _ServerThread(Path(tempfile.mkdtemp(prefix="tri-fz-")) / "s.sock") as running:
        yield running


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=2 * LIMIT), min_size=1, max_size=4), st.booleans())
def test_the_socket_server_survives_any_bytes_and_keeps_serving(
    server_thread: _ServerThread, writes: list[bytes], json_first: bool
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hostile:
        hostile.connect(str(server_thread.path))
        try:
            hostile.sendall(b"{" if json_first else b"")
            for data in writes:
                hostile.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed a stream it could not resynchronise: its right
    number = len(server_thread.good_frames)
    server_thread.probe(number)
    assert server_thread.handler_errors == 0
