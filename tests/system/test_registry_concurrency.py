"""Two OS processes hammer one registry while an independent checker watches it.

Each spawned process runs many coroutines that acquire, renew and release leases on a small set
of overlapping triangles, try stale tokens and duplicate ids, and let some leases expire. The
checker (this process) repeatedly runs one Lua script that atomically snapshots the registry and
may flip the config. Because it records the token counter at every flip, it knows the config in
force when each lease was granted (tokens after a flip were issued under it). A lease stored in a
snapshot was live when every later-token lease in the same snapshot was granted (an acquire
drops expired leases first), so each snapshot lets the checker verify, per grant: not paused,
fewer than `slots` earlier leases, distinct triangles, disjoint pairs / distinct quotes when
enforced, capital within the cap; and that claims and capital in use match the leases exactly.
"""

from __future__ import annotations

import asyncio
import functools
import json
import multiprocessing
import random
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Context, Decimal
from multiprocessing.connection import Connection
from typing import Any

import redis.asyncio as aioredis

from shared.store import keys
from shared.store.registry import Grant, LeaseRequest, Registry

HAMMER_S = 3.0
COROUTINES_PER_PROCESS = 12
NORMAL_TTL_MS = 2_000  # far above any hold, so renew/release of a held lease must succeed
SHORT_TTL_MS = 20  # leases meant to expire
TRIANGLES = (
    ("T1", "USDT", ("BTC-USDT", "ETH-BTC", "ETH-USDT")),
    ("T2", "USDT", ("BTC-USDT", "SOL-BTC", "SOL-USDT")),
    ("T3", "USDT", ("ETH-USDT", "KCS-ETH", "KCS-USDT")),
    ("T4", "USDT", ("XRP-USDT", "XRP-BTC", "BTC-USDT")),
    ("T5", "USDT", ("TRX-USDT", "TRX-KCS", "KCS-USDT")),
    ("T6", "BTC", ("ETH-BTC", "KCS-ETH", "KCS-BTC")),
    ("T7", "BTC", ("SOL-BTC", "SOL-ETH", "ETH-BTC")),
    ("T8", "BTC", ("ADA-BTC", "ADA-KCS", "KCS-BTC")),
)
SCRIPT_KEYS = [keys.CONFIG, keys.LEASES, keys.LEASE_DATA, keys.CLAIM_TRI, keys.CLAIM_QUOTE, keys.CLAIM_PAIR,
               keys.CAPITAL, keys.LAST_TRADE, keys.TOKEN]
EXACT = Context(prec=80)

# Atomic snapshot, then (optionally) a config change; returns the token counter at that moment.
CHECK_AND_FLIP_LUA = """
local snapshot = {
  tonumber(redis.call('GET', KEYS[9]) or '0'),
  redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  redis.call('HGETALL', KEYS[5]),
  redis.call('HGETALL', KEYS[6]),
  redis.call('HGETALL', KEYS[7]),
}
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return snapshot
"""


# ---------------------------------------------------------------- the hammering processes

async def server_ms(client: aioredis.Redis) -> int:
    seconds, micros = await client.time()
    return seconds * 1000 + micros // 1000


async def _expire_and_sweep(client: aioredis.Redis, registry: Registry, lease_id: str) -> None:
    """Wait on the server clock until the lease expired, then make sure it is dropped."""
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        expires_ms = await client.zscore(keys.LEASES, lease_id)
        if expires_ms is None or await server_ms(client) > expires_ms:
            await registry.sweep()
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"{lease_id} never expired")


async def _hammer_coroutine(name: str, rng: random.Random, client: aioredis.Redis, normal: Registry,
                            short: Registry, stop_at: float, stats: Counter[str], violations: list[str]) -> None:
    serial = 0
    while time.monotonic() < stop_at:
        serial += 1
        lease_id = f"{name}-{serial}"
        triangle_id, quote, pairs = rng.choice(TRIANGLES)
        notional = Decimal(rng.randrange(1, 4_000)).scaleb(-2)
        lease = LeaseRequest(lease_id, triangle_id, quote, pairs, notional, 0)
        path = rng.random()
        registry = normal if path < 0.8 else short
        result = await registry.acquire(lease)
        if not isinstance(result, Grant):
            stats["refused:" + result.reason] += 1
            await asyncio.sleep(rng.uniform(0, 0.002))  # back off like a supervisor between signals
            continue
        stats["granted"] += 1
        token = result.token
        if path < 0.8:
            if rng.random() < 0.2:
                again = await normal.acquire(lease)
                if isinstance(again, Grant) or again.reason not in ("duplicate", "paused"):
                    violations.append(f"{lease_id}: second acquire of a live id gave {again}")
                stats["duplicate_tried"] += 1
            await asyncio.sleep(rng.uniform(0, 0.004))  # the execution
            if await normal.renew(lease_id, token + 1) or await normal.release(lease_id, token - 1):
                violations.append(f"{lease_id}: a wrong token renewed or released")
            stats["wrong_token_refused"] += 1
            if not await normal.renew(lease_id, token):
                violations.append(f"{lease_id}: renew of a held lease failed")
            if not await normal.release(lease_id, token, last_trade_ms=0):
                violations.append(f"{lease_id}: release of a held lease failed")
        elif path < 0.9:
            await _expire_and_sweep(client, short, lease_id)
            if await short.release(lease_id, token) or await short.renew(lease_id, token):
                violations.append(f"{lease_id}: a reclaimed lease's token still released or renewed")
            stats["reclaimed_then_refused"] += 1
        else:
            stats["abandoned"] += 1  # left to expire; someone else's acquire or sweep reclaims it


