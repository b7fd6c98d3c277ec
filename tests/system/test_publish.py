"""ReportPublisher against a real redis-server that is killed (SIGKILL) and started again.

The Redis here keeps an fsync-always append-only file (see the `durable_redis` fixture), so
what reached the stream before a kill is still there after it and "nothing lost, in order" is
checked over the whole run, not only over what was spooled.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis

from shared.report import ExecutionReport, Status
from shared.stopping import Stopping
from shared.store.reports import ReportPublisher
from tools.embedded_redis import EmbeddedRedis

STREAM = "trident:reports"


def _report(cid: str) -> ExecutionReport:
    zero = Decimal(0)
    return ExecutionReport(
        correlation_id=cid, status=Status.FILLED, mode="paper", fill_model="depth", triangle=("A-B", "B-C", "A-C"),
        primary_quote="C", predicted_bps=1.5, effective_bps=1.25, profit=Decimal("0.1"), spent=zero, returned=zero,
        ts_ms=1, book_ts_ms=1, signal_ts_ms=1, received_ts_ms=1, first_order_ms=0.5, total_ms=2.0, error="",
        worker="w", host="h",
    )


async def _stream_ids(client: aioredis.Redis) -> list[str]:
    return [fields[b"correlation_id"].decode() for _, fields in await client.xrange(STREAM)]


def _publisher(server: EmbeddedRedis, spool: Path) -> tuple[ReportPublisher, aioredis.Redis]:
    # short socket timeouts: a connection to a dead server must fail now, not in the default minutes
    client = aioredis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2)
    return ReportPublisher(client, STREAM, 10_000, spool), client


async def test_reports_go_straight_to_the_stream_while_redis_is_up(durable_redis: EmbeddedRedis, tmp_path: Path) -> None:
    publisher, client = _publisher(durable_redis, tmp_path / "w.spool")
    try:
        assert [await publisher.publish(_report(f"up-{i}")) for i in range(3)] == [True, True, True]
        assert publisher.spooled == 0 and not (tmp_path / "w.spool").exists()
        assert await _stream_ids(client) == ["up-0", "up-1", "up-2"]
    finally:
        await client.aclose()


async def test_an_outage_spools_and_the_replay_keeps_order(durable_redis: EmbeddedRedis, tmp_path: Path) -> None:
    publisher, client = _publisher(durable_redis, tmp_path / "w.spool")
    try:
        assert await publisher.publish(_report("r-0"))
        durable_redis.kill()
        assert [await publisher.publish(_report(f"r-{i}")) for i in (1, 2, 3)] == [False, False, False]
        assert publisher.spooled == 3
        assert await publisher.replay() == 0  # still down: nothing sent, nothing dropped
        assert publisher.spooled == 3
        durable_redis.start()
        # Redis is back but the spool is not empty: a new report queues behind it, never ahead
        assert not await publisher.publish(_report("r-4"))
        assert await publisher.replay() == 4
        assert publisher.spooled == 0
        assert await _stream_ids(client) == [f"r-{i}" for i in range(5)]
        assert await publisher.publish(_report("r-5"))  # and direct again once drained
        assert (await _stream_ids(client))[-1] == "r-5"
    finally:
        await client.aclose()


async def test_the_replayer_drains_the_spool_by_itself_when_redis_returns(
    durable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    publisher, client = _publisher(durable_redis, tmp_path / "w.spool")
    replayer = asyncio.create_task(publisher.run_replayer(Stopping(), interval_s=0.02))
    try:
        durable_redis.kill()
        for i in range(5):
            await publisher.publish(_report(f"bg-{i}"))
        durable_redis.start()
        async with asyncio.timeout(10):
            while publisher.spooled:
                await asyncio.sleep(0.01)
        assert await _stream_ids(client) == [f"bg-{i}" for i in range(5)]
        assert not replayer.done()  # the outage did not kill the task
    finally:
        replayer.cancel()
        await client.aclose()


async def test_a_replacement_process_replays_what_its_predecessor_spooled(
    durable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    spool = tmp_path / "worker-0.spool"
    first, first_client = _publisher(durable_redis, spool)
    durable_redis.kill()
    for i in range(3):
        await first.publish(_report(f"old-{i}"))
    await first_client.aclose()  # the worker died here
    durable_redis.start()
    second, client = _publisher(durable_redis, spool)
    try:
        assert second.spooled == 3
        assert await second.replay() == 3
        assert await _stream_ids(client) == ["old-0", "old-1", "old-2"]
    finally:
        await client.aclose()


async def test_an_outage_during_replay_loses_nothing_and_duplicates_at_most_the_one_in_flight(
    durable_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    total = 400  # each spooled report is fsynced, each replayed XADD too (appendfsync always)
    publisher, client = _publisher(durable_redis, tmp_path / "w.spool")
    watcher = aioredis.Redis.from_url(durable_redis.url)
    try:
        durable_redis.kill()
        for i in range(total):
            await publisher.publish(_report(f"m-{i:04d}"))
        durable_redis.start()
        replay = asyncio.create_task(publisher.replay())
        async with asyncio.timeout(10):
            while await watcher.xlen(STREAM) < 50:
                await asyncio.sleep(0)
        durable_redis.kill()  # mid-replay
        sent_before = await replay
        assert 50 <= sent_before < total
        assert publisher.spooled == total - sent_before
        durable_redis.start()
        assert await publisher.replay() == total - sent_before
        ids = await _stream_ids(client)
    finally:
        await watcher.aclose()
        await client.aclose()
    expected = [f"m-{i:04d}" for i in range(total)]
    first_seen = list(dict.fromkeys(ids))
    assert first_seen == expected  # nothing lost, in order
    assert len(ids) - len(first_seen) <= 1  # an XADD applied whose answer the kill swallowed


async def test_a_second_report_for_an_id_is_dropped_even_from_the_spool(durable_redis: EmbeddedRedis,
                                                                         tmp_path: Path) -> None:
    """Publish once: the worker's report and the supervisor's `lost` (or a replay) land once."""
    worker, client = _publisher(durable_redis, tmp_path / "w.spool")
    supervisor, other = _publisher(durable_redis, tmp_path / "s.spool")
    try:
        assert await worker.publish(_report("one"))
        assert await supervisor.publish(replace(_report("one"), status=Status.LOST))  # reached Redis, dropped
        durable_redis.kill()
        assert not await supervisor.publish(_report("one"))  # spooled while Redis is down
        durable_redis.start()
        assert await supervisor.replay() == 1
        entries = await client.xrange(STREAM)
        assert [(f[b"correlation_id"], f[b"status"]) for _, f in entries] == [(b"one", b"filled")]
    finally:
        await client.aclose()
        await other.aclose()
