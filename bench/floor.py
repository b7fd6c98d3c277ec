"""The floor: what each part of the signal→wire path costs on its own, on this machine, now.

Each part runs alone, paced like the pipeline it is compared with (one operation every
`interval_ns`, so every measurement includes waking an idle process, as a real signal does):

- frame: a length-prefixed msgpack signal written to a Unix socket → decoded by `FrameDecoder`
  in another process (one way; the echo back gives the round trip as well);
- evalsha: one `Registry.acquire` (the lease Lua, EVALSHA over the Unix socket, redis-py with
  hiredis) — the lease is released afterwards, outside the timing;
- hop: one `Job` over the worker channel (socketpair + msgpack, `bench.hop`), one way;
- post: one signed order-test POST on a warm keep-alive connection, from the call until the
  simulator's handler sees it (its order log's `arrival_ns`); the call's full round trip and
  three calls one after another (the seed's sequential legs) and at once (Trident's) are kept
  for the completion comparison.

The floor's sum is frame (one way) + evalsha + hop + post (until seen): one of each thing a
signal must go through before its first order is on the wire.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiomultiprocess
import msgpack
import redis.asyncio as aioredis
import uvloop

from bench.common import LatencySummary
from bench.hop import paced_hops
from bench.stack import Stack
from shared.codec import FrameDecoder, encode_frame
from shared.credentials import Credentials
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.store.registry import Grant, LeaseRequest, Registry
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from worker.context import client_oid

__all__ = ["FLOOR_PARTS", "FloorResult", "measure_floor"]

FLOOR_PARTS = ("frame one-way", "EVALSHA acquire", "channel hop", "POST until seen")
_WARMUP = 50  # operations run before measuring (connections, caches, the receiver's first wake-ups)
_STAMP = struct.Struct(">Q")
_STAMP_KEY = "bench_sent_ns"  # last key of the map, so its 8 bytes end the frame


@dataclass(slots=True)
class FloorResult:
    """Samples (ns) of every part; `floor_sum_us` adds the p50 of the four parts of the path."""

    samples: dict[str, list[int]] = field(default_factory=dict)

    def summaries(self) -> list[LatencySummary]:
        return [LatencySummary.from_ns("floor", name, values) for name, values in self.samples.items()]

    def p50_us(self, part: str) -> float:
        return LatencySummary.from_ns("floor", part, self.samples[part]).p50_us

    @property
    def floor_sum_us(self) -> float:
        return sum(self.p50_us(part) for part in FLOOR_PARTS)


async def _paced(count: int, interval_ns: int, operation: Callable[[int], Awaitable[None]]) -> None:
    """Run `operation(i)` on a fixed schedule, one every `interval_ns` (never two at once), after
    `_WARMUP` operations with negative indices that must not record anything."""
    start_ns = time.monotonic_ns()
    for index in range(-_WARMUP, count):
        delay_ns = start_ns + (index + _WARMUP) * interval_ns - time.monotonic_ns()
        if delay_ns > 0:
            await asyncio.sleep(delay_ns / 1e9)
        await operation(index)


# --- frame: Unix socket + FrameDecoder in another process ---------------------------------------


async def frame_receiver(listening: socket.socket) -> None:
    """Serve one connection: decode frames, answer each with the one-way latency it measured."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        while data := await reader.read(256 * 1024):
            now_ns = time.monotonic_ns()
            for item in decoder.feed(data):
                one_way = now_ns - _STAMP.unpack(item[_STAMP_KEY])[0]
                writer.write(encode_frame(one_way))
        writer.close()
        server.close()

    server = await asyncio.start_unix_server(serve, sock=listening)
    async with server:
        try:
            await server.serve_forever()
        except asyncio.CancelledError:
            pass


async def _frames(stack: Stack, signal: dict[str, Any], count: int, interval_ns: int) -> tuple[list[int], list[int]]:
    path = str(stack.workdir / "floor-frame.sock")
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(path)
    listening.listen()  # connections queue until the receiver accepts: no readiness to wait for
    process = aiomultiprocess.Process(target=frame_receiver, args=(listening,), name="bench-frame-receiver",
                                      loop_initializer=uvloop.new_event_loop)
    process.start()
    listening.close()
    reader, writer = await asyncio.open_unix_connection(path)
    template = encode_frame({**signal, _STAMP_KEY: bytes(_STAMP.size)})[: -_STAMP.size]
    replies = FrameDecoder()
    one_way: list[int] = []
    round_trip: list[int] = []

    async def send(index: int) -> None:
        sent_ns = time.monotonic_ns()
        writer.write(template + _STAMP.pack(sent_ns))
        answers: list[object] = []
        while not answers:
            answers = replies.feed(await reader.read(4096))
        if index >= 0:
            round_trip.append(time.monotonic_ns() - sent_ns)
            one_way.append(int(answers[0]))  # type: ignore[call-overload]

    try:
        await _paced(count, interval_ns, send)
    finally:
        writer.close()
        await asyncio.get_running_loop().run_in_executor(None, process.aio_process.join, 5)
        if process.is_alive():
            process.kill()
    return one_way, round_trip


# --- EVALSHA: the lease script ------------------------------------------------------------------


async def _evalsha(stack: Stack, signal: dict[str, Any], count: int, interval_ns: int) -> list[int]:
    redis = aioredis.Redis.from_url(stack.redis.url)
    registry = Registry(redis, owner="bench-floor")
    pairs = tuple(leg["pair"] for leg in signal["legs"])
    samples: list[int] = []

    async def acquire(index: int) -> None:
        request = LeaseRequest(f"floor-{index}", ",".join(sorted(pairs)), str(signal["primary_quote"]), pairs,
                               Decimal(str(signal["starting_volume"])), int(time.time() * 1000))
        started = time.monotonic_ns()
        grant = await registry.acquire(request)
        if index >= 0:
            samples.append(time.monotonic_ns() - started)
        if not isinstance(grant, Grant):
            raise RuntimeError(f"floor lease refused: {grant}")
        await registry.release(request.lease_id, grant.token)

    try:
        await _paced(count, interval_ns, acquire)
    finally:
        await redis.aclose()
    return samples


