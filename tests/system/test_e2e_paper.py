"""End to end: simulator + supervisor + 2 real worker processes + socket clients + real Redis."""

from __future__ import annotations

import asyncio
import os
import signal as signals
from collections import Counter
from pathlib import Path

from shared.codec import HEADER, encode_frame, encode_json_line
from shared.store.registry import Registry
from sim.server import RunningSimulator
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
    wait_until,
)
from tools.send import send_frames
from tools.synthetic import restamped
from worker.context import client_oid


async def _set_config(redis_url: str, **fields: object) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        await Registry(client, owner="test").set_config(**fields)
    finally:
        await client.aclose()


async def test_reports_match_the_exchange_order_log_one_for_one(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    await _set_config(redis_url, slots=50, enforce_pair=False)
    markets = await markets_of(simulator)
    valid = [fresh_signal(markets, i % 6, f"ok-{i:03d}") for i in range(40)]
    bad = [
        {**valid[0], "correlation_id": "bad-chain", "primary_quote": "BTC"},
        {**valid[1], "correlation_id": "bad-live", "live": True},
        HEADER.pack(5) + b"\xc1\xc1\xc1\xc1\xc1",  # 0xc1 is never valid msgpack
    ]
    settings = e2e_settings(redis_url, simulator.url, workdir)
    async with running_supervisor(settings) as supervisor:
        # two clients at once, the second speaking NDJSON; frames are stamped as they are sent
        frames_a = (encode_frame(restamped(s)) if isinstance(s, dict) else s for s in [*valid[:20], bad[0], bad[2]])
        json_lines = (encode_json_line(restamped(s)) for s in [*valid[20:], bad[1]])
        sent = await asyncio.gather(
            send_frames(settings.socket_path, frames_a, progress=False),
            send_frames(settings.socket_path, json_lines, progress=False),
        )
        assert sent == [22, 21]
        await supervisor.wait_frames(43, 20)
        await supervisor.wait_idle(20)
        refusals = Counter(supervisor.admission.refusals)
        admitted = supervisor.admission.admitted

    reports = {r.correlation_id: r for r in await stream_reports(redis_url)}
    assert refusals["broken_chain"] == 1
    assert refusals["live_in_paper"] == 1
    assert refusals["bad_msgpack"] == 1
    # every valid signal was either executed or refused for isolation or a stale book (a
    # same-triangle execution that finished after this book was sampled)
    assert admitted == len(reports) == 40 - refusals["triangle_busy"] - refusals["stale"]
    # at least the first signal of each triangle (both directions of a triangle are one triangle)
    assert admitted >= len({",".join(sorted(s["triangle_key"])) for s in valid}) >= 3
    assert all(r.status == "filled" for r in reports.values()), {r.error for r in reports.values()}
    # the exchange saw exactly three order tests per report, with our deterministic client ids
    log = simulator.sim.order_log.entries()
    assert {e.kind for e in log} == {"test"}  # a paper service never places an order
    seen = Counter(e.client_oid for e in log)
    expected = Counter(client_oid(cid, leg) for cid in reports for leg in range(3))
    assert seen == expected
    for cid, report in reports.items():
        legs = {e.client_oid: e for e in log if e.client_oid and e.client_oid.startswith(client_oid(cid, 0)[:-1])}
        assert [legs[client_oid(cid, i)].symbol for i in range(3)] == list(report.triangle)
        assert report.profit == report.returned - report.spent
        assert len(report.fills) == 3


async def test_isolation_and_stale_book_refusals(redis_url: str, simulator: RunningSimulator, workdir: Path) -> None:
    await _set_config(redis_url, slots=10, enforce_pair=False)
    markets = await markets_of(simulator)
    first = fresh_signal(markets, 0, "iso-1")
    twin = fresh_signal(markets, 0, "iso-2")  # same triangle while iso-1 is in flight
    simulator.sim.update_knobs(latency_ms=300)
    settings = e2e_settings(redis_url, simulator.url, workdir)
    async with running_supervisor(settings) as supervisor:
        await send_frames(settings.socket_path, [encode_frame(first), encode_frame(twin)], progress=False)
        await supervisor.wait_frames(2, 10)
        assert supervisor.admission.refusals["triangle_busy"] == 1
        await supervisor.wait_idle(10)
        simulator.sim.update_knobs(latency_ms=0)
        # a book sampled before the triangle's last trade is stale; a fresh one is admitted
        old = {**fresh_signal(markets, 0, "iso-3"), "book_ts_ms": first["book_ts_ms"] - 1}
        new = restamped(fresh_signal(markets, 0, "iso-4"))
        await send_frames(settings.socket_path, [encode_frame(old), encode_frame(new)], progress=False)
        await supervisor.wait_frames(4, 10)
        await supervisor.wait_idle(10)
        assert supervisor.admission.refusals["stale"] == 1
    statuses = {r.correlation_id: r.status for r in await stream_reports(redis_url)}
    assert statuses == {"iso-1": "filled", "iso-4": "filled"}


async def test_cancel_between_steps_ends_aborted(redis_url: str, simulator: RunningSimulator, workdir: Path) -> None:
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=400)
    settings = e2e_settings(redis_url, simulator.url, workdir)
    async with running_supervisor(settings) as supervisor:
        await send_frames(settings.socket_path, [encode_frame(fresh_signal(markets, 1, "cx-1"))], progress=False)
        await supervisor.wait_frames(1, 10)
        assert supervisor.cancel("cx-1")
        await supervisor.wait_idle(10)
    (report,) = await stream_reports(redis_url)
    assert (report.correlation_id, report.status, report.error) == ("cx-1", "aborted", "cancelled")


