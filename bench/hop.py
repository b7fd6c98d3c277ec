"""Benchmark: the supervisor→worker hop, Trident's socketpair channel against aiomultiprocess's queue.

Run: `python -m bench.hop [--n 5000] [--pool-n 1000] [--json OUT]`.

Why this exists: the design sends every admitted signal to a worker process, and that hop sits on
the signal→first-order path. aiomultiprocess's `Pool.apply` moves work through multiprocessing
queues that its worker and its result collector poll every 5 ms; Trident gives each worker a
socketpair carrying length-prefixed msgpack (`shared.channel`) and uses aiomultiprocess only to
start the processes. This measures both hops with the real code on both sides.

How: the sender stamps `time.monotonic_ns()` into the message and the receiver subtracts it from
its own stamp on arrival. On Linux this is CLOCK_MONOTONIC, one clock for every process on the
host, so a difference taken across processes is a real one-way latency. Both stamps bracket the
whole hop: encoding, the kernel, the receiver's wake-up and decoding.

Variants (each after a discarded warm-up):
- channel back-to-back: the next job leaves the moment the previous echo lands; both event loops
  stay hot, never idle in epoll for long (a busy supervisor).
- channel burst×K: K jobs written at once, then their K echoes read; later jobs in a burst queue
  behind earlier ones (several opportunities in one instant).
- channel paced: one job every `--interval-ms` on a fixed schedule whatever the echoes do; both
  loops sleep between jobs, so every hop includes a wake-up from idle (a quiet supervisor).
- aiomultiprocess Pool.apply: one call at a time, each after a random 0–5 ms idle gap so that
  calls land at uncorrelated phases of the library's 5 ms polling loops.

The echo worker is an `aiomultiprocess.Process` with uvloop, as in `supervisor.dispatch`, and
echoes each `Job` (the real record, carrying the example signal) back whole; the real return
message is the much smaller `Done`, so the worker→supervisor figure is an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomultiprocess
import msgpack
import uvloop

from bench.common import (
    LatencySummary,
    host_info,
    markdown_table,
    p50_ratio,
    write_json,
)
from shared.channel import Channel, Hello, Job

__all__ = ["DEFAULT_SIGNAL_PATH", "HopSamples", "echo_bench", "echo_worker", "stamp_arrival", "paced_hops", "run", "main"]

DEFAULT_SIGNAL_PATH = Path(__file__).resolve().with_name("example_signal.json")  # the contract's example

_TO_WORKER = "supervisor→worker"
_TO_SUPERVISOR = "worker→supervisor"
_ROUND_TRIP = "round trip"
_POOL_GAP_MAX_NS = 5_000_000  # the library's polling period: gaps spread calls over its phase
_POOL_WARMUP = 50  # each call costs milliseconds; the first includes the process start
_PROCESS_EXIT_TIMEOUT_S = 5


# --- worker side (runs in the spawned process) -------------------------------------------------


async def echo_worker(sock: socket.socket) -> None:
    """Echo every job back until the supervisor closes the channel.

    In the echo, `received_ms` carries the supervisor→worker hop (ns) measured here from the
    sender's stamp, and `received_ns` the moment the echo leaves, so the supervisor can time the
    way back; the fields keep their types, and the record stays the real `Job`.
    """
    channel = await Channel.open(sock)
    channel.send(Hello(0, os.getpid()))
    while (job := await channel.recv()) is not None:
        forward_ns = time.monotonic_ns() - job.received_ns
        channel.send(Job(job.correlation_id, job.signal, forward_ns, time.monotonic_ns()))
    channel.close()


async def stamp_arrival(job: Job, sent_ns: int) -> int:
    """Pool task: the supervisor→worker hop (ns), read from the stamp the sender put in the call."""
    return time.monotonic_ns() - sent_ns


# --- supervisor side -----------------------------------------------------------------------------


@dataclass(slots=True)
class HopSamples:
    """Latencies (ns) of one variant; `to_supervisor` stays empty where there is no way back."""

    variant: str
    to_worker: list[int]
    to_supervisor: list[int]
    round_trip: list[int]

    def summaries(self) -> list[LatencySummary]:
        measured = ((_TO_WORKER, self.to_worker), (_TO_SUPERVISOR, self.to_supervisor), (_ROUND_TRIP, self.round_trip))
        return [LatencySummary.from_ns(self.variant, measure, samples) for measure, samples in measured if samples]


class _EchoBench:
    """The supervisor's end of one echo worker, with the bookkeeping every channel variant shares."""

    def __init__(self, channel: Channel, signal: dict[str, Any]) -> None:
        self.channel = channel
        self.signal = signal
        self._sequence = 0
        self._sent_ns: dict[str, int] = {}

    def send(self) -> None:
        self._sequence += 1
        correlation_id = f"bench-{self._sequence}"
        sent_ns = time.monotonic_ns()
        self._sent_ns[correlation_id] = sent_ns
        self.channel.send(Job(correlation_id, self.signal, time.time_ns() // 1_000_000, sent_ns))

    async def receive(self, samples: HopSamples) -> None:
        echo = await self.channel.recv()
        arrived_ns = time.monotonic_ns()
        if not isinstance(echo, Job):
            raise RuntimeError(f"echo worker answered {echo!r:.80}")
        samples.to_worker.append(echo.received_ms)
        samples.to_supervisor.append(arrived_ns - echo.received_ns)
        samples.round_trip.append(arrived_ns - self._sent_ns.pop(echo.correlation_id))

    async def batched(self, variant: str, count: int, batch: int) -> HopSamples:
        """Write `batch` jobs at once, read their echoes, repeat; batch 1 is back-to-back ping-pong."""
        samples = HopSamples(variant, [], [], [])
        remaining = count
        while remaining:
            size = min(batch, remaining)
            for _ in range(size):
                self.send()
            await self.channel.drain()
            for _ in range(size):
                await self.receive(samples)
            remaining -= size
        return samples

    async def paced(self, variant: str, count: int, interval_ns: int) -> HopSamples:
        """One job per interval on a fixed schedule, echoes read concurrently."""
        samples = HopSamples(variant, [], [], [])

        async def send_on_schedule() -> None:
            start_ns = time.monotonic_ns()
            for index in range(count):
                delay_ns = start_ns + index * interval_ns - time.monotonic_ns()
                if delay_ns > 0:
                    await asyncio.sleep(delay_ns / 1e9)
                self.send()

        sender = asyncio.create_task(send_on_schedule())
        for _ in range(count):
            await self.receive(samples)
        await sender
        return samples


@asynccontextmanager
async def echo_bench(signal: dict[str, Any], warmup: int) -> AsyncIterator[_EchoBench]:
    """A warmed-up echo worker process and the supervisor's end of its channel."""
    parent_end, child_end = socket.socketpair()
    process = aiomultiprocess.Process(
        target=echo_worker, args=(child_end,), name="bench-hop-echo", loop_initializer=uvloop.new_event_loop
    )
    process.start()
    child_end.close()
    channel = await Channel.open(parent_end)
    try:
        hello = await channel.recv()
        if not isinstance(hello, Hello):
            raise RuntimeError(f"echo worker did not say hello: {hello!r:.80}")
        bench = _EchoBench(channel, signal)
        await bench.batched("warm-up", warmup, 1)
        yield bench
    finally:
        channel.close()
        await _stop(process)


async def _channel_variants(
    signal: dict[str, Any], count: int, warmup: int, burst: int, interval_ns: int
) -> list[HopSamples]:
    async with echo_bench(signal, warmup) as bench:
        interval_ms = interval_ns / 1e6
        return [
            await bench.batched("channel back-to-back", count, 1),
            await bench.batched(f"channel burst×{burst}", count, burst),
            await bench.paced(f"channel paced {interval_ms:g} ms", count, interval_ns),
        ]


async def paced_hops(signal: dict[str, Any], count: int, warmup: int, interval_ns: int) -> HopSamples:
    """The channel hop alone, one job every `interval_ns` (the suite's floor uses it)."""
    async with echo_bench(signal, warmup) as bench:
        return await bench.paced(f"channel paced {interval_ns / 1e6:g} ms", count, interval_ns)


async def _stop(process: aiomultiprocess.Process) -> None:
    """The worker exits on EOF; one that does not within the timeout is killed."""
    await asyncio.get_running_loop().run_in_executor(None, process.aio_process.join, _PROCESS_EXIT_TIMEOUT_S)
    if process.is_alive():
        process.kill()


async def _pool_variant(signal: dict[str, Any], count: int, seed: int) -> HopSamples:
    samples = HopSamples("aiomultiprocess Pool.apply", [], [], [])
    gaps = random.Random(seed)
    async with aiomultiprocess.Pool(processes=1, loop_initializer=uvloop.new_event_loop) as pool:
        for index in range(_POOL_WARMUP + count):
            await asyncio.sleep(gaps.randrange(_POOL_GAP_MAX_NS) / 1e9)
            sent_ns = time.monotonic_ns()
            job = Job(f"bench-pool-{index}", signal, time.time_ns() // 1_000_000, sent_ns)
            forward_ns = await pool.apply(stamp_arrival, (job, sent_ns))
            returned_ns = time.monotonic_ns()
            if index >= _POOL_WARMUP:
                samples.to_worker.append(forward_ns)
                samples.round_trip.append(returned_ns - sent_ns)
    return samples


async def run(
    signal: dict[str, Any], count: int, pool_count: int, warmup: int, burst: int, interval_ns: int, seed: int
) -> list[HopSamples]:
    """Every variant, channel first, each with its own worker process."""
    variants = await _channel_variants(signal, count, warmup, burst, interval_ns)
    variants.append(await _pool_variant(signal, pool_count, seed))
    return variants


def _ratios(rows: list[LatencySummary]) -> dict[str, float]:
    """aiomultiprocess's p50 over each channel variant's p50, per measure both of them have."""
    by_key = {(row.variant, row.measure): row for row in rows}
    library = [row for row in rows if row.variant.startswith("aiomultiprocess")]
    ratios: dict[str, float] = {}
    for lib_row in library:
        for (variant, measure), row in by_key.items():
            if measure == lib_row.measure and variant.startswith("channel"):
                ratios[f"{measure}: {lib_row.variant} / {variant}"] = round(p50_ratio(lib_row, row), 1)
    return ratios


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hop", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="measured jobs per channel variant")
    parser.add_argument("--pool-n", type=int, default=1000, help="measured Pool.apply calls (each costs ms)")
    parser.add_argument("--warmup", type=int, default=200, help="discarded channel jobs before measuring")
    parser.add_argument("--burst", type=int, default=16, help="jobs per burst in the burst variant")
    parser.add_argument("--interval-ms", type=float, default=2.0, help="spacing of the paced variant")
    parser.add_argument("--seed", type=int, default=1, help="seed of the idle gaps between Pool.apply calls")
    parser.add_argument("--signal", type=Path, default=DEFAULT_SIGNAL_PATH, help="signal JSON carried by each job")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if min(args.n, args.pool_n, args.burst) < 1 or args.warmup < 0 or args.interval_ms <= 0:
        parser.error("--n, --pool-n and --burst must be ≥ 1, --warmup ≥ 0, --interval-ms > 0")
    if not args.signal.is_file():
        parser.error(f"signal file not found: {args.signal}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    signal = json.loads(args.signal.read_text(encoding="utf-8"))
    job_bytes = len(msgpack.packb(Job("bench-1", signal, 0, 0).to_wire(), use_bin_type=True))
    interval_ns = round(args.interval_ms * 1e6)
    started = time.monotonic()
    variants = uvloop.run(run(signal, args.n, args.pool_n, args.warmup, args.burst, interval_ns, args.seed))
    elapsed_s = time.monotonic() - started

    rows = [row for variant in variants for row in variant.summaries()]
    ratios = _ratios(rows)
    print(f"Job frame: {job_bytes} B msgpack body (signal {args.signal.name}); nearest-rank percentiles.\n")
    print(markdown_table(rows))
    print("\naiomultiprocess p50 ÷ channel p50:")
    for label, ratio in ratios.items():
        print(f"- {label}: {ratio:g}×")
    print(f"\n({elapsed_s:.1f} s)")
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "hop",
                "host": host_info(),
                "parameters": {
                    "n": args.n,
                    "pool_n": args.pool_n,
                    "warmup": args.warmup,
                    "burst": args.burst,
                    "interval_ms": args.interval_ms,
                    "seed": args.seed,
                    "job_bytes": job_bytes,
                },
                "results": [row.to_dict() for row in rows],
                "p50_ratios": ratios,
                "elapsed_s": round(elapsed_s, 1),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
