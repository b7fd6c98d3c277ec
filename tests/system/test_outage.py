"""A Redis outage in the middle of a run: the whole service against a redis-server killed and restarted.

While Redis is down nothing is admitted (`registry_unavailable`: isolation cannot be
guaranteed), every process stays up, executions already running finish and their reports
spool in the workers; once Redis is back the spools drain in order by themselves, the
supervisor's loops pick up again, and new signals are admitted. Nothing is lost and nothing is
duplicated, counted by correlation id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from shared.codec import encode_frame
from shared.store import keys
from shared.store.registry import Registry
from sim.server import RunningSimulator
from supervisor.app import Supervisor
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tools.embedded_redis import EmbeddedRedis
from tools.send import send_frames
from tools.synthetic import restamped

LEASE_TTL_MS = 1500


async def _send(supervisor: Supervisor, signals: list[dict]) -> None:
    before = supervisor.frames
    await send_frames(supervisor.settings.socket_path, [encode_frame(restamped(s)) for s in signals], progress=False)
    await supervisor.wait_frames(before + len(signals), 10)


async def _until(condition: Callable[[], Awaitable[object]], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(0.01)


async def test_redis_outage_fails_closed_spools_and_recovers_by_itself(
    durable_redis: EmbeddedRedis, simulator: RunningSimulator
) -> None:
    url = durable_redis.url
    client = aioredis.Redis.from_url(url)
    registry = Registry(client, owner="test")
    await registry.set_config(slots=50, enforce_pair=False)
    markets = await markets_of(simulator)
    triangles = [0, 2, 3, 4, 5, 6]  # distinct triangle ids
    workdir = Path(tempfile.mkdtemp(prefix="tri-out-"))
    settings = e2e_settings(url, simulator.url, workdir, lease_ttl_ms=LEASE_TTL_MS)
    try:
        async with running_supervisor(settings) as supervisor:
            status_key = keys.STATUS_PREFIX + supervisor.name
            loops = list(supervisor._background)
            # wave A is at the exchange, answers delayed, when Redis dies
            simulator.sim.update_knobs(latency_ms=400)
            await _send(supervisor, [fresh_signal(markets, t, f"a-{t}") for t in triangles])
            assert supervisor.admission.admitted == len(triangles)
            async with asyncio.timeout(10):
                while len(simulator.sim.order_log) < 3 * len(triangles):
                    await asyncio.sleep(0.005)
            durable_redis.kill()

            # down: fail closed, stay up, finish what runs and spool its reports
            await _send(supervisor, [fresh_signal(markets, t, f"b-{t}") for t in triangles])
            assert supervisor.admission.refusals["registry_unavailable"] == len(triangles)
            await supervisor.wait_idle(10)
            spools = sorted(Path(settings.spool_dir).glob("worker-*.spool"))
            assert sum(len(p.read_text().splitlines()) for p in spools) == len(triangles)
            await _until_sync(lambda: _scraped(supervisor, "trident_redis_reachable") == 0, 5)
            assert _scraped(supervisor, "trident_spooled_reports") == len(triangles)  # the alerts' inputs
            assert supervisor.pool.alive == settings.workers and supervisor.pool.respawns == 0
            assert not any(task.done() for task in loops)  # status, renew, sweep, config, replayer

            # back: spools drain in order, loops resume, admission works again
            simulator.sim.update_knobs(latency_ms=0)
            durable_redis.start()
            await _until(lambda: _has_reports(url, "a-", len(triangles)), 10)
            assert not any(Path(settings.spool_dir).glob("worker-*.spool"))
            await _until_sync(lambda: _scraped(supervisor, "trident_redis_reachable") == 1, 5)
            assert _scraped(supervisor, "trident_spooled_reports") == 0
            await client.delete(status_key)  # the AOF kept it: it must be written anew
            await _until(lambda: client.exists(status_key), 5)  # the status loop writes again
            await registry.set_config(paused=True)
            async with asyncio.timeout(5):  # the config loop reads again
                while not supervisor.admission.paused:
                    await asyncio.sleep(0.01)
            await registry.set_config(paused=False)
            async with asyncio.timeout(5):
                while supervisor.admission.paused:
                    await asyncio.sleep(0.01)
            # wave A's releases failed while Redis was down: its leases expire by TTL (swept)
            await _until(lambda: _no_leases(registry), 3 * LEASE_TTL_MS / 1000)
            await _send(supervisor, [fresh_signal(markets, t, f"c-{t}") for t in triangles])
            assert supervisor.admission.admitted == 2 * len(triangles)
            await supervisor.wait_idle(10)
            assert not any(task.done() for task in loops)
    finally:
        await client.aclose()

    reports = await stream_reports(url)
    ids = [r.correlation_id for r in reports]
    assert sorted(ids) == sorted([f"a-{t}" for t in triangles] + [f"c-{t}" for t in triangles])  # 0 lost, 0 dup
    assert all(r.status == "filled" for r in reports)
    by_worker: dict[str, list[int]] = defaultdict(list)
    for report in reports:
        by_worker[report.worker].append(report.ts_ms)
    assert all(times == sorted(times) for times in by_worker.values())  # each worker's order kept


def _scraped(supervisor: Supervisor, name: str) -> float:
    """The sum of one metric's samples in the supervisor's Prometheus exposition."""
    return sum(sample.value for family in text_string_to_metric_families(supervisor.metrics.render().decode())
               for sample in family.samples if sample.name == name)


async def _until_sync(condition: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


async def _has_reports(url: str, prefix: str, count: int) -> bool:
    return sum(r.correlation_id.startswith(prefix) for r in await stream_reports(url)) == count


async def _no_leases(registry: Registry) -> bool:
    return await registry.leases() == []


async def test_a_hung_redis_fails_admission_closed_instead_of_stalling_it(
    durable_redis: EmbeddedRedis, simulator: RunningSimulator
) -> None:
    url = durable_redis.url
    client = aioredis.Redis.from_url(url)
    pid = int((await client.info("server"))["process_id"])
    await client.aclose()
    markets = await markets_of(simulator)
    settings = e2e_settings(url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-hung-")), redis_timeout_s=0.3)
    async with running_supervisor(settings) as supervisor:
        os.kill(pid, signal.SIGSTOP)  # alive, accepting, never answering
        try:
            await _send(supervisor, [fresh_signal(markets, 0, "hung-1")])
            assert supervisor.admission.refusals == {"registry_unavailable": 1}
        finally:
            os.kill(pid, signal.SIGCONT)
        await _send(supervisor, [fresh_signal(markets, 2, "hung-2")])  # another triangle: see below
        await supervisor.wait_idle(10)
    # the acquire that timed out ran once Redis woke up: its lease, owned by no execution, blocks
    # triangle 0 until its TTL, which errs towards isolation
    assert [(r.correlation_id, r.status) for r in await stream_reports(url)] == [("hung-2", "filled")]
