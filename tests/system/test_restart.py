"""A supervisor killed (SIGKILL) mid-execution and a new one started: `trident run` as real processes.

The dead supervisor's lease outlives it by one TTL at most, so while its orphaned worker
finishes, the new supervisor refuses the same execution (`duplicate`) and its triangle
(`triangle_busy`); once the lease has expired and been swept it admits that triangle again.
Nothing runs twice: the simulator's order log holds every clientOid once.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis

from shared.codec import encode_frame
from shared.store import keys
from shared.store.registry import Registry
from sim.server import RunningSimulator
from tests.support.e2e import fresh_signal, markets_of, stream_reports
from tests.support.processes import TridentProcess, trident_env
from tools.send import send_frames
from tools.synthetic import restamped
from worker.context import client_oid

LEASE_TTL_MS = 4000  # longer than the slowest execution here (one order-test round trip, 1 s timeout)
HTTP_TIMEOUT_S = 1.0


async def _refusals(client: aioredis.Redis, process: TridentProcess) -> Counter[str]:
    status = await client.hgetall(keys.STATUS_PREFIX + process.name)
    return Counter({k.decode()[8:]: int(v) for k, v in status.items() if k.startswith(b"refused:")})


async def test_a_killed_supervisor_never_lets_an_execution_run_twice_and_its_successor_admits_again(
    redis_url: str, redis_client: aioredis.Redis, simulator: RunningSimulator,
    trident_process: Callable[..., TridentProcess],
) -> None:
    markets = await markets_of(simulator)
    workdir = Path(tempfile.mkdtemp(prefix="tri-rs-"))
    env = trident_env(redis_url, simulator.url, workdir, lease_ttl_ms=LEASE_TTL_MS, http_timeout_s=HTTP_TIMEOUT_S)
    socket_path = env["TRIDENT_SOCKET_PATH"]
    first = trident_process(env)
    await first.wait_ready()

    simulator.sim.update_knobs(hang={"next_n": 3, "path": "/api/v1/hf/orders/test"})
    await send_frames(socket_path, [encode_frame(fresh_signal(markets, 2, "rs-1"))], progress=False)
    async with asyncio.timeout(10):
        while len(simulator.sim.order_log) < 3:  # its three order tests hang at the exchange
            await asyncio.sleep(0.01)
    (lease,) = await Registry(redis_client, owner="test").leases()
    assert (lease.lease_id, lease.owner) == ("rs-1", first.name)
    first.kill()

    second = trident_process(env)  # replaces the dead one's stale socket file
    await second.wait_ready()
    await send_frames(socket_path, [encode_frame(restamped(fresh_signal(markets, 2, "rs-1"))),
                                    encode_frame(restamped(fresh_signal(markets, 2, "rs-2")))], progress=False)
    async with asyncio.timeout(10):  # its status hash is written every second
        while sum((await _refusals(redis_client, second)).values()) < 2:
            await asyncio.sleep(0.05)
    assert await _refusals(redis_client, second) == Counter(duplicate=1, triangle_busy=1)

    # the dead owner's lease expires by TTL and is swept; the triangle is admitted again
    async with asyncio.timeout(3 * LEASE_TTL_MS / 1000):
        while await Registry(redis_client, owner="test").leases():
            await asyncio.sleep(0.05)
    await send_frames(socket_path, [encode_frame(restamped(fresh_signal(markets, 2, "rs-3")))], progress=False)
    async with asyncio.timeout(10):
        while {r.correlation_id for r in await stream_reports(redis_url)} != {"rs-1", "rs-3"}:
            await asyncio.sleep(0.05)

    reports = {r.correlation_id: r for r in await stream_reports(redis_url)}
    # the orphaned worker finished rs-1 on its own (its calls timed out) and reported it once
    assert reports["rs-1"].status == "failed" and "TimeoutError" in reports["rs-1"].error
    assert (reports["rs-3"].status, reports["rs-3"].error) == ("filled", "")
    sent = Counter(e.client_oid for e in simulator.sim.order_log.entries())
    assert sent == Counter({client_oid(cid, leg): 1 for cid in ("rs-1", "rs-3") for leg in range(3)})
    assert len(await stream_reports(redis_url)) == 2
    assert await Registry(redis_client, owner="test").leases() == []
