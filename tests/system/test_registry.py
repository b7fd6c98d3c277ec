"""The registry's Lua scripts against a real redis-server: grants, refusals and their order,
fencing, expiry, the stale rule, exact capital caps, live config and NOSCRIPT recovery."""

from __future__ import annotations

import asyncio
import decimal
import functools
import json
import random
import time
from collections.abc import Iterable
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from shared.store import keys
from shared.store.registry import Grant, LeaseRequest, Refusal, Registry

TRI_A = ("BTC-USDT", "ETH-BTC", "ETH-USDT")
TRI_B = ("BTC-USDT", "SOL-BTC", "SOL-USDT")  # shares BTC-USDT with TRI_A
TRI_C = ("KCS-USDT", "KCS-ETH", "ETH-USDT")  # shares ETH-USDT with TRI_A
TRI_D = ("XRP-USDT", "XRP-KCS", "KCS-USDT")  # disjoint from TRI_A and TRI_B
EXACT = decimal.Context(prec=80)  # the default 28 digits would round the sums this file checks
REGISTRY_KEYS = (
    keys.CONFIG, keys.LEASES, keys.LEASE_DATA, keys.CLAIM_TRI, keys.CLAIM_QUOTE, keys.CLAIM_PAIR,
    keys.CAPITAL, keys.LAST_TRADE, keys.TOKEN,
)


def request(lease_id: str, pairs: tuple[str, ...] = TRI_A, *, triangle: str | None = None, quote: str = "USDT",
            notional: str = "10", book_ts_ms: int = 0) -> LeaseRequest:
    return LeaseRequest(lease_id=lease_id, triangle_id=triangle or "/".join(pairs), quote=quote, pairs=pairs,
                        notional=Decimal(notional), book_ts_ms=book_ts_ms)


def exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    return functools.reduce(EXACT.add, amounts, Decimal(0))


async def server_ms(client: aioredis.Redis) -> int:
    seconds, micros = await client.time()
    return seconds * 1000 + micros // 1000


async def wait_until_expired(client: aioredis.Redis, lease_id: str, timeout_s: float = 3.0) -> None:
    """Poll the server clock until the lease's expiry is behind it (or the lease is gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        expires_ms = await client.zscore(keys.LEASES, lease_id)
        if expires_ms is None or await server_ms(client) > expires_ms:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"lease {lease_id} did not expire within {timeout_s}s")


async def registry_state(client: aioredis.Redis) -> dict[str, object]:
    """Every registry key's full content, to prove an operation changed nothing."""
    state: dict[str, object] = {}
    for key in REGISTRY_KEYS:
        kind = (await client.type(key)).decode()
        if kind == "hash":
            state[key] = await client.hgetall(key)
        elif kind == "zset":
            state[key] = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "string":
            state[key] = await client.get(key)
    return state


@pytest.fixture
def registry(redis_client: aioredis.Redis) -> Registry:
    return Registry(redis_client, owner="host-1:42", ttl_ms=10_000)


async def test_grant_writes_every_claim_and_the_lease_record(registry: Registry, redis_client: aioredis.Redis) -> None:
    before_ms = await server_ms(redis_client)
    grant = await registry.acquire(request("L1", notional="12.5", book_ts_ms=0))
    after_ms = await server_ms(redis_client)

    assert grant == Grant("L1", 1)
    assert await redis_client.hgetall(keys.CLAIM_TRI) == {b"BTC-USDT/ETH-BTC/ETH-USDT": b"L1"}
    assert await redis_client.hgetall(keys.CLAIM_QUOTE) == {b"USDT": b"L1"}
    assert await redis_client.hgetall(keys.CLAIM_PAIR) == {b"BTC-USDT": b"L1", b"ETH-BTC": b"L1", b"ETH-USDT": b"L1"}
    assert await redis_client.hgetall(keys.CAPITAL) == {b"USDT": b"12.5"}
    expires_ms = await redis_client.zscore(keys.LEASES, "L1")
    assert before_ms + 10_000 <= expires_ms <= after_ms + 10_000

    [lease] = await registry.leases()
    assert (lease.lease_id, lease.token, lease.triangle_id, lease.quote, lease.pairs, lease.notional, lease.owner) == (
        "L1", 1, "BTC-USDT/ETH-BTC/ETH-USDT", "USDT", TRI_A, Decimal("12.5"), "host-1:42")
    assert before_ms <= lease.started_ms <= after_ms
    assert lease.expires_ms == expires_ms

    second = await registry.acquire(request("L2", TRI_D))
    assert second == Grant("L2", 2)  # tokens come from one counter
    assert await redis_client.hget(keys.CLAIM_QUOTE, "USDT") == b"L1,L2"  # quotes may be shared by default
    assert await redis_client.hget(keys.CAPITAL, "USDT") == b"22.5"


