"""Mutation fuzzer for the intake path: frame decoder → signal validator, and the socket server.

    python -m bench.fuzz --frames 1000000 [--seed 1] [--socket-frames 50000] [--json out.json]

Frames are mutated from valid signals (built from the simulator's markets): field values
replaced by hostile ones (NaN, infinities, huge integers, exponent strings, wrong types, deep
nesting), keys deleted, bytes flipped, bodies truncated, lengths that lie (up to 4 GB), random
bytes, and the same for newline-delimited JSON. Each stream is fed to a FrameDecoder in random
chunk sizes and every decoded object to `parse_signal`. A crash is any exception other than the
documented ones (FrameError from the decoder, SignalError from the validator); the first few are
saved with their input. The socket part sends such streams through a real SignalServer, many
connections at once, and checks a well-behaved probe still gets through afterwards. Exit status 1 if anything crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

from shared.codec import (
    HEADER,
    BadFrame,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_json_line,
)
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.signal import SignalError, parse_signal
from sim.server import start_simulator
from supervisor.server import SignalServer
from tools.synthetic import fetch_markets, synthetic_signals

__all__ = ["FuzzStats", "generate_streams", "fuzz_decoder", "fuzz_socket", "main"]

_MAX_FRAME = 1 << 20
_KEPT_CRASHES = 5
_STREAM_FRAMES = 32
_HOSTILE_SCALARS: tuple[Any, ...] = (
    None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1e308, -1e308, float("nan"), float("inf"),
    float("-inf"), 5e-324, "", " ", "0", "-0", "1e999", "-1e999", "NaN", "Infinity", "0x10", "1_000", "１２",
    "0.000000000000000000000000001", "9" * 400, "BTC-USDT", "btc-usdt", "A-A", "../../etc", "\x00", "\ud7ff",
    b"\x00\xff", "buy", "sell", "SELL",
)


class FuzzStats:
    """Counters for one run; `crashes` holds (where, exception, input) of the first few."""

    def __init__(self) -> None:
        self.frames = 0
        self.objects = 0
        self.valid = 0
        self.fatal_streams = 0
        self.refusals: Counter[str] = Counter()
        self.bad_frames: Counter[str] = Counter()
        self.crash_count = 0
        self.crashes: list[dict[str, str]] = []

    def crash(self, where: str, exc: BaseException, data: object) -> None:
        self.crash_count += 1
        if len(self.crashes) < _KEPT_CRASHES:
            self.crashes.append({"where": where, "error": f"{type(exc).__name__}: {exc}"[:500],
                                 "input": repr(data)[:2000]})

    def validate(self, obj: object) -> None:
        """What admission does first with a decoded frame."""
        self.objects += 1
        if isinstance(obj, BadFrame):
            self.bad_frames[obj.reason] += 1
            return
        try:
            parse_signal(obj)
        except SignalError as exc:
            self.refusals[exc.reason] += 1
        except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
            self.crash("parse_signal", exc, obj)
        else:
            self.valid += 1


def _hostile_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.6 or depth > 3:
        return rng.choice(_HOSTILE_SCALARS)
    if roll < 0.7:
        return "x" * rng.choice((1, 64, 4096))
    if roll < 0.85:
        return [_hostile_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(("price", "size", "pair", "side", "", "legs", "x")): _hostile_value(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def _mutate(tree: Any, rng: random.Random, delete: bool) -> Any:
    """`tree` with one random node replaced by a hostile value (or removed)."""
    if not isinstance(tree, (dict, list)) or not tree or rng.random() < 0.25:
        return _hostile_value(rng)
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    key = rng.choice(list(copy)) if isinstance(copy, dict) else rng.randrange(len(copy))
    if delete and rng.random() < 0.4:
        del copy[key]
        return copy
    copy[key] = _mutate(copy[key], rng, delete)
    return copy


def _flip(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def generate_streams(corpus: list[dict], count: int, rng: random.Random) -> Iterator[tuple[bool, list[bytes]]]:
    """`count` frames in all, as (is_json, frames) streams of one framing and 1–32 frames each."""
    left = count
    while left > 0:
        size = min(left, rng.randint(1, _STREAM_FRAMES))
        left -= size
        is_json = rng.random() < 0.08
        yield is_json, [_json_line(corpus, rng) if is_json else _msgpack_frame(corpus, rng) for _ in range(size)]


def _json_line(corpus: list[dict], rng: random.Random) -> bytes:
    try:
        line = encode_json_line(_mutate(rng.choice(corpus), rng, delete=True))
    except (TypeError, ValueError):  # bytes or NaN picked: not JSON, so raw junk instead
        line = b"{" + rng.randbytes(rng.randint(0, 64)).replace(b"\n", b"") + b"\n"
    return _flip(line[:-1], rng) + b"\n" if rng.random() < 0.3 else line


def _msgpack_frame(corpus: list[dict], rng: random.Random) -> bytes:
    """One frame with its own (possibly lying) length prefix."""
    roll = rng.random()
    signal = rng.choice(corpus)
    try:
        body = msgpack.packb(signal if roll < 0.1 else _mutate(signal, rng, delete=roll < 0.25), use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        body = rng.randbytes(16)
    if roll < 0.5:
        return HEADER.pack(len(body)) + body
    if roll < 0.72:
        return HEADER.pack(len(body)) + _flip(body, rng)
    if roll < 0.75:  # a length that lies, either way (it desynchronises the rest of its stream)
        cut = rng.randrange(len(body))
        return HEADER.pack(len(body)) + body[:cut] if rng.random() < 0.5 else HEADER.pack(cut) + body
    if roll < 0.95:
        junk = rng.randbytes(rng.randint(0, 512))
        return HEADER.pack(len(junk)) + junk
    if roll < 0.99:
        return HEADER.pack(0)
    return HEADER.pack(rng.choice((_MAX_FRAME + 1, 2**31, 2**32 - 1))) + rng.randbytes(8)


def fuzz_decoder(streams: Iterator[tuple[bool, list[bytes]]], rng: random.Random, stats: FuzzStats) -> None:
    """Each stream through a fresh decoder in random chunks, as one connection would arrive."""
    for is_json, frames in streams:
        stats.frames += len(frames)
        data = b"".join(frames)
        decoder = FrameDecoder(_MAX_FRAME, mode="auto" if is_json else "msgpack")
        for chunk in _split(data, rng):
            try:
                items = decoder.feed(chunk)
            except FrameError as exc:
                stats.fatal_streams += 1
                for item in exc.decoded:
                    stats.validate(item)
                break
            except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
                stats.crash("FrameDecoder.feed", exc, data)
                break
            for item in items:
                stats.validate(item)


def _split(data: bytes, rng: random.Random) -> list[bytes]:
    if rng.random() < 0.5 or not data:
        return [data]
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(1, 8)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


async def fuzz_socket(streams: list[bytes], connections: int, stats: FuzzStats) -> bool:
    """Each stream on its own connection through a real SignalServer, `connections` at a time;
    True if a well-behaved probe gets through afterwards."""
    probe_seen = asyncio.Event()

    async def on_frame(obj: object, received_ns: int) -> None:
        if isinstance(obj, dict) and obj.get("probe") == "after-fuzz":
            probe_seen.set()
            return
        stats.validate(obj)

    def on_bad_frame(reason: str, detail: str) -> None:
        stats.objects += 1
        stats.bad_frames[reason] += 1

    path = Path(tempfile.mkdtemp(prefix="tri-fuzz-")) / "s.sock"
    server = SignalServer(str(path), _MAX_FRAME, on_frame, on_bad_frame)
    await server.start()
    queue = iter(streams)

    async def client() -> None:
        for data in queue:
            _, writer = await asyncio.open_unix_connection(str(path))
            try:
                writer.write(data)
                await writer.drain()
                writer.write_eof()
                await writer.drain()
            except (ConnectionError, BrokenPipeError):
                pass  # the server closed a stream it could not resynchronise: its right
            writer.close()

    try:
        await asyncio.gather(*(client() for _ in range(connections)))
        _, writer = await asyncio.open_unix_connection(str(path))
        writer.write(encode_frame({"probe": "after-fuzz"}))
        await writer.drain()
        await asyncio.wait_for(probe_seen.wait(), 10)
        writer.close()
        return True
    except TimeoutError:
        return False
    finally:
        await server.stop()


async def _corpus(size: int) -> list[dict]:
    running = await start_simulator()
    try:
        async with make_session() as session:
            markets = await fetch_markets(KucoinRest(session, running.url))
    finally:
        await running.stop()
    return synthetic_signals(markets, size, now_ms=int(time.time() * 1000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames through decoder + validator")
    parser.add_argument("--socket-frames", type=int, default=50_000, help="frames through the socket server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    corpus = asyncio.run(_corpus(64))

    started = time.perf_counter()
    direct = FuzzStats()
    fuzz_decoder(generate_streams(corpus, args.frames, rng), rng, direct)
    direct_s = time.perf_counter() - started

    started = time.perf_counter()
    through = FuzzStats()
    socket_streams = [b"".join(frames) for _, frames in generate_streams(corpus, args.socket_frames, rng)]
    through.frames = args.socket_frames
    survived = asyncio.run(fuzz_socket(socket_streams, args.connections, through)) if socket_streams else True
    socket_s = time.perf_counter() - started

    figures = {
        "seed": args.seed,
        "decoder_validator": {"frames": direct.frames, "seconds": round(direct_s, 1),
                              "frames_per_s": round(direct.frames / direct_s) if direct_s else 0,
                              "objects": direct.objects, "valid_signals": direct.valid,
                              "fatal_streams": direct.fatal_streams, "crashes": direct.crash_count,
                              "bad_frames": dict(direct.bad_frames), "refusals": dict(direct.refusals.most_common(12))},
        "socket_server": {"frames": through.frames, "connections": args.connections, "seconds": round(socket_s, 1),
                          "objects": through.objects, "crashes": through.crash_count, "probe_after": survived},
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "crash_samples": direct.crashes + through.crashes,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if direct.crash_count or through.crash_count or not survived else 0


if __name__ == "__main__":
    sys.exit(main())
