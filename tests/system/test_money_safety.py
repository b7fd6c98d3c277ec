"""Admission holes an audit found (issue 11), each driven through a real supervisor, worker
processes, Redis and (for live mode) the simulator, judged by the simulator's order log and
balances and by the report stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis
from structlog.testing import capture_logs

from shared.codec import encode_frame
from shared.report import ExecutionReport, Status
from shared.store import keys
from shared.store.registry import Registry
from sim.server import RunningSimulator
from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor, stream_reports, wait_until
from tests.support.reconcile import account_deltas, assert_reconciles
from tools.embedded_redis import EmbeddedRedis
from tools.send import send_frames
from tools.synthetic import restamped
from worker.context import client_oid


async def _send(path: str, *signals: dict) -> None:
    await send_frames(path, [encode_frame(signal) for signal in signals], progress=False)


async def test_a_volume_that_is_not_what_leg_0_spends_cannot_pass_the_live_cap(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    """The audit's bypass: cap 150 USDT, starting_volume 100, leg 0 spending 1000.999613 USDT."""
    redis = aioredis.Redis.from_url(redis_url)
    await Registry(redis, owner="test").set_config(slots=10, enforce_pair=False, caps={"USDT": Decimal("150")})
    sim = simulator.sim
    start = sim.balances()
    markets = await markets_of(simulator)
    honest = {**fresh_signal(markets, 0, "cap-honest"), "live": True}
    big = {**fresh_signal(markets, 1, "cap-big", volume="1000.999613"), "live": True}
    assert big["legs"][0]["order_param"] == "1000.999613" and big["legs"][0]["side"] == "buy"
    bypass = {**big, "correlation_id": "cap-bypass", "starting_volume": "100"}
    settings = e2e_settings(redis_url, simulator.url, workdir, mode="live", workers=1)
    async with running_supervisor(settings) as supervisor:
        await _send(settings.socket_path, restamped(bypass), restamped(big))
        await supervisor.wait_frames(2, 10)
        await _send(settings.socket_path, restamped(honest))
        await supervisor.wait_frames(3, 10)
        await supervisor.wait_idle(10)
        refused = dict(supervisor.admission.refusals)
        assert supervisor.admission.admitted == 1
    assert refused == {"bad_volume": 1, "capital_cap": 1}
    reports = await stream_reports(redis_url)
    assert [(r.correlation_id, r.status) for r in reports] == [("cap-honest", Status.FILLED)]
    # the exchange saw only the honest execution's orders, and the balances say so to the digit
    placed = sorted(e.client_oid for e in sim.order_log.entries() if e.kind != "test")
    assert placed == sorted(client_oid("cap-honest", leg) for leg in range(3))
    deltas = account_deltas(reports)
    end = sim.balances()
    assert {c: end.get(c, Decimal(0)) for c in end} == {c: start.get(c, Decimal(0)) + deltas[c] for c in end}
    assert end["USDT"] >= start["USDT"] - Decimal("150")
    await redis.aclose()