@pytest.mark.parametrize("reason", ["paused", "duplicate", "no_slot", "triangle_busy", "quote_busy", "pair_busy",
                                    "stale", "capital_cap"])
async def test_each_refusal_reason_alone(registry: Registry, redis_client: aioredis.Redis, reason: str) -> None:
    assert isinstance(await registry.acquire(request("held", TRI_A, notional="5")), Grant)
    probe = request("new", TRI_D, quote="USDT", notional="5")  # conflicts with nothing by default
    if reason == "paused":
        await registry.set_config(paused=True)
    elif reason == "duplicate":
        probe = request("held", TRI_D)
    elif reason == "no_slot":
        await registry.set_config(slots=1)
    elif reason == "triangle_busy":
        probe = request("new", TRI_D, triangle="BTC-USDT/ETH-BTC/ETH-USDT")
    elif reason == "quote_busy":
        await registry.set_config(enforce_same_quote=True)
    elif reason == "pair_busy":
        probe = request("new", TRI_B)
    elif reason == "stale":
        assert await registry.release("held", 1, last_trade_ms=5_000)
        mark = int(await redis_client.hget(keys.LAST_TRADE, "BTC-USDT/ETH-BTC/ETH-USDT"))
        probe = request("new", TRI_A, book_ts_ms=mark - 1)
    elif reason == "capital_cap":
        await registry.set_config(caps={"USDT": Decimal("9.99")})
    before = await registry_state(redis_client)

    assert await registry.acquire(probe) == Refusal(reason)
    assert await registry_state(redis_client) == before  # a refusal writes nothing


async def test_refusal_reasons_come_in_the_documented_order(registry: Registry, redis_client: aioredis.Redis) -> None:
    # Make the stale rule bite on both triangles the probe will use, then hold TRI_A as "A".
    for lease_id, pairs in (("x", TRI_A), ("y", TRI_C)):
        grant = await registry.acquire(request(lease_id, pairs))
        assert await registry.release(lease_id, grant.token, last_trade_ms=5_000)
    mark = max(int(v) for v in (await redis_client.hgetall(keys.LAST_TRADE)).values())
    assert isinstance(await registry.acquire(request("A", TRI_A, notional="1")), Grant)
    await registry.set_config(paused=True, slots=1, enforce_same_quote=True, caps={"USDT": Decimal("10")})

    probe = dict(lease_id="A", pairs=TRI_A, notional="100", book_ts_ms=mark - 1000)
    steps = [
        ("paused", lambda: registry.set_config(paused=False), {}),
        ("duplicate", None, {"lease_id": "B"}),
        ("stale", None, {"book_ts_ms": mark}),  # equal to the (latest) last trade is not older
        ("no_slot", lambda: registry.set_config(slots=5), {}),
        ("triangle_busy", None, {"pairs": TRI_C}),  # TRI_C shares quote USDT and pair ETH-USDT
        ("quote_busy", lambda: registry.set_config(enforce_same_quote=False), {}),
        ("pair_busy", lambda: registry.set_config(enforce_pair=False), {}),
        ("capital_cap", None, {"notional": "9"}),  # 1 in use + 9 == cap 10 is allowed
    ]
    for reason, fix_config, fix_probe in steps:
        assert await registry.acquire(request(**probe)) == Refusal(reason)
        if fix_config is not None:
            await fix_config()
        probe.update(fix_probe)
    assert isinstance(await registry.acquire(request(**probe)), Grant)


