"""Hostile clients against a real `trident run`: 100 MB of garbage, a 4 GB length prefix, a thousand
idle connections. A well-behaved client on its own connection keeps its latency (signal → its
report in the stream, relative to its own baseline: no absolute timings) and the supervisor's
memory stays bounded.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis

from shared.codec import HEADER, encode_frame
from shared.store import keys
from shared.store.registry import Registry
from sim.server import RunningSimulator
from tests.support.e2e import fresh_signal, markets_of
from tests.support.processes import TridentProcess, trident_env
from tools.synthetic import restamped

GARBAGE_BYTES = 100 << 20
GARBAGE_FRAME = 64 << 10  # under max_frame_bytes: the server must read and decode every one
IDLE_CONNECTIONS = 1000
LATENCY_RATIO = 10  # generous: the attacker shares two cores with the supervisor, worker and simulator
RSS_GROWTH_MB = 48
TRIANGLES = (0, 2, 3, 4, 5, 6, 7)  # distinct triangle ids, so back-to-back signals never wait on a lease


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class GoodClient:
    """One connection kept open throughout; a round trip is a signal until its report is in the stream."""

    def __init__(self, socket_path: str, redis: aioredis.Redis, markets: dict) -> None:
        self.socket_path = socket_path
        self.redis = redis
        self.markets = markets
        self.sent = 0
        self.writer: asyncio.StreamWriter | None = None

    async def round_trip(self) -> float:
        if self.writer is None:
            _, self.writer = await asyncio.open_unix_connection(self.socket_path)
        cid = f"good-{self.sent}"
        signal = restamped(fresh_signal(self.markets, TRIANGLES[self.sent % len(TRIANGLES)], cid))
        self.sent += 1
        last = await self.redis.xrevrange(keys.REPORTS, count=1)
        last_id = last[0][0] if last else b"0-0"
        started = time.perf_counter()
        self.writer.write(encode_frame(signal))
        await self.writer.drain()
        while True:
            answer = await self.redis.xread({keys.REPORTS: last_id}, block=10_000)
            assert answer, f"no report for {cid} within 10 s"
            for entry_id, fields in answer[0][1]:
                last_id = entry_id
                if fields[b"correlation_id"] == cid.encode():
                    assert fields[b"status"] == b"filled", fields
                    return time.perf_counter() - started

    async def median(self, count: int) -> float:
        return statistics.median([await self.round_trip() for _ in range(count)])


async def _started(redis_url: str, redis_client: aioredis.Redis, simulator: RunningSimulator,
                   trident_process: Callable[..., TridentProcess]) -> tuple[TridentProcess, GoodClient]:
    await Registry(redis_client, owner="test").set_config(slots=50, enforce_pair=False)
    workdir = Path(tempfile.mkdtemp(prefix="tri-hs-"))
    process = trident_process(trident_env(redis_url, simulator.url, workdir, log_level="error", metrics_port=0))
    await process.wait_ready()
    client = GoodClient(str(workdir / "signals.sock"), redis_client, await markets_of(simulator))
    await client.median(5)  # warm: connections, caches, the first window of the rate budget
    return process, client


def _flood(socket_path: str, total: int, frame: int) -> None:
    """Child process: `total` bytes of random frames (valid lengths, junk bodies), as fast as read."""
    rng = random.Random(7)
    junk = [HEADER.pack(frame - 4) + rng.randbytes(frame - 4) for _ in range(16)]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(socket_path)
        for index in range(total // frame):
            sock.sendall(junk[index % len(junk)])


async def test_100_mb_of_garbage_costs_other_clients_nothing(
    redis_url: str, redis_client: aioredis.Redis, simulator: RunningSimulator,
    trident_process: Callable[..., TridentProcess],
) -> None:
    process, client = await _started(redis_url, redis_client, simulator, trident_process)
    baseline = await client.median(9)
    rss_before = _rss_mb(process.pid)
    flooder = multiprocessing.get_context("fork").Process(
        target=_flood, args=(client.socket_path, GARBAGE_BYTES, GARBAGE_FRAME), daemon=True)
    flooder.start()
    during: list[float] = []
    while flooder.is_alive() or len(during) < 9:
        during.append(await client.round_trip())
    flooder.join()
    rss_after = _rss_mb(process.pid)
    assert flooder.exitcode == 0  # every byte was read: the server never gave up on its own reads
    assert statistics.median(during) <= LATENCY_RATIO * baseline, (baseline, during)
    assert rss_after - rss_before < RSS_GROWTH_MB, (rss_before, rss_after)


async def test_a_4_gb_length_prefix_is_refused_without_allocating(
    redis_url: str, redis_client: aioredis.Redis, simulator: RunningSimulator,
    trident_process: Callable[..., TridentProcess],
) -> None:
    process, client = await _started(redis_url, redis_client, simulator, trident_process)
    baseline = await client.median(9)
    rss_before = _rss_mb(process.pid)
    reader, writer = await asyncio.open_unix_connection(client.socket_path)
    writer.write(HEADER.pack(2**32 - 1) + os.urandom(1 << 20))
    try:
        answer = await asyncio.wait_for(reader.read(), 10)
    except (ConnectionResetError, BrokenPipeError):  # closed while our megabyte was on its way: the same refusal
        answer = b""
    assert answer == b""  # closed by the server
    writer.close()
    after = await client.median(9)
    assert after <= LATENCY_RATIO * baseline, (baseline, after)
    assert _rss_mb(process.pid) - rss_before < RSS_GROWTH_MB


async def test_a_thousand_idle_connections_cost_other_clients_nothing(
    redis_url: str, redis_client: aioredis.Redis, simulator: RunningSimulator,
    trident_process: Callable[..., TridentProcess],
) -> None:
    process, client = await _started(redis_url, redis_client, simulator, trident_process)
    baseline = await client.median(9)
    rss_before = _rss_mb(process.pid)

    def open_idle() -> list[socket.socket]:
        idle = []
        for _ in range(IDLE_CONNECTIONS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(client.socket_path)
            idle.append(sock)
        return idle

    idle = await asyncio.to_thread(open_idle)
    try:
        during = await client.median(9)
        rss_during = _rss_mb(process.pid)
        assert process.proc.poll() is None
    finally:
        for sock in idle:
            sock.close()
    assert during <= LATENCY_RATIO * baseline, (baseline, during)
    assert rss_during - rss_before < RSS_GROWTH_MB, (rss_before, rss_during)