async def test_admission_refuses_repeats_future_or_missing_book_times_and_too_fine_amounts(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    await Registry(redis, owner="test").set_config(slots=10, enforce_pair=False)
    markets = await markets_of(simulator)
    first = fresh_signal(markets, 0, "once-1")
    now_ms = int(time.time() * 1000)
    no_book_time = {**fresh_signal(markets, 1, "bt-none")}
    del no_book_time["book_ts_ms"]
    hostile = [
        {**fresh_signal(markets, 1, "bt-day"), "book_ts_ms": now_ms + 86_400_000},
        {**fresh_signal(markets, 1, "bt-max"), "book_ts_ms": 2**53},
        no_book_time,
        {**fresh_signal(markets, 1, "fine-19"), "starting_volume": "100.0000000000000000001"},
        {**fresh_signal(markets, 1, "fine-30"), "starting_volume": "1e-30"},
    ]
    settings = e2e_settings(redis_url, simulator.url, workdir, workers=1, correlation_retention_s=3600)
    async with running_supervisor(settings) as supervisor:
        await _send(settings.socket_path, restamped(first))
        await supervisor.wait_frames(1, 10)
        await supervisor.wait_idle(10)
        # the finished id sent again, freshly stamped: refused, whichever supervisor gets it
        await _send(settings.socket_path, restamped(first), *hostile)
        await supervisor.wait_frames(2 + len(hostile), 10)
        await supervisor.wait_idle(10)
        refused = dict(supervisor.admission.refusals)
        assert supervisor.admission.admitted == 1
    assert refused == {"duplicate": 1, "future_book": 2, "missing_book_ts": 1, "bad_number": 2}
    assert [(r.correlation_id, r.status) for r in await stream_reports(redis_url)] == [("once-1", Status.FILLED)]
    # the id's marker holds its first outcome for the retention window
    assert await redis.get(keys.seen_key("once-1")) == b"filled"
    assert 3_590_000 < await redis.pttl(keys.seen_key("once-1")) <= 3_600_000
    await redis.aclose()


def _unsent_bytes(pid: int) -> int:
    """Bytes `pid` has written to its Unix sockets that the peer has not read yet (`ss -xp`)."""
    listing = subprocess.run(["ss", "-xpH"], capture_output=True, text=True, check=True).stdout
    return sum(int(line.split()[3]) for line in listing.splitlines() if f"pid={pid}," in line)


async def test_a_worker_killed_while_its_report_is_on_the_way_gives_one_report(
    durable_redis: EmbeddedRedis, simulator: RunningSimulator, workdir: Path
) -> None:
    """The audit's sequence: Redis frozen (SIGSTOP), the worker's report written to it, the worker
    killed (-9), the supervisor's `lost` spooled, Redis resumed: both arrive, one is the report."""
    url = durable_redis.url
    redis = aioredis.Redis.from_url(url)
    redis_pid = int((await redis.info("server"))["process_id"])
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=400)  # the legs are at the exchange long enough to freeze Redis
    settings = e2e_settings(url, simulator.url, workdir, workers=1)
    async with running_supervisor(settings) as supervisor:
        await _send(settings.socket_path, restamped(fresh_signal(markets, 0, "once-kill")))
        await supervisor.wait_frames(1, 10)
        await wait_until(lambda: len(simulator.sim.order_log) == 3)
        (victim,) = supervisor.pool.workers
        os.kill(redis_pid, signal.SIGSTOP)
        try:
            await wait_until(lambda: _unsent_bytes(victim.pid) > 500, 5)  # the report, written, unread
            os.kill(victim.pid, signal.SIGKILL)
            await wait_until(lambda: supervisor.publisher.spooled == 1, 15)  # `lost`, Redis unanswering
        finally:
            os.kill(redis_pid, signal.SIGCONT)
        await wait_until(lambda: supervisor.publisher.spooled == 0, 15)
        await supervisor.wait_idle(10)
    entries = [fields for _, fields in await redis.xrange(settings.report_stream)]
    assert [e[b"correlation_id"] for e in entries] == [b"once-kill"], entries
    assert entries[0][b"status"] in (b"filled", b"lost")
    await redis.aclose()


async def test_a_release_that_failed_in_an_outage_is_retried_as_soon_as_redis_answers(
    durable_redis: EmbeddedRedis, simulator: RunningSimulator, workdir: Path
) -> None:
    """The audit's 2 s outage left leases blocking triangles for a whole TTL; now they go at once."""
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=300)
    settings = e2e_settings(durable_redis.url, simulator.url, workdir, workers=1, lease_ttl_ms=60_000)
    async with running_supervisor(settings) as supervisor:
        await _send(settings.socket_path, restamped(fresh_signal(markets, 0, "rel-1")))
        await supervisor.wait_frames(1, 10)
        await wait_until(lambda: len(simulator.sim.order_log) == 3)
        with capture_logs() as logs:
            durable_redis.kill()  # the execution ends while Redis is down: its release fails
            await wait_until(lambda: not supervisor.admission.in_flight, 10)
            assert supervisor._releases  # still retrying, not given up
            # and the outage is said at ERROR, not only at debug
            await wait_until(lambda: any(e["event"] == "redis_unreachable" for e in logs), 5)
        assert {e["log_level"] for e in logs if e["event"] == "redis_unreachable"} == {"error"}
        durable_redis.start()
        restarted = time.monotonic()
        await supervisor.wait_idle(10)
        assert time.monotonic() - restarted < 5  # not the 60 s TTL
        assert await supervisor.registry.leases() == []
        # the triangle is free again: a new signal on it runs
        await _send(settings.socket_path, restamped(fresh_signal(markets, 0, "rel-2")))
        await supervisor.wait_frames(2, 10)
        await supervisor.wait_idle(10)
        assert supervisor.admission.admitted == 2