# --- POST: a signed order test on a warm connection ---------------------------------------------


async def _posts(stack: Stack, signal: dict[str, Any], count: int, interval_ns: int) -> dict[str, list[int]]:
    legs = signal["legs"]
    credentials = Credentials(DEMO_API_KEY, DEMO_API_SECRET, DEMO_API_PASSPHRASE)
    sent: dict[str, int] = {}  # client oid → monotonic ns when the call began
    single: list[str] = []  # the oids of the single-POST measurement
    samples: dict[str, list[int]] = {"POST round trip": [], "3 POSTs one after another": [], "3 POSTs at once": []}

    async with make_session() as session:
        client = KucoinRest(session, stack.sim_url, credentials)
        await client.server_time()  # warm the connection

        async def post(tag: str, leg_index: int) -> None:
            leg = legs[leg_index]
            size = Decimal(leg["order_param"])
            amount = {"funds": size} if leg["side"] == "buy" else {"size": size}
            oid = client_oid(tag, leg_index)
            sent[oid] = time.monotonic_ns()
            await client.order_test(leg["pair"], leg["side"], client_oid=oid, **amount)

        def record(measure: str, index: int, started_ns: int) -> None:
            if index >= 0:
                samples[measure].append(time.monotonic_ns() - started_ns)

        async def one(index: int) -> None:
            if index >= 0:
                single.append(client_oid(f"floor-post-{index}", 0))
            started = time.monotonic_ns()
            await post(f"floor-post-{index}", 0)
            record("POST round trip", index, started)

        async def sequential(index: int) -> None:
            started = time.monotonic_ns()
            for leg_index in range(3):
                await post(f"floor-seq-{index}", leg_index)
            record("3 POSTs one after another", index, started)

        async def concurrent(index: int) -> None:
            started = time.monotonic_ns()
            await asyncio.gather(*(post(f"floor-par-{index}", leg_index) for leg_index in range(3)))
            record("3 POSTs at once", index, started)

        await _paced(count, interval_ns, one)
        await _paced(max(count // 4, 50), interval_ns * 3, sequential)
        await _paced(max(count // 4, 50), interval_ns * 3, concurrent)
        async with session.get(stack.sim_url + "/_sim/orders") as response:
            log = await response.json()
    arrivals = {entry["client_oid"]: entry["arrival_ns"] for entry in log}
    samples["POST until seen"] = [arrivals[oid] - sent[oid] for oid in single]
    return samples


async def measure_floor(stack: Stack, signal: dict[str, Any], count: int, interval_ns: int) -> FloorResult:
    """Every part, one after another, with the same pacing; `signal` is a wire-format signal."""
    result = FloorResult()
    one_way, round_trip = await _frames(stack, signal, count, interval_ns)
    result.samples["frame one-way"] = one_way
    result.samples["frame round trip"] = round_trip
    result.samples["EVALSHA acquire"] = await _evalsha(stack, signal, count, interval_ns)
    hops = await paced_hops(signal, count, min(count, 200), interval_ns)
    result.samples["channel hop"] = hops.to_worker
    result.samples.update(await _posts(stack, signal, count, interval_ns))
    result.samples["msgpack unpack"] = _unpack_samples(signal, count)
    return result


def _unpack_samples(signal: dict[str, Any], count: int) -> list[int]:
    """One signal body decoded, timed alone (the intake's irreducible CPU cost)."""
    body = msgpack.packb(signal, use_bin_type=True)
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        msgpack.unpackb(body, raw=False)
        samples.append(time.perf_counter_ns() - started)
    return samples



async def _run(samples: int, rate: float, coins: int) -> FloorResult:
    from bench.latency import load_markets  # noqa: PLC0415 - bench.latency imports this module
    from bench.stack import open_stack  # noqa: PLC0415
    from tools.synthetic import synthetic_signals  # noqa: PLC0415

    async with open_stack(coins) as stack:
        markets = await load_markets(stack.sim_url)
        probe = synthetic_signals(markets, 1, now_ms=int(time.time() * 1000), prefix="floor")[0]
        return await measure_floor(stack, probe, samples, round(1e9 / rate))


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.floor [--samples 2000] [--rate 200] [--json OUT]`: each part alone, paced."""
    import argparse  # noqa: PLC0415 - the command line only
    import sys  # noqa: PLC0415

    from bench.common import host_info, markdown_table, write_json  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.floor",
                                     description="The floor: each part of the signal→wire path alone, paced.")
    parser.add_argument("--samples", type=int, default=2000, help="measured operations per part")
    parser.add_argument("--rate", type=float, default=200.0, help="operations per second (each wakes an idle peer)")
    parser.add_argument("--coins", type=int, default=24, help="synthetic coins added to the markets")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.rate <= 0:
        parser.error("--samples must be >= 1 and --rate > 0")
    result = uvloop.run(_run(args.samples, args.rate, args.coins))
    print(markdown_table(result.summaries()))
    print(f"\nfloor sum (p50 of {' + '.join(FLOOR_PARTS)}): {result.floor_sum_us:,.1f} µs")
    if args.json:
        write_json(args.json, {"host": host_info(), "parameters": vars(args),
                               "parts": [s.to_dict() for s in result.summaries()],
                               "sum_p50_us": round(result.floor_sum_us, 1)})
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
