"""`WorkerPool.pick()`: the least-loaded ready worker, with ties shared out rather than piled on one."""

from __future__ import annotations

from collections import Counter
from shared.settings import load_settings
from supervisor.dispatch import WorkerHandle, WorkerPool


def _pool(count: int, ready: set[int] | None = None) -> WorkerPool:
    pool = WorkerPool(settings=load_settings(env={}), count=count, host="127.0.0.1", on_done=lambda _: None, on_lost=None)
    for index in range(count):
        handle = WorkerHandle(index=index, process=None, channel=None)  # type: ignore[arg-type]
        if ready is None or index in ready:
            handle.ready.set()
        pool._workers[index] = handle
    return pool


def _serial_picks(pool: WorkerPool, jobs: int) -> Counter[int]:
    """Each job finishes before the next arrives (the 200/s case): every pick is a tie."""
    counts: Counter[int] = Counter()
    for _ in range(jobs):
        worker = pool.pick()
        assert worker is not None
        counts[worker.index] += 1
    return counts


def test_idle_workers_share_serial_jobs_evenly() -> None:
    assert _serial_picks(_pool(2), 1000) == Counter({0: 500, 1: 500})
    assert _serial_picks(_pool(3), 999) == Counter({0: 333, 1: 333, 2: 333})


def test_least_loaded_still_wins_over_rotation() -> None:
    pool = _pool(3)
    pool._workers[0].in_flight["a"] = None
    pool._workers[2].in_flight["b"] = None
    picks = [pool.pick() for _ in range(4)]
    assert [w.index for w in picks if w is not None] == [1, 1, 1, 1]


def test_ties_rotate_among_the_least_loaded_only() -> None:
    pool = _pool(3)
    pool._workers[1].in_flight["busy"] = None
    assert _serial_picks(pool, 100) == Counter({0: 50, 2: 50})


def test_workers_not_ready_are_skipped_and_none_when_none_is() -> None:
    assert _serial_picks(_pool(3, ready={0, 2}), 10) == Counter({0: 5, 2: 5})
    assert _pool(2, ready=set()).pick() is None


def test_concurrent_jobs_balance_in_flight_counts() -> None:
    """Jobs that overlap: each new one goes to the least loaded, so counts never differ by > 1."""
    pool = _pool(2)
    for n in range(10):
        worker = pool.pick()
        assert worker is not None
        worker.in_flight[str(n)] = None
        loads = [w.load for w in pool.workers]
        assert max(loads) - min(loads) <= 1


def test_sharded_routing_spills_a_busy_home_to_the_least_loaded_worker() -> None:
    pool = _pool(3)
    pool._settings = load_settings(env={}, routing="shard", shard_spill=2)
    triangle = "ADA-USDT,ADA-BTC,BTC-USDT"
    home = pool.pick(triangle)
    assert home is not None and pool.pick(triangle) is home  # idle: always home
    home.in_flight.update({"a": None, "b": None})
    others = [w for w in pool._workers.values() if w is not home]
    others[0].in_flight["c"] = None
    assert pool.pick(triangle) is others[1]
    assert pool.pick(None) is others[1]  # no triangle: least-loaded