async def test_a_killed_live_worker_with_orders_unresolved_keeps_its_claims_until_the_ttl(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    """The audit saw a new execution at the exchange 138 ms after a killed worker's orders were sent."""
    redis = aioredis.Redis.from_url(redis_url)
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(hang_after_match={"next_n": 1, "path": "/api/v1/hf/orders/sync"})
    # reconciliation off (its pass only at start-up): this is the TTL bound when nothing resolves them
    settings = e2e_settings(redis_url, simulator.url, workdir, mode="live", workers=1, lease_ttl_ms=3000,
                            reconcile_interval_s=3600)
    async with running_supervisor(settings) as supervisor:
        await _send(settings.socket_path, {**restamped(fresh_signal(markets, 0, "hold-1")), "live": True})
        await supervisor.wait_frames(1, 10)
        await wait_until(lambda: len(simulator.sim.order_log) == 1)  # leg 0 matched, its answer never comes
        (victim,) = supervisor.pool.workers
        os.kill(victim.pid, signal.SIGKILL)
        await supervisor.wait_idle(10)
        assert [lease.lease_id for lease in await supervisor.registry.leases()] == ["hold-1"]
        await supervisor.pool.wait_alive(1, 30)
        await _send(settings.socket_path, {**restamped(fresh_signal(markets, 0, "hold-2")), "live": True})
        await supervisor.wait_frames(2, 10)
        assert supervisor.admission.refusals["triangle_busy"] == 1  # not a second execution on its pairs
        async with asyncio.timeout(10):  # no longer renewed: it goes by its TTL
            while await supervisor.registry.leases():
                await supervisor.registry.sweep()
                await asyncio.sleep(0.05)
        await _send(settings.socket_path, {**restamped(fresh_signal(markets, 0, "hold-3")), "live": True})
        await supervisor.wait_frames(3, 10)
        await supervisor.wait_idle(15)
        assert supervisor.admission.admitted == 2
    statuses = {r.correlation_id: r.status for r in await stream_reports(redis_url)}
    assert statuses == {"hold-1": Status.LOST, "hold-3": Status.FILLED}
    await redis.aclose()


async def _reports_until(redis_url: str, done: Callable[[list[ExecutionReport]], bool],
                         timeout_s: float = 20) -> list[ExecutionReport]:
    """The stream's reports once `done` says so (fails after `timeout_s`)."""
    async with asyncio.timeout(timeout_s):
        while not done(reports := await stream_reports(redis_url)):
            await asyncio.sleep(0.05)
    return reports


def _by_status(reports: list[ExecutionReport]) -> dict[str, ExecutionReport]:
    return {str(report.status): report for report in reports}


async def test_a_killed_live_worker_s_unknown_order_is_reconciled_with_its_true_amounts(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    """Kill -9 while leg 1's answer hangs: `lost` carries leg 0 as fields, reconciliation finds leg 1
    filled, reports `reconciled` with both legs, closes the journal and frees the held lease."""
    redis = aioredis.Redis.from_url(redis_url)
    sim = simulator.sim
    start = sim.balances()
    markets = await markets_of(simulator)
    sim.update_knobs(latency_ms=150)  # room to arm the hang between leg 0 and leg 1
    settings = e2e_settings(redis_url, simulator.url, workdir, mode="live", workers=1, lease_ttl_ms=60_000,
                            reconcile_interval_s=0.2)
    async with running_supervisor(settings) as supervisor:
        await _send(settings.socket_path, {**restamped(fresh_signal(markets, 0, "rec-kill")), "live": True})
        await supervisor.wait_frames(1, 10)
        await wait_until(lambda: len(sim.order_log) == 1)
        sim.update_knobs(hang_after_match={"next_n": 1, "path": "/api/v1/hf/orders/sync"})
        await wait_until(lambda: len(sim.order_log) == 2)  # leg 1 matched, its answer never comes
        (victim,) = supervisor.pool.workers
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        reports = await _reports_until(redis_url, lambda rs: len(rs) == 2)
        await supervisor.wait_idle(10)
        assert await supervisor.registry.leases() == []  # released on reconciliation, not by the 60 s TTL
        assert time.monotonic() - killed < 10
    lost, reconciled = _by_status(reports)["lost"], _by_status(reports)["reconciled"]
    assert [r.correlation_id for r in reports] == ["rec-kill", "rec-kill"]
    assert [fill.leg for fill in lost.fills] == [0]  # the legs as fields, not only in the error text
    assert "leg1" in lost.error and "placing" in lost.error
    assert reconciled.corrects == "lost" and [fill.leg for fill in reconciled.fills] == [0, 1]
    assert reconciled.fills[0] == lost.fills[0]
    placed = {e.client_oid: e for e in sim.order_log.entries() if e.kind != "test"}
    assert set(placed) == {client_oid("rec-kill", 0), client_oid("rec-kill", 1)}
    assert reconciled.fills[1].order_id and reconciled.fills[1].filled_size > 0
    assert_reconciles(start, sim.balances(), reports)  # to the last increment
    journal = await redis.hgetall(keys.JOURNAL_PREFIX + "rec-kill")
    assert journal[b"state"] == b"done" and journal[b"status"] == b"reconciled"
    assert journal[b"leg1_state"] == b"done"
    assert 0 < await redis.ttl(keys.JOURNAL_PREFIX + "rec-kill")
    await redis.aclose()


async def test_an_order_resolve_gave_up_on_is_reconciled_by_the_background_pass(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    """Leg 0's answer lost and every query by clientOid failing for resolve_timeout_s: the worker
    reports `stranded` with the order unknown; once the exchange answers again the background pass
    finds it filled and reports `reconciled` with its true amounts."""
    redis = aioredis.Redis.from_url(redis_url)
    sim = simulator.sim
    start = sim.balances()
    markets = await markets_of(simulator)
    sim.update_knobs(hang_after_match={"next_n": 1, "path": "/api/v1/hf/orders/sync"},
                     fail_5xx={"next_n": 1_000_000, "path": "/api/v1/hf/orders/client-order/*"})
    settings = e2e_settings(redis_url, simulator.url, workdir, mode="live", workers=1, http_timeout_s=1.0,
                            resolve_timeout_s=0.5, reconcile_interval_s=0.2)
    async with running_supervisor(settings) as supervisor:
        await _send(settings.socket_path, {**restamped(fresh_signal(markets, 0, "rec-gaveup")), "live": True})
        await supervisor.wait_frames(1, 10)
        (stranded,) = await _reports_until(redis_url, lambda rs: len(rs) == 1)
        assert stranded.status == Status.STRANDED and stranded.fills == ()
        journal = await redis.hgetall(keys.JOURNAL_PREFIX + "rec-gaveup")
        assert journal[b"leg0_state"] == b"unknown"
        # the pass keeps asking while the exchange fails, and reconciles nothing it does not know
        await wait_until(lambda: sim.knobs.fail_5xx.next_n < 1_000_000 - 20, 10)
        assert len(await stream_reports(redis_url)) == 1
        sim.update_knobs(fail_5xx={"next_n": 0})
        reports = await _reports_until(redis_url, lambda rs: len(rs) == 2)
    reconciled = _by_status(reports)["reconciled"]
    assert reconciled.corrects == "stranded" and [fill.leg for fill in reconciled.fills] == [0]
    (leg0,) = [e for e in sim.order_log.entries() if e.kind != "test"]
    assert leg0.client_oid == client_oid("rec-gaveup", 0) and reconciled.fills[0].filled_size > 0
    assert_reconciles(start, sim.balances(), reports)
    journal = await redis.hgetall(keys.JOURNAL_PREFIX + "rec-gaveup")
    assert journal[b"status"] == b"reconciled" and journal[b"leg0_state"] == b"done"
    await redis.aclose()
