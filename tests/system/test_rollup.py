"""The per-minute roll-up on a real Redis: exact aggregates, paged reads, one writer per fleet."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from shared.store.rollup import LEADER_KEY, MINUTE_MS, PAGE, ROLLUP_STREAM, RollupWriter

M0 = 1_795_600_020_000 // MINUTE_MS * MINUTE_MS


def raw(status: str, quote: str, profit: str, total_ms: str, fee: str = "0.1") -> dict[str, str]:
    return {"status": status, "primary_quote": quote, "profit": profit, "spent": "100", "total_ms": total_ms,
            "first_order_ms": "0.4", "leg0_fee": fee, "leg0_fee_currency": quote, "leg1_fee": "0",
            "leg1_fee_currency": "", "leg2_fee": "0", "leg2_fee_currency": ""}


async def test_each_finished_minute_is_rolled_once_with_money_per_currency(redis_client: aioredis.Redis) -> None:
    rows = [raw("filled", "USDT", "0.5", "10"), raw("filled", "BTC", "-0.00001", "30", "0.000001"),
            raw("failed", "USDT", "0", "0"), raw("filled", "USDT", "-0.2", "20")]
    for index, fields in enumerate(rows):
        await redis_client.xadd("trident:reports", fields, id=f"{M0 + index * 1000}-0")
    await redis_client.xadd("trident:reports", raw("filled", "USDT", "9", "5"), id=f"{M0 + MINUTE_MS + 5}-0")
    writer = RollupWriter(redis_client, "a")
    assert await writer.roll(now_ms=M0 + MINUTE_MS + 1000) == 59  # an hour back, up to M0: not over (+ grace)
    assert await writer.roll(now_ms=M0 + 2 * MINUTE_MS + 2500) == 2  # then both minutes
    entries = {int(i.decode().split("-")[0]): {k.decode(): v.decode() for k, v in f.items()}
               for i, f in await redis_client.xrange(ROLLUP_STREAM)}
    first = entries[M0]
    assert (first["count"], first["count_filled"], first["count_failed"], first["count_lost"]) == ("4", "3", "1", "0")
    assert (first["profit_USDT"], first["profit_BTC"], first["spent_USDT"]) == ("0.3", "-0.00001", "300")
    assert (first["fees_USDT"], first["fees_BTC"]) == ("0.3", "0.000001")
    assert (first["total_p50_ms"], first["total_p99_ms"]) == ("20.000", "30.000")
    assert entries[M0 + MINUTE_MS]["profit_USDT"] == "9"
    assert entries[M0 - MINUTE_MS]["count"] == "0"  # quiet minutes are rolled too: the charts show zeros
    assert await writer.roll(now_ms=M0 + 2 * MINUTE_MS + 2500) == 0  # nothing twice
    # a second writer racing for the same minute (the first wrote it while it read) is refused by Redis
    class Racing(RollupWriter):
        async def _read_minute(self, minute: int) -> list[dict[str, str]]:
            await redis_client.xadd(ROLLUP_STREAM, {"count": "1"}, id=f"{minute}-1")
            return await super()._read_minute(minute)

    assert await Racing(redis_client, "b").roll(now_ms=M0 + 3 * MINUTE_MS + 2500) == 0
    assert await redis_client.xlen(ROLLUP_STREAM) == 62


async def test_a_busy_minute_is_read_in_pages(redis_client: aioredis.Redis) -> None:
    async with redis_client.pipeline(transaction=False) as pipe:
        for index in range(2 * PAGE + 7):
            pipe.xadd("trident:reports", raw("filled", "USDT", "0.001", "10"), id=f"{M0 + 17}-{index + 1}")
        await pipe.execute()
    await RollupWriter(redis_client, "a").roll(now_ms=M0 + MINUTE_MS + 2500)
    [(_, fields)] = await redis_client.xrevrange(ROLLUP_STREAM, count=1)
    assert fields[b"count"] == str(2 * PAGE + 7).encode() and fields[b"profit_USDT"] == b"1.007"


async def test_one_writer_per_fleet_and_the_next_takes_over_when_it_dies(redis_client: aioredis.Redis) -> None:
    a, b = RollupWriter(redis_client, "host-a:1", lease_ms=300), RollupWriter(redis_client, "host-b:2", lease_ms=300)
    assert await a.lead() and not await b.lead()
    assert await a.lead()  # renewing keeps it
    assert await b.step(now_ms=M0) == 0  # a follower writes nothing
    # a dies (stops renewing): its lease expires and b's next attempt takes it
    async with asyncio.timeout(3):
        while not await b.lead():
            await asyncio.sleep(0.05)
    assert not await a.lead()
    await b.resign()  # a clean stop hands over at once
    assert await redis_client.get(LEADER_KEY) is None and await a.lead()


@pytest.mark.parametrize("holder", [None, "someone-else"])
async def test_resign_never_drops_another_supervisors_lease(redis_client: aioredis.Redis, holder: str | None) -> None:
    if holder:
        await redis_client.set(LEADER_KEY, holder, px=10_000)
    await RollupWriter(redis_client, "me").resign()
    assert await redis_client.get(LEADER_KEY) == (holder.encode() if holder else None)