async def test_release_frees_claims_and_capital_and_records_last_trade(registry: Registry,
                                                                       redis_client: aioredis.Redis) -> None:
    grant = await registry.acquire(request("L1", TRI_A, notional="3"))
    before = await server_ms(redis_client)
    assert await registry.release("L1", grant.token, last_trade_ms=7_000)  # the host's time is not used

    for key in (keys.LEASES, keys.LEASE_DATA, keys.CLAIM_TRI, keys.CLAIM_QUOTE, keys.CLAIM_PAIR, keys.CAPITAL):
        assert await redis_client.exists(key) == 0, key
    mark = int(await redis_client.hget(keys.LAST_TRADE, "BTC-USDT/ETH-BTC/ETH-USDT"))
    assert before <= mark <= await server_ms(redis_client)  # the Redis clock at the release

    # A release without a trade leaves the mark alone; a later trade raises it.
    grant = await registry.acquire(request("L3", TRI_A, book_ts_ms=mark))
    assert await registry.release("L3", grant.token)
    assert int(await redis_client.hget(keys.LAST_TRADE, "BTC-USDT/ETH-BTC/ETH-USDT")) == mark
    assert await registry.acquire(request("L4", TRI_A, book_ts_ms=mark - 1)) == Refusal("stale")
    assert isinstance(await registry.acquire(request("L4", TRI_A, book_ts_ms=0)), Grant)  # 0 = no book time


async def test_release_with_a_stale_or_unknown_token_changes_nothing(registry: Registry,
                                                                     redis_client: aioredis.Redis) -> None:
    grant = await registry.acquire(request("L1", TRI_A))
    before = await registry_state(redis_client)

    assert not await registry.release("L1", grant.token + 1, last_trade_ms=9_000)
    assert not await registry.release("L1", grant.token - 1, last_trade_ms=9_000)
    assert not await registry.release("nobody", grant.token, last_trade_ms=9_000)
    assert await registry_state(redis_client) == before
    assert await registry.release("L1", grant.token)
    assert not await registry.release("L1", grant.token)  # twice is a no-op too


async def test_an_old_token_cannot_release_the_same_id_regranted(redis_client: aioredis.Redis) -> None:
    # the id may be granted again only once its once-per-id marker is past the retention window
    short = Registry(redis_client, owner="a", ttl_ms=50, retention_ms=50)
    old = await short.acquire(request("L1", TRI_A))
    await wait_until_expired(redis_client, "L1")
    assert await short.sweep() == ["L1"]
    new = await short.acquire(request("L1", TRI_A))
    assert isinstance(new, Grant) and new.token > old.token

    assert not await short.release("L1", old.token)
    assert not await short.renew("L1", old.token)
    assert await redis_client.hget(keys.CLAIM_TRI, "BTC-USDT/ETH-BTC/ETH-USDT") == b"L1"


async def test_renew_extends_only_for_the_current_token(registry: Registry, redis_client: aioredis.Redis) -> None:
    short = Registry(redis_client, owner="a", ttl_ms=1_000)
    grant = await short.acquire(request("L1", TRI_A))
    first_expiry = await redis_client.zscore(keys.LEASES, "L1")

    assert await registry.renew("L1", grant.token)  # this registry's ttl is 10 s
    extended = await redis_client.zscore(keys.LEASES, "L1")
    assert extended >= first_expiry + 9_000

    assert not await registry.renew("L1", grant.token + 1)
    assert not await registry.renew("other", grant.token)
    assert await redis_client.zscore(keys.LEASES, "L1") == extended


async def test_renew_fails_once_the_lease_expired(redis_client: aioredis.Redis) -> None:
    short = Registry(redis_client, owner="a", ttl_ms=50)
    grant = await short.acquire(request("L1", TRI_A))
    await wait_until_expired(redis_client, "L1")
    assert not await short.renew("L1", grant.token)
    # Not yet swept, nobody else could have claimed it, so its holder may still release it.
    assert await short.release("L1", grant.token)


