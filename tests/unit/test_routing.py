"""`supervisor.routing`: the sharded worker choice, on plain pool members (least-loaded: test_dispatch_pick)."""

from __future__ import annotations

from collections import Counter

from shared.pool import Member
from supervisor.routing import shard_choice, shard_home


def members(*loads: int) -> list[Member]:
    return [Member(index=i, in_flight={f"j{i}-{n}": None for n in range(load)}) for i, load in enumerate(loads)]


TRIANGLES = [f"A{i}-USDT,A{i}-BTC,BTC-USDT" for i in range(200)]


def test_no_ready_worker_has_no_shard() -> None:
    assert shard_choice([], "t", 2) is None


def test_shard_keeps_each_triangle_on_one_worker_whatever_the_loads() -> None:
    pool = members(0, 0, 0, 0)
    homes = {t: shard_choice(pool, t, 2).index for t in TRIANGLES}
    for worker, load in ((0, 1), (1, 0), (2, 1), (3, 0)):  # below the spill threshold, loads do not matter
        pool[worker].in_flight = {f"x{n}": None for n in range(load)}
    assert {t: shard_choice(pool, t, 2).index for t in TRIANGLES} == homes
    assert min(Counter(homes.values()).values()) > 30  # 200 triangles spread over all 4 (50 each on average)
    assert shard_choice(pool, TRIANGLES[0], 2) is shard_home(pool, TRIANGLES[0])


def test_a_busy_home_is_passed_over() -> None:
    pool = members(0, 0, 0)
    home = shard_home(pool, TRIANGLES[0]).index
    pool[home].in_flight = {"a": None, "b": None}
    assert shard_choice(pool, TRIANGLES[0], 2) is None
    assert shard_choice(pool, TRIANGLES[0], 3).index == home  # a higher threshold keeps it home


def test_a_dead_worker_moves_only_its_own_triangles() -> None:
    pool = members(0, 0, 0, 0)
    before = {t: shard_choice(pool, t, 2).index for t in TRIANGLES}
    survivors = [m for m in pool if m.index != 2]
    after = {t: shard_choice(survivors, t, 2).index for t in TRIANGLES}
    assert all(after[t] == before[t] for t in TRIANGLES if before[t] != 2)
    assert all(after[t] != 2 for t in TRIANGLES)
