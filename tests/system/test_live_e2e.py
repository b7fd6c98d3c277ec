"""Live mode end to end: simulator + supervisor + a real worker process + real Redis.

The simulator's balances are the ground truth: after the run they must equal the starting
balances plus everything the reports on the stream say the account did, to the last digit.
"""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis

from shared.channel import Job
from shared.codec import encode_frame
from shared.report import Status
from shared.store import keys
from shared.store.journal import Journal
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
from tests.support.reconcile import account_deltas
from tools.send import send_frames
from tools.synthetic import restamped
from worker.context import client_oid
from worker.live import unwind_client_oid


def live(signal: dict) -> dict:
    return {**signal, "live": True}


async def test_live_service_trades_journals_unwinds_and_reconciles(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    await Registry(redis, owner="test").set_config(slots=10, enforce_pair=False)
    sim = simulator.sim
    start = sim.balances()
    markets = await markets_of(simulator)
    signals = [live(fresh_signal(markets, i, f"lv-{i}")) for i in range(3)]
    doomed = live(fresh_signal(markets, 3, "lv-doomed"))
    settings = e2e_settings(redis_url, simulator.url, workdir, mode="live", workers=1)
    async with running_supervisor(settings) as supervisor:
        for n, signal in enumerate(signals, 1):  # one at a time: no isolation refusals to account for
            await send_frames(settings.socket_path, [encode_frame(restamped(signal))], progress=False)
            await supervisor.wait_frames(n, 10)
            await supervisor.wait_idle(10)
        # the doomed triangle's middle pair stops trading after the signal was made: leg 1 is refused
        middle = doomed["triangle_key"][1]
        sim.exchange.symbols[middle] = replace(sim.exchange.symbols[middle], enable_trading=False)
        await send_frames(settings.socket_path, [encode_frame(restamped(doomed))], progress=False)
        await supervisor.wait_frames(4, 10)
        await supervisor.wait_idle(10)
        assert supervisor.admission.admitted == 4
    reports = {r.correlation_id: r for r in await stream_reports(redis_url)}
    assert {cid: r.status for cid, r in reports.items()} == {
        "lv-0": Status.FILLED, "lv-1": Status.FILLED, "lv-2": Status.FILLED, "lv-doomed": Status.UNWOUND}
    assert all(r.mode == "live" and len(r.fills) == 3 for cid, r in reports.items() if cid != "lv-doomed")
    unwound = reports["lv-doomed"]
    assert "leg 1" in unwound.error and "400600" in unwound.error
    assert unwound.unwinds[0].currency == unwound.fills[0].output_currency
    assert unwound.unwinds[0].recovered > 0
    # ground truth: the exchange's balances are the start plus what the reports say
    deltas = account_deltas(list(reports.values()))
    end = sim.balances()
    assert {c: end.get(c, Decimal(0)) for c in end} == {c: start.get(c, Decimal(0)) + deltas[c] for c in end}
    # exactly the orders the reports account for, each with its deterministic id, none twice
    placed = [e for e in sim.order_log.entries() if e.kind != "test"]
    expected = [client_oid(cid, leg) for cid in ("lv-0", "lv-1", "lv-2") for leg in range(3)]
    expected += [client_oid("lv-doomed", 0), client_oid("lv-doomed", 1), unwind_client_oid("lv-doomed", 1)]
    assert sorted(e.client_oid for e in placed) == sorted(expected)
    assert {e.kind for e in placed} == {"sync"}
    journal = Journal(redis)
    assert (await journal.read("lv-doomed"))["status"] == "unwound"
    assert (await journal.read("lv-0"))["leg2_state"] == "done"
    await redis.aclose()


async def test_paper_service_never_places_an_order_whatever_the_signal_says(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    markets = await markets_of(simulator)
    settings = e2e_settings(redis_url, simulator.url, workdir, workers=1)  # paper
    async with running_supervisor(settings) as supervisor:
        frames = [encode_frame(live(fresh_signal(markets, i, f"sneaky-{i}"))) for i in range(3)]
        await send_frames(settings.socket_path, frames, progress=False)
        await supervisor.wait_frames(3, 10)
        assert supervisor.admission.refusals["live_in_paper"] == 3
        # past the supervisor's guard, straight to a worker: the worker's own lock holds
        worker = supervisor.pool.pick()
        assert worker is not None
        job = live(fresh_signal(markets, 0, "smuggled"))
        supervisor.pool.dispatch(worker, Job("smuggled", job, int(time.time() * 1000), time.monotonic_ns()))
        await wait_until(lambda: supervisor.outcomes[Status.FAILED] == 1, 10)
    (report,) = await stream_reports(redis_url)
    assert (report.correlation_id, report.status) == ("smuggled", Status.FAILED)
    assert "paper mode" in report.error
    assert simulator.sim.order_log.entries() == []  # not a place, not a sync, not even a test


async def test_live_service_parallel_strategy_claims_inventory_trades_and_reconciles(
    redis_url: str, simulator: RunningSimulator, workdir: Path
) -> None:
    """`live_strategy parallel` from the config hash (as redis-cli would set it): the grant claims
    each leg's spend, the worker places the legs at once, the claims are freed at release."""
    redis = aioredis.Redis.from_url(redis_url)
    sim = simulator.sim
    start = sim.balances()
    await redis.hset(keys.CONFIG, mapping={"slots": "10", "enforce_pair": "0", "live_strategy": "parallel",
                                           **{f"target:{c}": str(amount) for c, amount in start.items()}})
    markets = await markets_of(simulator)
    signals = [live(fresh_signal(markets, i, f"pv-{i}")) for i in range(3)]
    unheld = live(fresh_signal(markets, 3, "pv-unheld"))
    settings = e2e_settings(redis_url, simulator.url, workdir, mode="live", workers=1)
    async with running_supervisor(settings) as supervisor:
        for n, signal in enumerate(signals, 1):
            await send_frames(settings.socket_path, [encode_frame(restamped(signal))], progress=False)
            await supervisor.wait_frames(n, 10)
            await supervisor.wait_idle(10)
        currency = unheld["legs"][1]["pair"].split("-")[0 if unheld["legs"][1]["side"] == "sell" else 1]
        await redis.hdel(keys.CONFIG, f"target:{currency}")
        await redis.hdel(keys.INVENTORY, currency)
        await send_frames(settings.socket_path, [encode_frame(restamped(unheld))], progress=False)
        await supervisor.wait_frames(4, 10)
        assert supervisor.admission.refusals["no_inventory"] == 1
        assert supervisor.admission.admitted == 3
    reports = {r.correlation_id: r for r in await stream_reports(redis_url)}
    assert {cid: (r.status, r.strategy) for cid, r in reports.items()} == {
        f"pv-{i}": (Status.FILLED, "parallel") for i in range(3)}
    deltas = account_deltas(list(reports.values()))
    end = sim.balances()
    assert {c: end.get(c, Decimal(0)) for c in end} == {c: start.get(c, Decimal(0)) + deltas[c] for c in end}
    for report in reports.values():  # the report's inventory change is what its legs moved
        moved = account_deltas([report])
        assert dict(report.inventory) == {c: v for c, v in moved.items()}
    placed = [e.client_oid for e in sim.order_log.entries() if e.kind != "test"]
    assert sorted(placed) == sorted(client_oid(f"pv-{i}", leg) for i in range(3) for leg in range(3))
    assert await redis.hgetall(keys.INV_CLAIM) == {}  # every claim freed by its release
    await redis.aclose()