async def test_expired_leases_are_reclaimed_by_the_next_acquire(redis_client: aioredis.Redis) -> None:
    short = Registry(redis_client, owner="a", ttl_ms=50)
    await short.set_config(slots=1)
    expired = await short.acquire(request("L1", TRI_A, notional="4"))
    assert await short.acquire(request("L2", TRI_A)) == Refusal("no_slot")
    await wait_until_expired(redis_client, "L1")

    grant = await short.acquire(request("L2", TRI_B, notional="6"))
    assert grant == Grant("L2", expired.token + 1)
    assert await redis_client.hgetall(keys.CLAIM_PAIR) == {b"BTC-USDT": b"L2", b"SOL-BTC": b"L2", b"SOL-USDT": b"L2"}
    assert await redis_client.hgetall(keys.CAPITAL) == {b"USDT": b"6"}
    assert not await short.release("L1", expired.token)


async def test_sweep_drops_only_expired_leases(redis_client: aioredis.Redis) -> None:
    short = Registry(redis_client, owner="a", ttl_ms=50)
    long = Registry(redis_client, owner="b", ttl_ms=10_000)
    await short.acquire(request("S1", TRI_A, notional="1.5"))
    await long.acquire(request("L1", TRI_D, notional="2"))
    await wait_until_expired(redis_client, "S1")

    assert await short.sweep() == ["S1"]
    assert await short.sweep() == []
    assert [lease.lease_id for lease in await long.leases()] == ["L1"]
    assert await redis_client.hgetall(keys.CLAIM_TRI) == {b"XRP-USDT/XRP-KCS/KCS-USDT": b"L1"}
    assert set(await redis_client.hgetall(keys.CLAIM_PAIR)) == {b"XRP-USDT", b"XRP-KCS", b"KCS-USDT"}
    assert await redis_client.hgetall(keys.CAPITAL) == {b"USDT": b"2"}


async def test_shared_pairs_with_enforce_pair_off(registry: Registry, redis_client: aioredis.Redis) -> None:
    await registry.set_config(enforce_pair=False)
    a = await registry.acquire(request("A", TRI_A))
    b = await registry.acquire(request("B", TRI_B))
    assert isinstance(b, Grant)
    assert await redis_client.hget(keys.CLAIM_PAIR, "BTC-USDT") == b"A,B"

    await registry.set_config(enforce_pair=True)  # binds leases already held
    assert await registry.acquire(request("C", ("BTC-USDT", "ADA-BTC", "ADA-USDT"))) == Refusal("pair_busy")

    assert await registry.release("A", a.token)  # B's claim on the shared pair survives
    assert await redis_client.hget(keys.CLAIM_PAIR, "BTC-USDT") == b"B"
    assert await registry.acquire(request("C", ("BTC-USDT", "ADA-BTC", "ADA-USDT"))) == Refusal("pair_busy")
    assert await registry.acquire(request("C", TRI_C)) == Grant("C", 3)  # ETH-USDT was only A's


async def test_capital_is_exact_in_decimals(registry: Registry, redis_client: aioredis.Redis) -> None:
    await registry.set_config(caps={"USDT": Decimal("0.3")})
    first = await registry.acquire(request("A", TRI_A, notional="0.1"))
    # In doubles 0.1 + 0.2 = 0.30000000000000004 > 0.3: an inexact compare would refuse this.
    second = await registry.acquire(request("B", TRI_D, notional="0.2"))
    assert isinstance(second, Grant)
    assert await redis_client.hget(keys.CAPITAL, "USDT") == b"0.3"
    assert await registry.acquire(request("C", (), triangle="tiny", notional="0.000000000000000001")) == Refusal(
        "capital_cap")
    assert await registry.release("A", first.token)
    assert await redis_client.hget(keys.CAPITAL, "USDT") == b"0.2"
    assert await registry.release("B", second.token)
    assert await redis_client.hexists(keys.CAPITAL, "USDT") == 0

    # Far beyond 2^53 with 18 places, still exact.
    big_cap = Decimal("123456789012345678901.000000000000000002")
    await registry.set_config(caps={"USDT": big_cap})
    assert isinstance(await registry.acquire(request("D", TRI_A, notional="123456789012345678900")), Grant)
    assert await registry.acquire(request("E", TRI_D, notional="1.000000000000000003")) == Refusal("capital_cap")
    assert isinstance(await registry.acquire(request("E", TRI_D, notional="1.000000000000000002")), Grant)
    assert Decimal((await redis_client.hget(keys.CAPITAL, "USDT")).decode()) == big_cap


