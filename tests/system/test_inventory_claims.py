"""The parallel strategy's inventory claims, in the registry's acquire script, on a real redis-server.

In `live_strategy parallel` every leg spends inventory at once, so the acquire claims each
currency's spend against what is held (`target:<CUR>`, lowered to what the workers last saw available), in the
same atomic call as the lease: two executions can never spend the same coins.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal as D

import pytest
import redis.asyncio as aioredis

from shared.store import keys
from shared.store.registry import Grant, LeaseRequest, Refusal, Registry

SPENDS = (("USDT", D("100")), ("BTC", D("0.002")), ("ETH", D("0.04")))


def request(lease_id: str, n: int = 0, spends: tuple[tuple[str, D], ...] = SPENDS) -> LeaseRequest:
    # distinct pairs per request so only the inventory can refuse
    pairs = (f"A{n}-USDT", f"B{n}-A{n}", f"B{n}-USDT")
    return LeaseRequest(lease_id=lease_id, triangle_id=f"T{n}", quote="USDT", pairs=pairs, notional=D("100"),
                        book_ts_ms=0, spends=spends)


@pytest.fixture
async def registry(redis_client: aioredis.Redis) -> Registry:
    registry = Registry(redis_client, owner="host:1", ttl_ms=10_000)
    await registry.set_config(slots=1000, live_strategy="parallel",
                              targets={"USDT": D("250"), "BTC": D("0.005"), "ETH": D("1")})
    return registry


async def test_sequential_default_claims_nothing(redis_client: aioredis.Redis) -> None:
    registry = Registry(redis_client, owner="host:1")
    grant = await registry.acquire(request("S1"))
    assert grant == Grant("S1", 1, "sequential")
    assert await redis_client.hgetall(keys.INV_CLAIM) == {}
    assert (await registry.config()).live_strategy == "sequential"


async def test_parallel_claims_each_currency_and_release_frees_it(registry: Registry,
                                                                  redis_client: aioredis.Redis) -> None:
    first = await registry.acquire(request("P1", 1))
    assert isinstance(first, Grant) and first.strategy == "parallel"
    assert await redis_client.hgetall(keys.INV_CLAIM) == {b"USDT": b"100", b"BTC": b"0.002", b"ETH": b"0.04"}
    second = await registry.acquire(request("P2", 2))
    assert isinstance(second, Grant)
    # USDT: 200 claimed of 250 → a third 100 is busy (it would be held, were the others done)
    third = await registry.acquire(request("P3", 3))
    assert third == Refusal("inventory_busy") and third.detail == "USDT 200 in flight of 250"
    assert await registry.release("P1", first.token, outcome="filled")
    assert await redis_client.hgetall(keys.INV_CLAIM) == {b"USDT": b"100", b"BTC": b"0.002", b"ETH": b"0.04"}
    assert isinstance(await registry.acquire(request("P3", 3)), Grant)
    assert await registry.release("P2", second.token, outcome="filled")
    assert await registry.release("P3", (await registry.leases())[0].token, outcome="filled")
    assert await redis_client.hgetall(keys.INV_CLAIM) == {}


async def test_no_inventory_when_not_held_or_more_than_held(registry: Registry) -> None:
    unheld = await registry.acquire(request("N1", spends=(("SOL", D("1")),)))
    assert unheld == Refusal("no_inventory") and "SOL none held" in unheld.detail
    too_big = await registry.acquire(request("N2", spends=(("BTC", D("0.006")),)))
    assert too_big == Refusal("no_inventory") and too_big.detail == "BTC 0.006 > 0.005 held"


async def test_the_workers_view_lowers_the_target(registry: Registry, redis_client: aioredis.Redis) -> None:
    await redis_client.hset(keys.INVENTORY, mapping={"BTC": "0.001", "ETH": "5"})  # BTC below target, ETH above
    refusal = await registry.acquire(request("W1"))
    assert refusal == Refusal("no_inventory") and refusal.detail == "BTC 0.002 > 0.001 held"
    await redis_client.hset(keys.INVENTORY, "BTC", "1")
    assert isinstance(await registry.acquire(request("W2", spends=(("ETH", D("1")),))), Grant)  # target 1 binds
    assert await registry.acquire(request("W3", 3, spends=(("ETH", D("0.1")),))) == Refusal("inventory_busy")
    # a currency with no target, seen held by a worker, may be spent
    await redis_client.hset(keys.INVENTORY, "SOL", "3")
    assert isinstance(await registry.acquire(request("W4", 4, spends=(("SOL", D("3")),))), Grant)


async def test_an_expired_parallel_lease_frees_its_claim(redis_client: aioredis.Redis) -> None:
    registry = Registry(redis_client, owner="host:1", ttl_ms=1)
    await registry.set_config(live_strategy="parallel", targets={"USDT": D("100"), "BTC": D("1"), "ETH": D("1")})
    assert isinstance(await registry.acquire(request("E1", 1)), Grant)
    deadline = asyncio.get_running_loop().time() + 3
    while (await registry.sweep()) != ["E1"]:
        assert asyncio.get_running_loop().time() < deadline, "the lease never expired"
    assert await redis_client.hgetall(keys.INV_CLAIM) == {}


@pytest.mark.parametrize("field,value", [("live_strategy", "both"), ("target:BTC", "lots")])
async def test_bad_values_refuse_bad_config_naming_the_field(registry: Registry, redis_client: aioredis.Redis,
                                                             field: str, value: str) -> None:
    await redis_client.hset(keys.CONFIG, field, value)
    refusal = await registry.acquire(request("B1"))
    assert refusal.reason == "bad_config" and field in refusal.detail and value in refusal.detail
    with pytest.raises(ValueError, match=field):
        await registry.config()


async def test_config_reads_and_writes_targets(registry: Registry, redis_client: aioredis.Redis) -> None:
    await redis_client.hset(keys.CONFIG, "target:KCS", "12.5")  # as from redis-cli
    config = await registry.config()
    assert config.live_strategy == "parallel"
    assert config.targets == {"USDT": D("250"), "BTC": D("0.005"), "ETH": D("1"), "KCS": D("12.5")}
    await registry.set_config(targets={"KCS": None})
    assert "KCS" not in (await registry.config()).targets


async def test_concurrent_acquires_never_claim_more_than_held(redis_url: str) -> None:
    """Many clients race acquires and releases; at every step the claims equal the live leases'
    spends and never exceed the inventory, and exactly as many run at once as the coins allow."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(8)]
    try:
        registries = [Registry(client, owner=f"host:{i}", ttl_ms=10_000) for i, client in enumerate(clients)]
        await registries[0].set_config(slots=1000, live_strategy="parallel",
                                       targets={"USDT": D("1000"), "BTC": D("0.0215"), "ETH": D("10")})
        spend = (("USDT", D("10")), ("BTC", D("0.002")), ("ETH", D("0.1")))
        # BTC allows 10 at once (0.02 ≤ 0.0215 < 0.022): the first wave of 40 grants exactly 10
        wave = await asyncio.gather(*(registries[i % 8].acquire(request(f"C{i}", i, spend)) for i in range(40)))
        grants = [g for g in wave if isinstance(g, Grant)]
        assert len(grants) == 10
        assert {r.reason for r in wave if isinstance(r, Refusal)} == {"inventory_busy"}
        rng = random.Random(15)
        held = {g.lease_id: g.token for g in grants}
        next_id = 40

        async def churn(registry: Registry) -> None:
            nonlocal next_id
            for _ in range(60):
                if held and rng.random() < 0.5:
                    lease_id = rng.choice(sorted(held))
                    token = held.pop(lease_id)
                    assert await registry.release(lease_id, token, outcome="filled")
                else:
                    next_id += 1
                    n = next_id
                    result = await registry.acquire(request(f"C{n}", n, spend))
                    if isinstance(result, Grant):
                        held[result.lease_id] = result.token
                claimed = await clients[0].hget(keys.INV_CLAIM, "BTC")
                assert D((claimed or b"0").decode()) <= D("0.0215")

        await asyncio.gather(*(churn(registry) for registry in registries))
        leases = await registries[0].leases()
        claims = {k.decode(): D(v.decode()) for k, v in (await clients[0].hgetall(keys.INV_CLAIM)).items()}
        assert {lease.lease_id for lease in leases} == set(held)
        assert claims.get("BTC", D(0)) == D("0.002") * len(leases) <= D("0.0215")
        for lease_id, token in list(held.items()):
            assert await registries[0].release(lease_id, token, outcome="filled")
        assert await clients[0].hgetall(keys.INV_CLAIM) == {}
    finally:
        for client in clients:
            await client.aclose()
