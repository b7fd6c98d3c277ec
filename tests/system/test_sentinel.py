"""Redis Sentinel: every role reaches the registry and streams through a ``redis+sentinel://`` URL,
and a SIGKILLed primary fails admission closed, then over to the replica with nothing lost or run twice."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis

from shared.codec import encode_frame
from shared.report import Status, report_from_fields
from shared.store import keys
from shared.store.connect import connect
from shared.store.registry import Registry
from sim.server import RunningSimulator
from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor, wait_until
from tests.support.sentinel import SentinelDeployment
from tools.demo import run_demo
from tools.send import send_frames
from tools.synthetic import find_triangles, restamped
from worker.context import client_oid


def distinct_triangles(markets: dict) -> list[int]:
    """One orientation of each pair set (two orientations are one triangle to the registry)."""
    seen: dict[str, int] = {}
    for index, triangle in enumerate(find_triangles(markets)):
        seen.setdefault(",".join(sorted(triangle.pairs)), index)
    return list(seen.values())


async def test_ctl_and_the_store_work_through_the_sentinel_url(sentinel_deployment: SentinelDeployment) -> None:
    settings = e2e_settings(sentinel_deployment.url, "http://127.0.0.1:1", Path("/tmp"))
    client = connect(settings, "tool")
    await Registry(client, owner="t").set_config(slots=7)
    await client.aclose()
    primary = aioredis.Redis(port=sentinel_deployment.primary_port)
    assert await primary.hget(keys.CONFIG, "slots") == b"7"
    await primary.aclose()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.cli", "ctl", "--redis-url", sentinel_deployment.url, "config",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and "slots=7" in out.decode(), out


async def test_the_demo_runs_through_sentinel_and_its_reports_land_on_the_primary(
    sentinel_deployment: SentinelDeployment,
) -> None:
    assert await run_demo(redis_url=sentinel_deployment.url, signals=60, workers=1) == 0
    primary = aioredis.Redis(port=sentinel_deployment.primary_port)
    entries = [report_from_fields(fields) for _, fields in await primary.xrange(keys.REPORTS)]
    await primary.aclose()
    assert entries and len({report.correlation_id for report in entries}) == len(entries)
    assert any(report.status == Status.FILLED for report in entries)


async def test_primary_killed_mid_run_fails_closed_then_resumes_on_the_replica(
    sentinel_deployment: SentinelDeployment, simulator: RunningSimulator, workdir: Path
) -> None:
    settings = e2e_settings(sentinel_deployment.url, simulator.url, workdir, workers=2, redis_timeout_s=0.5,
                            redis_wait_replicas=1, redis_wait_timeout_ms=500, lease_ttl_ms=15_000,
                            http_timeout_s=30)
    setup = connect(settings, "tool")
    await Registry(setup, owner="test").set_config(slots=50, enforce_pair=False)
    markets = await markets_of(simulator)
    tri = distinct_triangles(markets)
    assert len(tri) >= 7
    frames = lambda specs: [encode_frame(restamped(fresh_signal(markets, t, cid))) for t, cid in specs]  # noqa: E731
    long_ones = [(tri[i], f"long-{i}") for i in range(3)]  # still running when the replica takes over
    short_ones = [(tri[3 + i], f"short-{i}") for i in range(2)]  # finish while no primary answers
    async with running_supervisor(settings) as supervisor:
        simulator.sim.update_knobs(latency_ms=12_000)
        await send_frames(settings.socket_path, frames(long_ones), progress=False)
        await supervisor.wait_frames(3, 10)
        await wait_until(lambda: len(simulator.sim.order_log.entries()) == 9, 10)  # their latency is set
        simulator.sim.update_knobs(latency_ms=600)
        await send_frames(settings.socket_path, frames(short_ones), progress=False)
        await supervisor.wait_frames(5, 10)
        assert supervisor.admission.admitted == 5, supervisor.admission.refusals
        await wait_until(lambda: len(simulator.sim.order_log.entries()) == 15, 10)

        killed_ms = time.time() * 1000
        sentinel_deployment.kill_primary()
        simulator.sim.update_knobs(latency_ms=0)
        during = [(tri[5], "during-0"), (tri[6], "during-1"), long_ones[0]]
        await send_frames(settings.socket_path, frames(during), progress=False)
        await supervisor.wait_frames(8, 10)
        assert supervisor.admission.refusals == Counter(registry_unavailable=3)  # fail closed, no primary

        await asyncio.to_thread(sentinel_deployment.wait_failover)
        failed_over_ms = time.time() * 1000
        # With WAIT 1 a grant needs a replica: none until the killed primary is back, following the new one.
        await send_frames(settings.socket_path, frames([(tri[6], "no-replica")]), progress=False)
        await supervisor.wait_frames(9, 10)
        assert supervisor.admission.refusals["registry_unavailable"] == 4
        await asyncio.to_thread(sentinel_deployment.restart_old_primary_as_replica)
        # resumes by itself: the next signals go to the promoted replica, nobody restarted
        attempt = 0
        while supervisor.admission.admitted < 6:
            assert time.time() * 1000 - failed_over_ms < 15_000, supervisor.admission.refusals
            await send_frames(settings.socket_path, frames([(tri[6], f"after-{attempt}")]), progress=False)
            await supervisor.wait_frames(10 + attempt, 10)
            attempt += 1
            await asyncio.sleep(0.1)  # paced retries, as an engine re-sending would
        # the grants made before the kill were on the replica (WAIT 1): a re-send is a duplicate
        await send_frames(settings.socket_path, frames([long_ones[1]]), progress=False)
        await supervisor.wait_frames(10 + attempt, 10)
        assert supervisor.admission.refusals["duplicate"] == 1, supervisor.admission.refusals
        await supervisor.wait_idle(30)

    client = connect(settings, "tool")
    entries = [report_from_fields(fields) for _, fields in await client.xrange(keys.REPORTS)]
    by_cid = Counter(report.correlation_id for report in entries)
    admitted = {cid for _, cid in long_ones + short_ones} | {f"after-{attempt - 1}"}
    assert set(by_cid) == admitted and set(by_cid.values()) == {1}, by_cid  # one report each
    assert all(report.status == Status.FILLED for report in entries)
    for report in entries:
        if report.correlation_id.startswith("short-"):  # finished while no primary answered: spooled, replayed
            assert killed_ms < report.ts_ms < failed_over_ms
    placed = Counter(entry.client_oid for entry in simulator.sim.order_log.entries())
    assert placed == Counter(client_oid(cid, leg) for cid in admitted for leg in range(3))  # nothing twice
    await wait_until_no_leases(client)
    await client.aclose()
    await setup.aclose()


async def wait_until_no_leases(client: aioredis.Redis, timeout_s: float = 15.0) -> None:
    """Leases whose release failed in the outage expire by TTL; the sweep (any acquire) removes them."""
    registry = Registry(client, owner="test")
    async with asyncio.timeout(timeout_s):
        while await client.hlen(keys.LEASE_DATA):
            await registry.sweep()
            await asyncio.sleep(0.1)