async def test_killed_worker_reports_lost_releases_and_is_replaced(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(hang={"next_n": 3, "path": "/api/v1/hf/orders/test"})
    settings = e2e_settings(redis_url, simulator.url, workdir)
    async with running_supervisor(settings) as supervisor:
        await send_frames(settings.socket_path, [encode_frame(fresh_signal(markets, 2, "kill-1"))], progress=False)
        await supervisor.wait_frames(1, 10)
        # kill only once its three order tests are at the exchange, hanging
        await wait_until(lambda: len(simulator.sim.order_log) == 3)
        (victim,) = [w for w in supervisor.pool.workers if "kill-1" in w.in_flight]
        os.kill(victim.pid, signals.SIGKILL)
        await supervisor.wait_idle(15)
        assert await supervisor.registry.leases() == []
        await supervisor.pool.wait_alive(2, 30)
        assert supervisor.pool.respawns == 1
        await send_frames(settings.socket_path, [encode_frame(fresh_signal(markets, 2, "kill-2"))], progress=False)
        await supervisor.wait_frames(2, 10)
        await supervisor.wait_idle(10)
    statuses = {r.correlation_id: (r.status, r.error) for r in await stream_reports(redis_url)}
    assert statuses["kill-1"][0] == "lost" and "exited" in statuses["kill-1"][1]
    assert "no order was placed" in statuses["kill-1"][1]  # paper: order tests only, no journal
    assert statuses["kill-2"] == ("filled", "")


async def test_a_signal_marked_cancelled_is_refused_and_never_reaches_the_exchange(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    markets = await markets_of(simulator)
    cancelled = {**fresh_signal(markets, 0, "gone-1"), "_cancelled": True}
    kept = fresh_signal(markets, 1, "kept-1")
    settings = e2e_settings(redis_url, simulator.url, workdir)
    async with running_supervisor(settings) as supervisor:
        await send_frames(settings.socket_path, [encode_frame(cancelled), encode_frame(kept)], progress=False)
        await supervisor.wait_frames(2, 10)
        await supervisor.wait_idle(10)
        assert supervisor.admission.refusals["cancelled"] == 1
    assert [r.correlation_id for r in await stream_reports(redis_url)] == ["kept-1"]
    assert {e.client_oid for e in simulator.sim.order_log.entries()} == {client_oid("kept-1", leg) for leg in range(3)}
