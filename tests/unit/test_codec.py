"""Frame codec: boundaries anywhere, coalesced frames, bad frames that keep the stream, fatal ones that end it."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.codec import (
    HEADER,
    MAX_FRAME_BYTES,
    BadFrame,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_json_line,
)
from tests.support.examples import examples

SIGNAL = json.loads(Path("/work/shared/examples/signal.json").read_text())


def test_encode_frame_is_big_endian_length_then_msgpack() -> None:
    frame = encode_frame({"a": 1})
    body = msgpack.packb({"a": 1}, use_bin_type=True)
    assert frame == struct.pack(">I", len(body)) + body
    assert HEADER.size == 4 and MAX_FRAME_BYTES == 1048576


def test_encode_json_line_is_compact_with_newline() -> None:
    assert encode_json_line({"a": [1, 2], "b": "é"}) == '{"a":[1,2],"b":"é"}\n'.encode()


def test_frame_split_at_every_byte_position() -> None:
    stream = encode_frame(SIGNAL) + encode_frame({"second": True})
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        out = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert out == [SIGNAL, {"second": True}], cut
        assert decoder.buffered == 0


def test_byte_by_byte_feed() -> None:
    decoder = FrameDecoder(mode="msgpack")
    out: list[object] = []
    for byte in encode_frame(SIGNAL):
        out += decoder.feed(bytes([byte]))
    assert out == [SIGNAL]


def test_many_frames_in_one_read_and_empty_reads() -> None:
    frames = [{"n": n} for n in range(500)]
    decoder = FrameDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"".join(encode_frame(f) for f in frames)) == frames
    assert decoder.feed(b"") == []


def test_empty_frame_is_bad_but_the_stream_continues() -> None:
    decoder = FrameDecoder()
    out = decoder.feed(HEADER.pack(0) + encode_frame([1]))
    assert out == [BadFrame("empty_frame", "zero-length frame"), [1]]


def test_garbage_body_is_bad_msgpack_and_the_stream_continues() -> None:
    garbage = b"\xc1\xc1\xc1"  # 0xc1 is never used by msgpack
    decoder = FrameDecoder()
    out = decoder.feed(HEADER.pack(len(garbage)) + garbage + encode_frame({"ok": 1}))
    assert isinstance(out[0], BadFrame) and out[0].reason == "bad_msgpack"
    assert out[1] == {"ok": 1}


def test_truncated_msgpack_inside_a_frame_is_bad() -> None:
    body = msgpack.packb({"key": "value"})[:-2]
    out = FrameDecoder().feed(HEADER.pack(len(body)) + body)
    assert len(out) == 1 and isinstance(out[0], BadFrame) and out[0].reason == "bad_msgpack"


def test_two_objects_in_one_frame_are_trailing_bytes() -> None:
    body = msgpack.packb(1) + msgpack.packb(2)
    out = FrameDecoder().feed(HEADER.pack(len(body)) + body + encode_frame("next"))
    assert out[0] == BadFrame("trailing_bytes", "1 bytes after the object")
    assert out[1] == "next"


def test_oversize_declared_length_is_fatal_immediately() -> None:
    decoder = FrameDecoder(max_frame_bytes=100)
    good = encode_frame({"a": 1})
    with pytest.raises(FrameError) as caught:
        decoder.feed(good + HEADER.pack(101))  # the body has not even arrived
    assert caught.value.reason == "frame_too_large"
    assert caught.value.decoded == [{"a": 1}]
    with pytest.raises(FrameError):
        decoder.feed(good)  # the connection stays failed


def test_frame_at_exactly_the_limit_is_accepted() -> None:
    body = msgpack.packb("x" * 95)
    decoder = FrameDecoder(max_frame_bytes=len(body))
    assert decoder.feed(HEADER.pack(len(body)) + body) == ["x" * 95]


def test_auto_detects_ndjson_with_blank_lines_and_crlf() -> None:
    decoder = FrameDecoder()
    data = b"\n  \r\n" + encode_json_line(SIGNAL) + b"\n\r\n" + b'{"b": 2}\r\n'
    out = decoder.feed(data[:7]) + decoder.feed(data[7:])
    assert out == [SIGNAL, {"b": 2}]
    assert decoder.mode == "json"


def test_ndjson_split_at_every_byte_position() -> None:
    stream = encode_json_line({"a": 1}) + encode_json_line({"b": [1, 2]})
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == [{"a": 1}, {"b": [1, 2]}], cut


def test_ndjson_bad_line_is_bad_json_and_the_stream_continues() -> None:
    out = FrameDecoder().feed(b'{"a": 1}\n{not json}\n\xff\xfe\n[1]\n')
    assert out[0] == {"a": 1}
    assert [type(item) for item in out[1:3]] == [BadFrame, BadFrame]
    assert {item.reason for item in out[1:3]} == {"bad_json"}  # type: ignore[union-attr]
    assert out[3] == [1]


def test_ndjson_line_over_the_limit_is_fatal_with_or_without_newline() -> None:
    decoder = FrameDecoder(max_frame_bytes=10)
    assert decoder.feed(b'{"a":"') == []
    with pytest.raises(FrameError) as caught:
        decoder.feed(b"x" * 10)
    assert caught.value.reason == "frame_too_large"
    with pytest.raises(FrameError):
        FrameDecoder(max_frame_bytes=10).feed(b'{"a":"123456789"}\n')


def test_msgpack_mode_does_not_sniff_json() -> None:
    decoder = FrameDecoder(mode="msgpack")
    with pytest.raises(FrameError):
        decoder.feed(b'{"a": 1}\n')  # read as a header: 0x7b22613a bytes, far over the limit


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(mode="xml")
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_bytes=0)


def test_consumed_bytes_are_trimmed() -> None:
    decoder = FrameDecoder()
    frame = encode_frame({"pad": "x" * 1000})
    for _ in range(200):
        decoder.feed(frame + frame[:10])
        decoder.feed(frame[10:])
    assert decoder.buffered == 0
    assert len(decoder._buffer) < 2 * 65536  # noqa: SLF001 - the memory bound is the point


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=20), st.floats(allow_nan=False)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=examples(150))
@given(
    st.lists(st.one_of(JSON_VALUES, st.binary(max_size=20)), min_size=1, max_size=8),
    st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_random_chunking_of_msgpack_frames_decodes_identically(values: list[Any], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(value) for value in values)
    decoder = FrameDecoder(mode="msgpack")
    out: list[object] = []
    for chunk in _chunks(stream, cuts):
        out += decoder.feed(chunk)
    assert out == values


@settings(max_examples=examples(150))
@given(
    st.lists(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4), min_size=1, max_size=8),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_random_chunking_of_ndjson_decodes_identically(values: list[dict[str, Any]], cuts: list[int]) -> None:
    stream = b"".join(encode_json_line(value) for value in values)
    decoder = FrameDecoder()
    out: list[object] = []
    for chunk in _chunks(stream, cuts):
        out += decoder.feed(chunk)
    assert out == values
