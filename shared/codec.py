"""Frame codec for signal connections and the supervisor↔worker channel.

Two framings share one incremental decoder: a 4-byte big-endian length followed by that many
bytes of msgpack (the normal case), or newline-delimited JSON for a connection whose first
byte is `{` (handy with `socat`). The decoder separates two kinds of trouble on purpose:

- `FrameError` is fatal for the connection: once a length cannot be trusted there is no way to
  find the next frame boundary, so the caller must close it.
- `BadFrame` is a value returned in place of one frame whose boundaries were known but whose
  content did not decode; the stream stays in sync and the connection carries on.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import msgpack

__all__ = [
    "MAX_FRAME_BYTES",
    "HEADER",
    "encode_frame",
    "encode_json_line",
    "FrameError",
    "BadFrame",
    "FrameDecoder",
    "as_text",
    "unpack_body",
]

MAX_FRAME_BYTES = 1 << 20
HEADER = struct.Struct(">I")

_MODES = ("auto", "msgpack")
_WHITESPACE = b" \t\r\n"
_COMPACT_AFTER_BYTES = 1 << 16  # consumed bytes kept at the buffer's head before it is trimmed


def encode_frame(obj: object) -> bytes:
    """Length-prefixed msgpack, the framing `FrameDecoder` reads."""
    body = msgpack.packb(obj, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def encode_json_line(obj: object) -> bytes:
    """One compact NDJSON line."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class FrameError(Exception):
    """The stream cannot be resynchronised; close the connection.

    `decoded` holds what the same `feed` call had decoded before the fatal point, so frames
    that arrived intact in the same read are not lost.
    """

    def __init__(self, reason: str, message: str, decoded: list[object] | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.decoded: list[object] = decoded if decoded is not None else []


@dataclass(frozen=True, slots=True)
class BadFrame:
    """One frame that could not be decoded (`empty_frame`, `bad_msgpack`, `bad_json`, `trailing_bytes`)."""

    reason: str
    detail: str


class FrameDecoder:
    """Incremental decoder: feed it whatever a read returned, get back whole frames in order.

    Bytes live in one bytearray with a read offset; consumed bytes are trimmed only once they
    are many or the buffer is empty, so a burst of small frames costs no copying per frame and
    a large frame arriving in small reads costs no rescanning.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES, mode: str = "auto", *, raw_bodies: bool = False) -> None:
        """`raw_bodies`: hand back each length-prefixed frame's body as `bytes`, undecoded (for a
        typed decoder, which then owns the BadFrame judgement through `unpack_body`); JSON lines
        are decoded either way."""
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be >= 1, got {max_frame_bytes}")
        self.max_frame_bytes = max_frame_bytes
        self._json: bool | None = False if mode == "msgpack" else None  # None: not decided yet
        self._buffer = bytearray()
        self._offset = 0
        self._scanned = 0  # bytes after the offset already searched (for a newline, or a non-blank)
        self._fatal: tuple[str, str] | None = None
        self._raw_bodies = raw_bodies

    @property
    def mode(self) -> str:
        """"msgpack", "json", or "auto" while the first meaningful byte has not arrived."""
        return "auto" if self._json is None else ("json" if self._json else "msgpack")

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes) -> list[object]:
        """Decoded objects and BadFrame values, in stream order; raises FrameError when fatal."""
        if self._fatal is not None:
            raise FrameError(*self._fatal)
        self._buffer += data
        out: list[object] = []
        try:
            if self._json is None and not self._detect():
                return out
            if self._json:
                self._decode_lines(out)
            else:
                self._decode_frames(out)
        except FrameError as exc:
            exc.decoded = out
            self._fatal = (exc.reason, f"connection already failed: {exc.message}")
            self._buffer = bytearray()
            self._offset = 0
            raise
        self._compact()
        return out

    def _detect(self) -> bool:
        """Choose the framing from the first non-whitespace byte; False while there is none.

        Leading whitespace is only skipped on the way to `{`: for length-prefixed frames those
        bytes are part of the first header (and declare an absurd length, which is fatal).
        """
        buffer = self._buffer
        for index in range(self._offset + self._scanned, len(buffer)):
            if buffer[index] not in _WHITESPACE:
                self._json = buffer[index] == 0x7B  # "{"
                self._scanned = 0
                return True
        self._scanned = len(buffer) - self._offset
        if self._scanned > self.max_frame_bytes:
            raise FrameError("frame_too_large", f"more than {self.max_frame_bytes} bytes of leading whitespace")
        return False

    def _decode_frames(self, out: list[object]) -> None:
        buffer = self._buffer
        end = len(buffer)
        offset = self._offset
        limit = self.max_frame_bytes
        unpack_header = HEADER.unpack_from
        raw = self._raw_bodies
        try:
            while end - offset >= 4:
                (length,) = unpack_header(buffer, offset)
                if length > limit:
                    raise FrameError("frame_too_large", f"frame declares {length} bytes, limit is {limit}")
                stop = offset + 4 + length
                if stop > end:
                    break
                if length == 0:
                    out.append(BadFrame("empty_frame", "zero-length frame"))
                elif raw:
                    out.append(bytes(buffer[offset + 4:stop]))
                else:
                    out.append(_unpack(buffer, offset + 4, stop))
                offset = stop
        finally:
            self._offset = offset

    def _decode_lines(self, out: list[object]) -> None:
        buffer = self._buffer
        offset = self._offset
        limit = self.max_frame_bytes
        try:
            while True:
                newline = buffer.find(b"\n", offset + self._scanned)
                if newline < 0:
                    self._scanned = len(buffer) - offset
                    if self._scanned > limit:
                        raise FrameError("frame_too_large", f"line longer than {limit} bytes without a newline")
                    return
                if newline - offset > limit:
                    raise FrameError("frame_too_large", f"line of {newline - offset} bytes, limit is {limit}")
                line = buffer[offset:newline].strip()
                offset = newline + 1
                self._scanned = 0
                if line:
                    out.append(_loads(line))
        finally:
            self._offset = offset

    def _compact(self) -> None:
        if self._offset == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        elif self._offset > _COMPACT_AFTER_BYTES:
            del self._buffer[: self._offset]
            self._offset = 0


def _unpack(buffer: bytearray, start: int, stop: int) -> object:
    """One msgpack object spanning exactly buffer[start:stop], or a BadFrame saying why not."""
    with memoryview(buffer) as view, view[start:stop] as body:
        try:
            return msgpack.unpackb(body, raw=False, strict_map_key=False)
        except msgpack.ExtraData as exc:
            return BadFrame("trailing_bytes", f"{len(exc.extra)} bytes after the object")
        except Exception as exc:  # msgpack raises several unrelated types for bad input
            return BadFrame("bad_msgpack", f"{type(exc).__name__}: {exc}"[:200])


def unpack_body(body: bytes) -> object:
    """A frame body `FrameDecoder(raw_bodies=True)` handed back, decoded as it would have been."""
    return _unpack(body, 0, len(body))  # type: ignore[arg-type]


def _loads(line: bytearray) -> object:
    try:
        return json.loads(line)
    except Exception as exc:  # ValueError, UnicodeDecodeError, RecursionError on deep nesting
        return BadFrame("bad_json", f"{type(exc).__name__}: {exc}"[:200])


def as_text(value: bytes | str) -> str:
    """A Redis reply as str: redis-py returns bytes (Trident never sets decode_responses, so the
    report stream and frames stay binary-safe), and every schema reader wants text."""
    return value.decode() if isinstance(value, bytes) else value
