"""Trident on a real 3-primary Redis Cluster (tests/support/cluster.py): every script, stream and
key through redis-py's cluster client, the demo's reports, and `trident ctl` reading the fleet."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from shared.codec import as_text
from shared.report import report_from_fields
from shared.settings import SettingsError, load_settings
from shared.store import keys
from shared.store.connect import connect, parse_cluster_url
from shared.store.fleet import RefusalTally, publish_status, read_fleet, withdraw_status
from shared.store.journal import Journal, PlacingOrder, SettledOrder
from shared.store.ratebudget import RateBudget
from shared.store.registry import Grant, LeaseRequest, NotReplicated, Refusal, Registry
from shared.store.reports import ReportPublisher
from shared.store.rollup import RollupWriter
from sim.server import RunningSimulator
from supervisor.refusal_trail import RefusalTrail
from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor
from tests.unit.test_report import report
from shared.codec import encode_frame
from tools.demo import run_demo
from tools.send import send_frames

TRI = ("BTC-USDT", "ETH-BTC", "ETH-USDT")


@pytest.fixture
async def cluster(cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = connect(load_settings(env={}, redis_url=cluster_url), "tool")
    assert isinstance(client, RedisCluster)
    yield client
    await client.aclose()


def test_cluster_urls_are_checked_at_load_with_one_line() -> None:
    assert parse_cluster_url("redis+cluster://u:p@a:7000,b:7001").nodes == (("a", 7000), ("b", 7001))
    for bad in ("redis+cluster://a", "redis+cluster://a:7000,b", "redis+cluster://a:7000/3"):
        with pytest.raises(SettingsError) as refused:
            load_settings(env={}, redis_url=bad)
        assert "\n" not in str(refused.value) and "redis_url" in str(refused.value), bad


async def test_the_registry_keys_span_slots_nowhere_and_the_scripts_run(cluster: RedisCluster) -> None:
    slots = {cluster.keyslot(name) for name in (keys.CONFIG, keys.LEASES, keys.TOKEN, keys.RATE_BUDGET,
                                               keys.seen_key("x"), keys.JOURNAL_PREFIX + "x")}
    assert len(slots) == 1
    budget = RateBudget(cluster, limit=100, window_ms=30_000)
    registry = Registry(cluster, owner="box:1", ttl_ms=5_000, budget=budget)
    await registry.set_config(slots=3, caps={"USDT": Decimal("25")})
    request = LeaseRequest("c1", "/".join(TRI), "USDT", TRI, Decimal("10"), book_ts_ms=0)
    grant = await registry.acquire(request, weight=3)
    assert isinstance(grant, Grant)
    assert await registry.acquire(request, weight=3) == Refusal("duplicate")
    other = LeaseRequest("c2", "X/Y/Z", "USDT", ("BTC-USDT", "SOL-BTC", "SOL-USDT"), Decimal("1"), 0)
    assert await registry.acquire(other, weight=3) == Refusal("pair_busy")
    assert await registry.renew("c1", grant.token)
    assert [lease.lease_id for lease in await registry.leases()] == ["c1"]
    assert await budget.remaining_now() == 97 and await budget.take(2)
    assert (await budget.observe(100, 50, 29_000)).remaining == 50
    assert await registry.release("c1", grant.token, last_trade_ms=1, outcome="filled")
    assert await registry.acquire(request) == Refusal("duplicate")
    assert await registry.sweep() == [] and (await registry.config()).slots == 3

    waiting = Registry(cluster, owner="box:1", wait_replicas=1, wait_timeout_ms=50)
    with pytest.raises(NotReplicated):  # the {reg} slot's primary has no replica here: undone, refused
        await waiting.acquire(LeaseRequest("c3", "A/B/C", "USDT", ("A-B",), Decimal("1"), 0))
    assert await registry.leases() == []


async def test_reports_journal_rollup_and_refusal_trail_on_the_cluster(cluster: RedisCluster, tmp_path: Path) -> None:
    publisher = ReportPublisher(cluster, "trident:reports", 1000, tmp_path / "w.spool")
    assert await publisher.publish(report(3, correlation_id="r1")) and await publisher.publish(report(3, correlation_id="r1"))
    entries = await cluster.xrange("trident:reports")
    assert [report_from_fields(fields).correlation_id for _, fields in entries] == ["r1"]

    journal = Journal(cluster)
    first = PlacingOrder("leg0", "oid-0", "BTC-USDT", "buy", Decimal("10"), by_funds=True)
    assert await journal.begin("r1", TRI, "USDT", first) and not await journal.begin("r1", TRI, "USDT", first)
    await journal.finish("r1", "filled", SettledOrder("leg0", "done", order_id="o1", filled_size=Decimal(1)))
    assert await journal.ids() == ["r1"] and (await journal.read("r1"))["status"] == "filled"

    rollup = RollupWriter(cluster, "box:1")
    assert await rollup.lead() and not await RollupWriter(cluster, "box:2").lead()
    assert await rollup.step() >= 0
    await rollup.resign()

    trail = RefusalTrail(cluster, "box:1")
    trail.record("pair_busy", "BTC-USDT c0", "r2")
    await trail.flush()
    assert await cluster.xlen(keys.REFUSAL_LOG) == 1


async def test_status_refusals_and_the_fleet_index_live_in_three_slots_and_count_once(cluster: RedisCluster) -> None:
    assert len({cluster.keyslot(k) for k in (keys.STATUS_PREFIX + "box:1", keys.FLEET, keys.REFUSALS)}) == 3
    tally = RefusalTally()
    refused = {"pair_busy": 3}
    await publish_status(cluster, "box:1", {"workers": "1", "workers_alive": "1"}, tally.pending(refused), tally=tally)
    await publish_status(cluster, "box:1", {"workers": "1", "workers_alive": "1"}, tally.pending(refused), tally=tally)
    await cluster.set(keys.worker_health_key("box:1", 0), "ok")
    [member] = await read_fleet(cluster)
    assert member.name == "box:1" and member.workers == {0: "ok"}
    assert await cluster.hget(keys.REFUSALS, "pair_busy") == b"3"
    await withdraw_status(cluster, "box:1", 1, {"stale": 1})
    assert await read_fleet(cluster) == [] and await cluster.exists(keys.worker_health_key("box:1", 0)) == 0
    assert {as_text(k): as_text(v) for k, v in (await cluster.hgetall(keys.REFUSALS)).items()} == \
        {"pair_busy": "3", "stale": "1"}


async def test_the_demo_runs_on_the_cluster_and_its_reports_are_on_the_stream(cluster_url: str,
                                                                            cluster: RedisCluster) -> None:
    assert await run_demo(redis_url=cluster_url, signals=60, workers=1) == 0
    reports = [report_from_fields(fields) for _, fields in await cluster.xrange("trident:reports")]
    assert reports and len({r.correlation_id for r in reports}) == len(reports)
    assert {str(r.status) for r in reports} <= {"filled", "failed", "partial", "unwound"}
    assert any(str(r.status) == "filled" for r in reports)
    assert await cluster.hlen(keys.LEASE_DATA) == 0  # every lease released


async def test_supervisor_and_workers_on_the_cluster_with_ctl_status_and_reports(
        cluster_url: str, cluster: RedisCluster, simulator: RunningSimulator, workdir: Path) -> None:
    settings = e2e_settings(cluster_url, simulator.url, workdir, workers=2)
    markets = await markets_of(simulator)
    async with running_supervisor(settings) as supervisor:
        frames = [encode_frame(fresh_signal(markets, index % 4, f"cl-{index}")) for index in range(12)]
        await send_frames(settings.socket_path, frames, progress=False)
        await supervisor.wait_frames(12, 20)
        await supervisor.wait_idle(20)
        ctl = [sys.executable, "-m", "tools.cli", "ctl", "--redis-url", cluster_url]
        async with asyncio.timeout(15):
            while not await read_fleet(cluster):
                await asyncio.sleep(0.05)  # the status loop writes once a second
        status = subprocess.run([*ctl, "status"], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        assert supervisor.name in status.stdout and "1 supervisor(s)" in status.stdout
        shown = subprocess.run([*ctl, "reports", "--count", "50"], capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0, shown.stderr
    reports = [report_from_fields(fields) for _, fields in await cluster.xrange("trident:reports")]
    assert reports and all(r.correlation_id in shown.stdout for r in reports)
    assert len({r.correlation_id for r in reports}) == len(reports) == supervisor.admission.admitted
