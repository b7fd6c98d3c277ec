"""Intake throughput on one core: frames/s decoded, validated and refused, against raw msgpack.

"Refused" here is the cheapest complete path a valid signal can take through the supervisor:
read from the socket in 256 KiB chunks and split by `FrameDecoder` into raw bodies, decoded by
msgspec straight from the bytes into a typed `Signal` and validated (`shared.signal_typed`, as
the server does), then turned away by `Admission.admit` on the cached `paused` flag —
counted by reason and logged at debug (filtered, logging configured as the supervisor's) —
without a Redis call. It is what a flood of signals costs a paused supervisor, and the part of
every admitted signal's path that is pure CPU. The reference is `msgpack.unpackb` of each body
alone: nothing can intake faster than it decodes. "dict decode + parse_signal" is the path before
the typed decode (msgpack into dicts, then `parse_signal`), kept for a side-by-side figure.

Every variant runs in this process, pinned to one CPU, over the same frames (realistic synthetic
signals: three 5-level books each); each figure is the best of `repeats` passes, the pass least
disturbed by whatever else the machine runs.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import msgpack

from shared.codec import HEADER, FrameDecoder, encode_frame
from shared.logs import configure_logging
from shared.signal import Signal, parse_signal
from shared.signal_typed import decode_frame
from supervisor.admission import Admission

__all__ = ["IntakeResult", "measure_intake", "INTAKE_VARIANTS"]

INTAKE_VARIANTS = ("msgpack decode", "FrameDecoder", "dict decode + parse_signal", "decode + validate",
                   "decode + validate + refuse")
_READ_BYTES = 256 * 1024  # what the server asks of each read (supervisor.server)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    frames: int
    frame_bytes: int  # mean frame size
    per_s: dict[str, float]  # variant → frames per second

    @property
    def refuse_ratio(self) -> float:
        """Full intake (decode + validate + refuse) as a fraction of the raw decode rate."""
        return self.per_s["decode + validate + refuse"] / self.per_s["msgpack decode"]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "refuse_ratio": round(self.refuse_ratio, 3)}


@contextmanager
def _one_cpu() -> Iterator[None]:
    """Pin this process to the CPU it is on, for the duration (no-op where unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(previous)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def _chunks(stream: bytes) -> list[bytes]:
    return [stream[offset:offset + _READ_BYTES] for offset in range(0, len(stream), _READ_BYTES)]


def _best_rate(repeats: int, frames: int, one_pass: Callable[[], None]) -> float:
    best_s = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        one_pass()
        best_s = min(best_s, time.perf_counter() - started)
    return frames / best_s


async def _measure_all(
    repeats: int, count: int, decode_only: Callable[[], None], frame_decoder: Callable[[], None],
    dict_validate: Callable[[], None], validate: Callable[[], None], refuse_all: Callable[[], Awaitable[None]],
) -> dict[str, float]:
    per_s = {
        "msgpack decode": _best_rate(repeats, count, decode_only),
        "FrameDecoder": _best_rate(repeats, count, frame_decoder),
        "dict decode + parse_signal": _best_rate(repeats, count, dict_validate),
        "decode + validate": _best_rate(repeats, count, validate),
    }
    best_s = float("inf")
    for _ in range(repeats):  # in the running loop, as the supervisor's admissions are
        started = time.perf_counter()
        await refuse_all()
        best_s = min(best_s, time.perf_counter() - started)
    per_s["decode + validate + refuse"] = count / best_s
    return per_s


class _NoRegistry:
    """A paused admission refuses before it would ask the registry or the pool anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the intake benchmark reached the registry/pool ({name})")


async def measure_intake(signals: Sequence[dict[str, Any]], repeats: int = 3) -> IntakeResult:
    """Frames/s for each of INTAKE_VARIANTS over `signals` framed as the socket carries them."""
    frames = [encode_frame(signal) for signal in signals]
    bodies = [frame[HEADER.size:] for frame in frames]
    chunks = _chunks(b"".join(frames))
    count = len(frames)
    configure_logging("bench-intake", "info")  # as the supervisor: debug filtered out
    admission = Admission(_NoRegistry(), _NoRegistry(), "paper")  # type: ignore[arg-type]
    admission.paused = True
    # The suite's own heap (markets, these signals and frames) is frozen out of the collector: a
    # supervisor holds no such heap, and full collections scanning it would be charged to intake.
    gc.collect()
    gc.freeze()

    def decode_only() -> None:
        unpackb = msgpack.unpackb
        for body in bodies:
            unpackb(body, raw=False, strict_map_key=False)

    def frame_decoder() -> None:
        decoder = FrameDecoder()
        for chunk in chunks:
            decoder.feed(chunk)

    def dict_validate() -> None:
        decoder = FrameDecoder()
        for chunk in chunks:
            for item in decoder.feed(chunk):
                parse_signal(item)

    def validate() -> None:
        decoder = FrameDecoder(raw_bodies=True)
        for chunk in chunks:
            for body in decoder.feed(chunk):
                item = decode_frame(body)  # type: ignore[arg-type]
                if type(item) is not Signal:
                    parse_signal(item)

    async def refuse_all() -> None:  # what SignalServer._serve does with each body, then admission
        decoder = FrameDecoder(raw_bodies=True)
        admit = admission.admit
        for chunk in chunks:
            received_ns = time.monotonic_ns()
            for body in decoder.feed(chunk):
                await admit(decode_frame(body), received_ns)  # type: ignore[arg-type]

    try:
        with _one_cpu():
            per_s = await _measure_all(repeats, count, decode_only, frame_decoder, dict_validate, validate, refuse_all)
    finally:
        gc.unfreeze()
    if admission.refusals["paused"] != repeats * count:
        raise RuntimeError(f"expected every frame refused as paused, got {dict(admission.refusals)}")
    return IntakeResult(count, round(sum(map(len, frames)) / count), {k: round(v, 1) for k, v in per_s.items()})


async def _synthetic_stream(frames: int, coins: int) -> list[dict[str, Any]]:
    from bench.latency import load_markets  # noqa: PLC0415 - the command line only (needs the simulator)
    from bench.stack import open_stack  # noqa: PLC0415
    from tools.synthetic import synthetic_signals  # noqa: PLC0415

    async with open_stack(coins) as stack:
        markets = await load_markets(stack.sim_url)
    return synthetic_signals(markets, frames, now_ms=int(time.time() * 1000), prefix="intake")


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.intake [--frames 20000] [--repeats 3] [--json OUT]`."""
    import argparse  # noqa: PLC0415 - the command line only

    import uvloop  # noqa: PLC0415

    from bench.common import host_info, write_json  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000, help="synthetic signals framed as the socket carries them")
    parser.add_argument("--repeats", type=int, default=3, help="passes per variant; the best is kept")
    parser.add_argument("--coins", type=int, default=24, help="synthetic coins added to the markets")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.repeats < 1:
        parser.error("--frames and --repeats must be >= 1")
    signals = uvloop.run(_synthetic_stream(args.frames, args.coins))
    result = uvloop.run(measure_intake(signals, args.repeats))
    raw = result.per_s["msgpack decode"]
    print(f"{result.frames} frames of {result.frame_bytes} B, one core, best of {args.repeats}:\n")
    print("| stage | frames/s | of raw decode |\n|---|--:|--:|")
    for name in INTAKE_VARIANTS:
        print(f"| {name} | {result.per_s[name]:,.0f} | {result.per_s[name] / raw:.0%} |")
    if args.json:
        write_json(args.json, {"host": host_info(), "parameters": vars(args), **result.to_dict()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
