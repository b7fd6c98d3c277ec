"""`trident send`: stream signals into a supervisor's socket, framed, at an optional steady rate.

Input is JSON lines or msgpack (length-prefixed frames as the socket speaks, or a bare msgpack
stream); `--synthetic N` builds realistic signals from an exchange's markets instead.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

import msgpack
from tqdm import tqdm

from shared.codec import HEADER, encode_frame
from shared.runloop import run_loop

__all__ = ["build_parser", "main", "read_signals", "send_frames", "send_signals"]


def read_signals(source: BinaryIO, fmt: str = "auto") -> Iterator[object]:
    """Decoded signals from a file: `jsonl`, `msgpack`, or `auto` (JSON if it starts with `{`)."""
    head = source.peek(1)[:1] if hasattr(source, "peek") else b""
    if fmt == "auto":
        fmt = "jsonl" if head in (b"{", b" ", b"\n") else "msgpack"
    if fmt == "jsonl":
        for line in source:
            if line.strip():
                yield json.loads(line)
        return
    data = source.read()
    if _looks_framed(data):
        offset = 0
        while offset < len(data):
            (length,) = HEADER.unpack_from(data, offset)
            yield msgpack.unpackb(data[offset + 4 : offset + 4 + length], raw=False)
            offset += 4 + length
        return
    yield from msgpack.Unpacker(io.BytesIO(data), raw=False)


def _looks_framed(data: bytes) -> bool:
    """True if the bytes parse as a whole sequence of length-prefixed frames."""
    offset = 0
    while offset + 4 <= len(data):
        (length,) = HEADER.unpack_from(data, offset)
        offset += 4 + length
    return offset == len(data) and len(data) > 0


async def send_frames(
    socket_path: str, frames: Iterable[bytes], *, total: int | None = None, rate: float | None = None,
    progress: bool | None = None, on_sent: list[int] | None = None,
) -> int:
    """Write pre-encoded frames; paces to `rate` per second on an absolute schedule (no drift).

    `on_sent`, when given, receives the monotonic ns of each write (benchmarks use it).
    """
    _, writer = await asyncio.open_unix_connection(socket_path)
    interval_ns = int(1e9 / rate) if rate else 0
    start_ns = time.monotonic_ns()
    sent = 0
    bar = tqdm(total=total, unit="sig", disable=(not sys.stderr.isatty()) if progress is None else not progress,
               mininterval=0.25, file=sys.stderr)
    try:
        for frame in frames:
            if interval_ns:
                delay_ns = start_ns + sent * interval_ns - time.monotonic_ns()
                if delay_ns > 0:
                    await asyncio.sleep(delay_ns / 1e9)
            if on_sent is not None:
                on_sent.append(time.monotonic_ns())
            writer.write(frame)
            if writer.transport.get_write_buffer_size() > 1 << 20 or interval_ns:
                await writer.drain()
            sent += 1
            bar.update(1)
        await writer.drain()
    finally:
        bar.close()
        writer.close()
        await writer.wait_closed()
    return sent


async def send_signals(socket_path: str, signals: Iterable[object], *, total: int | None = None,
                       rate: float | None = None, progress: bool | None = None) -> int:
    """Frame and send decoded signals (length-prefixed msgpack)."""
    return await send_frames(socket_path, (encode_frame(s) for s in signals), total=total, rate=rate,
                             progress=progress)


async def _synthetic(exchange_url: str, count: int) -> list[object]:
    from shared.kucoin.rest import KucoinRest  # noqa: PLC0415 - only --synthetic needs the exchange client
    from shared.kucoin.session import make_session  # noqa: PLC0415
    from tools.synthetic import fetch_markets, synthetic_signals  # noqa: PLC0415

    async with make_session() as session:
        markets = await fetch_markets(KucoinRest(session, exchange_url))
    return list(synthetic_signals(markets, count, now_ms=int(time.time() * 1000)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trident send", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="input file, '-' or absent for stdin")
    parser.add_argument("--socket", default="/run/trident/signals.sock")
    parser.add_argument("--format", choices=("auto", "jsonl", "msgpack"), default="auto")
    parser.add_argument("--rate", type=float, help="signals per second (default: as fast as possible)")
    parser.add_argument("--synthetic", type=int, metavar="N", help="generate N signals from the exchange's markets")
    parser.add_argument("--exchange-url", default="http://127.0.0.1:8765", help="markets source for --synthetic")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    async def go() -> int:
        if args.synthetic:
            signals_ = await _synthetic(args.exchange_url, args.synthetic)
        else:
            source = sys.stdin.buffer if args.file in (None, "-") else open(args.file, "rb")  # noqa: SIM115
            with source:
                signals_ = list(read_signals(source, args.format))
        sent = await send_signals(args.socket, signals_, total=len(signals_), rate=args.rate)
        print(f"sent {sent} signals to {args.socket}", file=sys.stderr)
        return 0

    return run_loop(go())