async def _hammer(redis_url: str, index: int, seconds: float, conn: Connection, go: Any) -> None:
    client = aioredis.Redis.from_url(redis_url)
    normal = Registry(client, owner=f"proc{index}", ttl_ms=NORMAL_TTL_MS)
    short = Registry(client, owner=f"proc{index}", ttl_ms=SHORT_TTL_MS)
    await client.ping()
    conn.send("ready")
    go.wait(30)
    stats: Counter[str] = Counter()
    violations: list[str] = []
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(
        _hammer_coroutine(f"p{index}c{n}", random.Random(index * 1000 + n), client, normal, short, stop_at,
                          stats, violations)
        for n in range(COROUTINES_PER_PROCESS)
    ))
    await client.aclose()
    conn.send({"stats": dict(stats), "violations": violations})


def hammer_process(redis_url: str, index: int, seconds: float, conn: Connection, go: Any) -> None:
    """Entry point of a spawned process."""
    asyncio.run(_hammer(redis_url, index, seconds, conn, go))
    conn.close()


# ---------------------------------------------------------------- the checker

@dataclass(frozen=True)
class StoredLease:
    lease_id: str
    token: int
    triangle: str
    quote: str
    pairs: frozenset[str]
    notional: Decimal


def _as_dict(flat: list[bytes]) -> dict[str, str]:
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


def _holders(claims: dict[str, str]) -> dict[str, list[str]]:
    return {thing: holders.split(",") for thing, holders in claims.items()}


class Checker:
    """Keeps the flip history and verifies every snapshot against it."""

    def __init__(self, client: aioredis.Redis, rng: random.Random) -> None:
        self._script = client.register_script(CHECK_AND_FLIP_LUA)
        self._rng = rng
        self.flips: list[tuple[int, dict[str, str]]] = []
        self.snapshots = 0
        self.violations: list[str] = []

    def _random_config(self) -> dict[str, str]:
        rng = self._rng
        return {
            "paused": "1" if rng.random() < 0.1 else "0",
            "slots": str(rng.choice((1, 2, 3, 5, 8))),
            "enforce_same_quote": "1" if rng.random() < 0.3 else "0",
            "enforce_pair": "0" if rng.random() < 0.3 else "1",
            "cap:USDT": rng.choice(("", "40", "75.5", "20.25")),
            "cap:BTC": rng.choice(("", "30.25", "55")),
        }

    async def check(self, flip: bool) -> None:
        config = self._random_config() if flip or not self.flips else None
        args = [item for field_value in (config or {}).items() for item in field_value]
        counter, expiries, records, tri, quote, pair, capital = await self._script(SCRIPT_KEYS, args)
        self.snapshots += 1
        self._verify(_as_dict(expiries), _as_dict(records), _as_dict(tri), _as_dict(quote), _as_dict(pair),
                     _as_dict(capital))
        if config is not None:
            self.flips.append((counter, config))

    def _config_at(self, token: int) -> dict[str, str]:
        config = self.flips[0][1]
        for counter, flipped in self.flips:
            if counter < token:
                config = flipped
        return config

    def _verify(self, expiries: dict[str, str], records: dict[str, str], tri: dict[str, str],
                quote: dict[str, str], pair: dict[str, str], capital: dict[str, str]) -> None:
        problems = self.violations
        if set(expiries) != set(records):
            problems.append(f"zset and records disagree: {sorted(expiries)} vs {sorted(records)}")
        leases = []
        for lease_id, raw in records.items():
            record = json.loads(raw)
            leases.append(StoredLease(lease_id, int(record["token"]), record["triangle"], record["quote"],
                                      frozenset(record["pairs"].split(",")), Decimal(record["notional"])))
        leases.sort(key=lambda lease: lease.token)
        for position, later in enumerate(leases):
            config = self._config_at(later.token)
            earlier = leases[:position]
            if config["paused"] == "1":
                problems.append(f"{later.lease_id} granted while paused")
            if len(earlier) >= int(config["slots"]):
                problems.append(f"{later.lease_id} granted with {len(earlier)} leases live, slots {config['slots']}")
            for other in earlier:
                if other.triangle == later.triangle:
                    problems.append(f"{other.lease_id} and {later.lease_id} share triangle {later.triangle}")
                if config["enforce_pair"] == "1" and other.pairs & later.pairs:
                    problems.append(f"{other.lease_id} and {later.lease_id} share pairs under enforce_pair")
                if config["enforce_same_quote"] == "1" and other.quote == later.quote:
                    problems.append(f"{other.lease_id} and {later.lease_id} share a quote under enforce_same_quote")
            cap = config[f"cap:{later.quote}"]
            if cap:
                in_use = functools.reduce(EXACT.add, (o.notional for o in earlier if o.quote == later.quote),
                                          later.notional)
                if in_use > Decimal(cap):
                    problems.append(f"{later.lease_id} took {in_use} {later.quote} in use over cap {cap}")
        expected_tri = {lease.triangle: [lease.lease_id] for lease in leases}
        expected_quote: dict[str, list[str]] = {}
        expected_pair: dict[str, list[str]] = {}
        expected_capital: dict[str, Decimal] = {}
        for lease in leases:
            expected_quote.setdefault(lease.quote, []).append(lease.lease_id)
            for symbol in lease.pairs:
                expected_pair.setdefault(symbol, []).append(lease.lease_id)
            expected_capital[lease.quote] = EXACT.add(expected_capital.get(lease.quote, Decimal(0)), lease.notional)
        for name, stored, expected in (("triangle", tri, expected_tri), ("quote", quote, expected_quote),
                                       ("pair", pair, expected_pair)):
            got = {thing: sorted(ids) for thing, ids in _holders(stored).items()}
            if got != {thing: sorted(ids) for thing, ids in expected.items()}:
                problems.append(f"{name} claims {got} do not match the leases {expected}")
        if {q: Decimal(v) for q, v in capital.items()} != {q: v for q, v in expected_capital.items() if v}:
            problems.append(f"capital {capital} does not match the leases {expected_capital}")