@pytest.mark.parametrize(("first", "second", "total"), [
    ("0.5", "0.5", "1"),
    ("999999999.999999999999999999", "0.000000000000000001", "1000000000"),
    ("1000000000", "0.000000000000000001", "1000000000.000000000000000001"),
    ("0.999999999", "0.000000001", "1"),
    ("0", "0", None),
])
async def test_capital_carries_and_borrows_across_digit_groups(registry: Registry, redis_client: aioredis.Redis,
                                                               first: str, second: str, total: str | None) -> None:
    a = await registry.acquire(request("A", TRI_A, notional=first))
    await registry.acquire(request("B", TRI_D, notional=second))
    assert await redis_client.hget(keys.CAPITAL, "USDT") == (total.encode() if total else None)
    assert await registry.release("A", a.token)
    left = await redis_client.hget(keys.CAPITAL, "USDT")
    assert Decimal(left.decode() if left else "0") == Decimal(second)


async def test_capital_in_use_matches_decimal_sums(registry: Registry, redis_client: aioredis.Redis) -> None:
    rng = random.Random(7)
    await registry.set_config(slots=100, enforce_pair=False)
    notionals = {f"L{i}": Decimal(rng.randrange(0, 10**12)).scaleb(-rng.randrange(0, 19)) for i in range(40)}
    tokens = {}
    for lease_id, notional in notionals.items():
        grant = await registry.acquire(request(lease_id, (), triangle=lease_id, notional=format(notional, "f")))
        tokens[lease_id] = grant.token
    assert Decimal((await redis_client.hget(keys.CAPITAL, "USDT")).decode()) == exact_sum(notionals.values())

    remaining = list(notionals)
    rng.shuffle(remaining)
    while remaining:
        lease_id = remaining.pop()
        assert await registry.release(lease_id, tokens[lease_id])
        expected = exact_sum(notionals[other] for other in remaining)
        stored = await redis_client.hget(keys.CAPITAL, "USDT")
        assert (Decimal(stored.decode()) if stored is not None else Decimal(0)) == expected
    assert await redis_client.hexists(keys.CAPITAL, "USDT") == 0


async def test_caps_apply_per_quote(registry: Registry) -> None:
    await registry.set_config(caps={"BTC": Decimal("0.5")})
    assert isinstance(await registry.acquire(request("U", TRI_A, quote="USDT", notional="1000")), Grant)
    assert await registry.acquire(request("B", TRI_D, quote="BTC", notional="0.6")) == Refusal("capital_cap")
    assert isinstance(await registry.acquire(request("B", TRI_D, quote="BTC", notional="0.5")), Grant)



async def test_config_written_with_plain_hset_applies_at_once(registry: Registry, redis_client: aioredis.Redis) -> None:
    await redis_client.hset(keys.CONFIG, "paused", "1")
    assert await registry.acquire(request("A", TRI_A)) == Refusal("paused")
    await redis_client.hset(keys.CONFIG, "paused", "yes")  # a typo errs towards paused
    assert await registry.acquire(request("A", TRI_A)) == Refusal("paused")
    await redis_client.hset(keys.CONFIG, "paused", "0")
    assert isinstance(await registry.acquire(request("A", TRI_A)), Grant)

    await redis_client.hset(keys.CONFIG, "slots", "1")
    assert await registry.acquire(request("B", TRI_D)) == Refusal("no_slot")
    await redis_client.hset(keys.CONFIG, "slots", "2")
    await redis_client.hset(keys.CONFIG, "cap:USDT", "15.5")
    assert await registry.acquire(request("B", TRI_D, notional="5.51")) == Refusal("capital_cap")
    assert isinstance(await registry.acquire(request("B", TRI_D, notional="5.5")), Grant)
    assert (await registry.config()).caps == {"USDT": Decimal("15.5")}


