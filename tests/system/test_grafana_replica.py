"""Grafana on a Redis replica: every dashboard query answers there exactly as on the primary.

deploy/grafana/README.md tells operators to point the Redis data source at a replica
(`replicaof`), so dashboard reads never queue in front of admissions on the registry's Redis. This
starts a real primary and a real replica, writes reports and the tallies the dashboards read on
the primary, and runs every Redis target of every dashboard on both, framed as the plugin frames
them; the replica also refuses writes, so a data source pointed at it cannot touch the registry.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ReadOnlyError

from bench.dashboard_load import realistic_report_fields
from shared.store.rollup import GRACE_MS, MINUTE_MS, RollupWriter
from tests.support.grafana import plugin_frames
from tools.embedded_redis import EmbeddedRedis

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards").glob("*.json"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def primary_and_replica() -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    port = _free_port()
    primary = EmbeddedRedis(port=port).start()
    replica = EmbeddedRedis(port=_free_port(), extra_args=["--replicaof", "127.0.0.1", str(port)]).start()
    clients = aioredis.Redis.from_url(primary.url), aioredis.Redis.from_url(replica.url)
    try:
        async with asyncio.timeout(10):
            while (await clients[1].info("replication")).get("master_link_status") != "up":
                await asyncio.sleep(0.05)
        yield clients
    finally:
        for client in clients:
            await client.aclose()
        replica.stop()
        primary.stop()


async def test_every_dashboard_query_answers_the_same_on_a_replica(
    primary_and_replica: tuple[aioredis.Redis, aioredis.Redis],
) -> None:
    primary, replica = primary_and_replica
    for index in range(600):  # more than any raw panel reads
        await primary.xadd("trident:reports", realistic_report_fields(index))
    await primary.hset("trident:refusals", mapping={"triangle_busy": 2, "stale": 1})
    await primary.hset("trident:{reg}:config", mapping={"slots": 4})
    await primary.hset("trident:{reg}:lease_data", mapping={"c-1": "{}"})
    await RollupWriter(primary, "test").roll(now_ms=int(time.time() * 1000) + MINUTE_MS + GRACE_MS)
    assert await primary.wait(1, 5000) == 1  # the replica has acknowledged every write
    now_ms = int(time.time() * 1000)
    checked = 0
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["type"] != "redis-datasource":
                    continue
                on_primary = await plugin_frames(primary, target, now_ms - 3_600_000, now_ms)
                on_replica = await plugin_frames(replica, target, now_ms - 3_600_000, now_ms)
                assert on_replica == on_primary, panel["title"]
                assert all(field["values"] for frame in on_replica for field in frame["fields"]), panel["title"]
                checked += 1
    assert checked >= 9
    with pytest.raises(ReadOnlyError):
        await replica.hset("trident:{reg}:config", "paused", "1")
