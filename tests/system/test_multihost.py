"""Two supervisors on one Redis, as on two hosts: each its own process, socket and workers.

One runs in this process (so the test can look inside it), the other is a separate `trident run`
process, known to the test only through its socket and Redis. Slots, isolation claims and
capital caps must hold across both, because they live in Redis, not in either supervisor.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal as signals
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from shared.codec import encode_frame
from shared.store import keys
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from sim.server import RunningSimulator
from supervisor.app import Supervisor
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tools.send import send_frames
from tools.synthetic import restamped

CONFIG = "trident:{reg}:config"


@dataclass
class Remote:
    """The other supervisor: a `trident run` process."""

    process: asyncio.subprocess.Process
    socket_path: str
    name: str = ""


@pytest.fixture
async def local(redis_url: str, simulator: RunningSimulator, workdir: Path) -> AsyncIterator[Supervisor]:
    settings = e2e_settings(redis_url, simulator.url, workdir / "a", workers=1, metrics_port=0)
    async with running_supervisor(settings) as supervisor:
        yield supervisor


async def status_of(client: aioredis.Redis, name: str) -> dict[str, str]:
    raw = await client.hgetall(keys.STATUS_PREFIX + name)
    return {k.decode(): v.decode() for k, v in raw.items()}


async def wait_for_status(client: aioredis.Redis, name: str, field: str, value: str, timeout_s: float = 5.0) -> None:
    """The remote supervisor only speaks through its status hash, rewritten every second."""
    async with asyncio.timeout(timeout_s):
        while (await status_of(client, name)).get(field) != value:
            await asyncio.sleep(0.05)


@pytest.fixture
async def remote(redis_url: str, simulator: RunningSimulator, workdir: Path, local: Supervisor,
                 redis_client: aioredis.Redis) -> AsyncIterator[Remote]:
    socket_path = str(workdir / "b.sock")
    env = {**os.environ, "TRIDENT_API_KEY": DEMO_API_KEY, "TRIDENT_API_SECRET": DEMO_API_SECRET,
           "TRIDENT_API_PASSPHRASE": DEMO_API_PASSPHRASE}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.cli", "run", "--redis-url", redis_url, "--socket", socket_path,
        "--workers", "1", "--exchange-url", simulator.url, "--spool-dir", str(workdir / "b-spool"),
        "--metrics-port", "0", "--log-level", "warning", env=env,
    )
    remote = Remote(process, socket_path, f"{local.host}:{process.pid}")
    await wait_for_status(redis_client, remote.name, "workers_alive", "1", timeout_s=30)
    yield remote
    if process.returncode is None:
        process.send_signal(signals.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        finally:
            if process.returncode is None:  # never leave a supervisor behind, even when a test fails
                process.kill()
                await process.wait()


async def send_to(socket_path: str, markets: dict, *signals_: tuple[int, str], rate: float | None = None) -> None:
    """Signals stamped as they leave (a book older than its triangle's last trade is stale)."""
    frames = (encode_frame(restamped(fresh_signal(markets, index, cid))) for index, cid in signals_)
    await send_frames(socket_path, frames, progress=False, rate=rate)


def frames_handled(status: dict[str, str]) -> int:
    return int(status.get("admitted", "0")) + sum(int(v) for k, v in status.items() if k.startswith("refused:"))


async def test_slots_isolation_and_caps_bind_across_supervisors(
    local: Supervisor, remote: Remote, simulator: RunningSimulator, redis_client: aioredis.Redis
) -> None:
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=400)  # refusals happen on arrival, within this window
    # one slot in the whole fleet: the local supervisor takes it, the remote one has none left
    await redis_client.hset(CONFIG, mapping={"slots": "1"})
    await send_to(local.settings.socket_path, markets, (0, "a-1"))
    await local.wait_frames(1, 5)
    assert local.admission.admitted == 1
    await send_to(remote.socket_path, markets, (8, "b-1"))
    await wait_for_status(redis_client, remote.name, "refused:no_slot", "1")
    await local.wait_idle(5)

    # slots to spare, but a-2 holds triangle 0 (and BTC-USDT) and 100 of a 150 USDT cap
    await redis_client.hset(CONFIG, mapping={"slots": "4", "cap:USDT": "150"})
    await send_to(local.settings.socket_path, markets, (0, "a-2"))
    await local.wait_frames(2, 5)
    await send_to(remote.socket_path, markets, (1, "b-same-triangle"), (2, "b-shares-btc-usdt"), (8, "b-over-cap"))
    for reason in ("triangle_busy", "pair_busy", "capital_cap"):
        await wait_for_status(redis_client, remote.name, f"refused:{reason}", "1")
    await redis_client.hdel(CONFIG, "cap:USDT")
    await send_to(remote.socket_path, markets, (8, "b-fits"))
    await wait_for_status(redis_client, remote.name, "admitted", "1")
    await local.wait_idle(5)
    await wait_for_status(redis_client, remote.name, "outcome:filled", "1")
    statuses = {r.correlation_id: r.status for r in await stream_reports(local.settings.redis_url)}
    assert statuses == {"a-1": "filled", "a-2": "filled", "b-fits": "filled"}