async def test_two_processes_never_break_isolation(redis_url: str, redis_client: aioredis.Redis) -> None:
    checker = Checker(redis_client, random.Random(99))
    await checker.check(flip=True)  # the initial config, at token counter 0

    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    children = []
    for index in range(2):
        receiver, sender = spawn.Pipe(duplex=False)
        process = spawn.Process(target=hammer_process, args=(redis_url, index, HAMMER_S, sender, go), daemon=True)
        process.start()
        sender.close()
        children.append((process, receiver))
    loop = asyncio.get_running_loop()
    try:
        for _, receiver in children:
            assert await asyncio.wait_for(loop.run_in_executor(None, receiver.recv), 30) == "ready"
        go.set()
        results = asyncio.gather(*(loop.run_in_executor(None, receiver.recv) for _, receiver in children))
        rng = random.Random(5)
        deadline = time.monotonic() + HAMMER_S + 20
        while not results.done():
            assert time.monotonic() < deadline, "hammering processes did not finish"
            await checker.check(flip=rng.random() < 0.2)
            await asyncio.sleep(0.002)  # pacing: leave CPU to the hammering processes
        outcomes = await results
    finally:
        for process, _ in children:
            process.join(5)
            if process.is_alive():
                process.kill()
    await checker.check(flip=False)

    stats: Counter[str] = Counter()
    for outcome in outcomes:
        assert outcome["violations"] == []
        stats.update(outcome["stats"])
    assert checker.violations == []
    # The run really exercised contention, fencing, expiry and config flips.
    assert checker.snapshots >= 100 and len(checker.flips) >= 20, (checker.snapshots, len(checker.flips))
    assert stats["granted"] >= 200, stats
    for key in ("refused:triangle_busy", "refused:pair_busy", "refused:no_slot", "refused:paused",
                "duplicate_tried", "wrong_token_refused", "reclaimed_then_refused", "abandoned"):
        assert stats[key] > 0, (key, stats)

    # Everything left is an abandoned short lease: once expired, a sweep must leave nothing behind.
    registry = Registry(redis_client, owner="checker")
    leftovers = await registry.leases()
    assert all(lease.expires_ms - lease.started_ms == SHORT_TTL_MS for lease in leftovers), leftovers
    deadline = time.monotonic() + 3
    while leftovers and await server_ms(redis_client) <= max(lease.expires_ms for lease in leftovers):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    await registry.sweep()
    for key in (keys.LEASES, keys.LEASE_DATA, keys.CLAIM_TRI, keys.CLAIM_QUOTE, keys.CLAIM_PAIR, keys.CAPITAL):
        assert await redis_client.exists(key) == 0, key
