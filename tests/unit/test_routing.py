"""`supervisor.routing`: least-loaded and sharded worker choice, on plain pool members."""

from __future__ import annotations

from collections import Counter

from shared.pool import Member
from supervisor.routing import route, shard_home


def members(*loads: int) -> list[Member]:
    return [Member(index=i, in_flight={f"j{i}-{n}": None for n in range(load)}) for i, load in enumerate(loads)]


TRIANGLES = [f"A{i}-USDT,A{i}-BTC,BTC-USDT" for i in range(200)]


def test_least_loaded_takes_the_emptiest_and_ties_go_to_the_lowest_index() -> None:
    pool = members(2, 1, 1, 3)
    assert route(pool, "t", "least_loaded", 2).index == 1
    assert route(members(0, 0), "t", "least_loaded", 2).index == 0
    assert route([], "t", "shard", 2) is None and route([], None, "least_loaded", 2) is None


def test_shard_keeps_each_triangle_on_one_worker_whatever_the_loads() -> None:
    pool = members(0, 0, 0, 0)
    homes = {t: route(pool, t, "shard", 2).index for t in TRIANGLES}
    for worker, load in ((0, 1), (1, 0), (2, 1), (3, 0)):  # below the spill threshold, loads do not matter
        pool[worker].in_flight = {f"x{n}": None for n in range(load)}
    assert {t: route(pool, t, "shard", 2).index for t in TRIANGLES} == homes
    assert min(Counter(homes.values()).values()) > 30  # 200 triangles spread over all 4 (50 each on average)
    assert route(pool, TRIANGLES[0], "shard", 2) is shard_home(pool, TRIANGLES[0])


def test_a_busy_home_spills_to_the_least_loaded_worker() -> None:
    pool = members(0, 0, 0)
    home = shard_home(pool, TRIANGLES[0]).index
    pool[home].in_flight = {"a": None, "b": None}
    others = [m for m in pool if m.index != home]
    others[0].in_flight = {"c": None}
    assert route(pool, TRIANGLES[0], "shard", 2) is others[1]
    assert route(pool, TRIANGLES[0], "shard", 3).index == home  # a higher threshold keeps it home


def test_a_dead_worker_moves_only_its_own_triangles() -> None:
    pool = members(0, 0, 0, 0)
    before = {t: route(pool, t, "shard", 2).index for t in TRIANGLES}
    survivors = [m for m in pool if m.index != 2]
    after = {t: route(survivors, t, "shard", 2).index for t in TRIANGLES}
    assert all(after[t] == before[t] for t in TRIANGLES if before[t] != 2)
    assert all(after[t] != 2 for t in TRIANGLES)


def test_shard_without_a_triangle_falls_back_to_least_loaded() -> None:
    assert route(members(1, 0), None, "shard", 2).index == 1