async def test_two_supervisors_under_load_never_hold_conflicting_leases(
    local: Supervisor, remote: Remote, simulator: RunningSimulator, redis_client: aioredis.Redis
) -> None:
    markets = await markets_of(simulator)
    slots = 3
    await redis_client.hset(CONFIG, mapping={"slots": str(slots), "enforce_pair": "0"})
    simulator.sim.update_knobs(latency_ms=40, jitter_ms=80)
    triangles = [0, 2, 3, 4, 5, 6, 8, 1, 7, 9]  # every triangle, some in both directions
    violations: list[str] = []
    snapshots = 0
    both_at_once = 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal snapshots, both_at_once
        while not done.is_set():
            async with redis_client.pipeline(transaction=True) as pipe:  # one consistent snapshot
                pipe.hgetall(keys.LEASE_DATA)
                pipe.hget(keys.CAPITAL, "USDT")
                records, capital = await pipe.execute()
            leases = [json.loads(record) for record in records.values()]
            triangles_held = [lease["triangle"] for lease in leases]
            in_use = sum((Decimal(lease["notional"]) for lease in leases), Decimal(0))
            if len(leases) > slots:
                violations.append(f"{len(leases)} leases > {slots} slots")
            if len(set(triangles_held)) != len(triangles_held):
                violations.append(f"one triangle held twice: {sorted(triangles_held)}")
            if Decimal((capital or b"0").decode()) != in_use:
                violations.append(f"capital {capital!r} != leases' notional {in_use}")
            both_at_once += len({lease["owner"] for lease in leases}) == 2
            snapshots += 1
            await asyncio.sleep(0)

    sampler = asyncio.create_task(sample())
    await asyncio.gather(  # 40 signals each over ~0.5 s, executions of 40-120 ms: they contend
        send_to(local.settings.socket_path, markets, *((t, f"a-{i}-{t}") for i in range(4) for t in triangles),
                rate=80),
        send_to(remote.socket_path, markets, *((t, f"b-{i}-{t}") for i in range(4) for t in reversed(triangles)),
                rate=80),
    )
    await local.wait_frames(40, 10)
    await local.wait_idle(10)
    async with asyncio.timeout(10):  # the remote's view arrives through its status hash
        while not (frames_handled(status := await status_of(redis_client, remote.name)) == 40
                   and status["in_flight"] == "0" and not await redis_client.hlen(keys.LEASE_DATA)):
            await asyncio.sleep(0.05)
    done.set()
    await sampler
    assert violations == []
    assert snapshots > 50 and both_at_once > 0
    remote_status = await status_of(redis_client, remote.name)
    admitted = local.admission.admitted + int(remote_status.get("admitted", "0"))
    reports = await stream_reports(local.settings.redis_url)
    assert admitted == len(reports) > slots
    assert {r.status for r in reports} == {"filled"}
    assert local.admission.refusals["no_slot"] + int(remote_status.get("refused:no_slot", "0")) > 0


async def test_sigterm_stops_a_supervisor_within_five_seconds_and_it_leaves_the_fleet(
    remote: Remote, redis_client: aioredis.Redis
) -> None:
    assert remote.name.encode() in await redis_client.zrange(keys.FLEET, 0, -1)
    started = time.monotonic()
    remote.process.send_signal(signals.SIGTERM)
    await asyncio.wait_for(remote.process.wait(), 5)
    assert remote.process.returncode == 0 and time.monotonic() - started < 5
    assert await status_of(redis_client, remote.name) == {}
    assert remote.name.encode() not in await redis_client.zrange(keys.FLEET, 0, -1)
    assert not [k async for k in redis_client.scan_iter(match=f"trident:health:{remote.name}:*")]