async def test_malformed_config_fails_closed_with_a_named_error(registry: Registry,
                                                                redis_client: aioredis.Redis) -> None:
    await redis_client.hset(keys.CONFIG, "slots", "lots")
    refusal = await registry.acquire(request("A", TRI_A))
    assert isinstance(refusal, Refusal) and refusal.reason == "bad_config"
    assert "field slots" in refusal.detail and '"lots"' in refusal.detail
    with pytest.raises(ValueError, match="slots"):
        await registry.config()
    await redis_client.hdel(keys.CONFIG, "slots")
    await redis_client.hset(keys.CONFIG, "cap:USDT", "1e3")
    refusal = await registry.acquire(request("A", TRI_A))
    assert isinstance(refusal, Refusal) and refusal.reason == "bad_config"
    assert "field cap:USDT" in refusal.detail and '"1e3"' in refusal.detail
    with pytest.raises(ValueError, match="cap:USDT"):
        await registry.config()
    assert await redis_client.exists(keys.LEASES) == 0




async def test_bad_notionals_are_rejected_before_redis(registry: Registry, redis_client: aioredis.Redis) -> None:
    for notional in ("-1", "NaN", "Infinity", "0.0000000000000000001"):
        with pytest.raises(ValueError):
            await registry.acquire(request("A", TRI_A, notional=notional))
    # Trailing zeros past 18 places carry no value and are accepted; an exponent is written out.
    assert isinstance(await registry.acquire(request("A", TRI_A, notional="1.50000000000000000000000")), Grant)
    assert isinstance(await registry.acquire(request("B", TRI_D, notional="2E+3")), Grant)
    assert await redis_client.hget(keys.CAPITAL, "USDT") == b"2001.5"


async def test_scripts_reload_after_script_flush(registry: Registry, redis_client: aioredis.Redis) -> None:
    first = await registry.acquire(request("A", TRI_A))
    await redis_client.script_flush()
    assert await registry.renew("A", first.token)
    await redis_client.script_flush()
    assert await registry.acquire(request("B", TRI_D)) == Grant("B", first.token + 1)
    await redis_client.script_flush()
    assert await registry.release("A", first.token)
    await redis_client.script_flush()
    assert await registry.sweep() == []


async def test_works_with_a_decoding_client(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        registry = Registry(client, owner="o", ttl_ms=50)
        await registry.set_config(caps={"USDT": Decimal("5")})
        grant = await registry.acquire(request("A", TRI_A, notional="2"))
        assert await registry.acquire(request("B", TRI_B)) == Refusal("pair_busy")
        assert (await registry.config()).caps == {"USDT": Decimal("5")}
        [lease] = await registry.leases()
        assert (lease.lease_id, lease.token, lease.notional) == ("A", grant.token, Decimal("2"))
        await wait_until_expired(client, "A")
        assert await registry.sweep() == ["A"]
    finally:
        await client.aclose()


async def test_lease_record_is_readable_json(registry: Registry, redis_client: aioredis.Redis) -> None:
    await registry.acquire(request("A", TRI_A, notional="7.25"))
    record = json.loads(await redis_client.hget(keys.LEASE_DATA, "A"))
    assert {k: record[k] for k in ("token", "triangle", "quote", "pairs", "notional", "owner")} == {
        "token": "1", "triangle": "BTC-USDT/ETH-BTC/ETH-USDT", "quote": "USDT",
        "pairs": "BTC-USDT,ETH-BTC,ETH-USDT", "notional": "7.25", "owner": "host-1:42"}


async def test_a_correlation_id_runs_once_and_a_repeat_names_its_first_outcome(
        registry: Registry, redis_client: aioredis.Redis) -> None:
    grant = await registry.acquire(request("L1", TRI_A))
    assert isinstance(grant, Grant)
    running = await registry.acquire(request("L1", TRI_B))
    assert running == Refusal("duplicate") and running.detail == "running"
    assert await registry.release("L1", grant.token, outcome="filled")
    again = await registry.acquire(request("L1", TRI_B))  # finished, claims all free: still refused
    assert again == Refusal("duplicate") and again.detail == "filled"
    assert 0 < await redis_client.pttl(keys.seen_key("L1")) <= 86_400_000  # the default retention: a day
    # a grant that was never dispatched (released without an outcome) leaves the id free to come again
    unsent = await registry.acquire(request("L2", TRI_A))
    assert await registry.release("L2", unsent.token)
    assert isinstance(await registry.acquire(request("L2", TRI_A)), Grant)
