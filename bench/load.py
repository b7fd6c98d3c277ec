"""Load: several supervisors × several workers on one Redis, as many signals as they sustain.

    python -m bench.load [--signals 100000] [--supervisors 2] [--workers 2] [--json out.json]

Each `trident run` is its own process tree on one private Redis and one simulator process (the
`bench.stack` pieces); signals over the benchmark markets' triangles are written as fast as the
supervisors read them, over two connections each. At the end it checks, independently of
Trident's own bookkeeping:

- isolation, from the simulator's order log alone: an execution's legs reach the exchange
  between its first order's arrival and its last order's arrival plus the simulator's latency
  (it answers no sooner), so two executions of one triangle whose such spans overlap were in
  flight together — a violation. The spans are lower bounds, so a reported violation is real.
  The most spans in flight at once must not exceed the registry's slots either;
- nothing executed twice (each clientOid once in the log), one report per admitted signal,
  no duplicate report (by correlation id);
- no lease left in the registry once everything is idle;
- memory: each supervisor's and worker's RSS at the end against a sample taken once 10% of
  the signals were sent (after warm-up), growth in percent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import redis.asyncio as aioredis

from bench.latency import load_markets
from bench.stack import Stack, SupervisorProcess, open_stack, status_counts
from shared.codec import encode_frame
from shared.store import keys
from shared.store.registry import Registry
from tools.send import send_frames
from tools.synthetic import synthetic_signals

__all__ = ["isolation_check", "run_load", "main"]

BOOK_AHEAD_MS = 600_000  # a backlog built by a saturating sender must not be refused as stale
CONNECTIONS_PER_SUPERVISOR = 2
_SIGNAL_POOL = 2000  # distinct signal bodies, cycled under fresh correlation ids


class _Supervisor(SupervisorProcess):
    """A `trident run` with its own socket path (the stack's default is one path for one supervisor)."""

    def __init__(self, stack: Stack, workers: int, index: int) -> None:
        stack_for_me = Stack(stack.workdir / f"sup{index}", stack.redis, stack.redis_pid, stack.sim_url,
                             stack.simulator)
        stack_for_me.workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(stack_for_me, workers, book_skew_ms=2 * BOOK_AHEAD_MS)  # its books are stamped ahead


def isolation_check(entries: Sequence[dict[str, Any]], latency_ms: float) -> dict[str, int]:
    """Violations and peak concurrency from the order log (see the module docstring)."""
    legs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        if not entry.get("client_oid"):  # a worker's keep-alive order test carries none
            continue
        legs[entry["client_oid"].rsplit("-", 1)[0]].append(entry)
    latency_ns = int(latency_ms * 1e6)
    spans: dict[frozenset[str], list[tuple[int, int]]] = defaultdict(list)
    for orders in legs.values():
        arrivals = [order["arrival_ns"] for order in orders]
        spans[frozenset(order["symbol"] for order in orders)].append((min(arrivals), max(arrivals) + latency_ns))
    violations = 0
    for triangle_spans in spans.values():
        triangle_spans.sort()
        end = -1
        for start, stop in triangle_spans:
            violations += start < end
            end = max(end, stop)
    events = sorted((t, step) for s in spans.values() for start, stop in s for t, step in ((start, 1), (stop, -1)))
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return {"executions": len(legs), "triangles": len(spans), "violations": violations, "peak_in_flight": peak,
            "client_oids_repeated": sum(n > 1 for n in Counter(e["client_oid"] for e in entries if e.get("client_oid")).values())}


def _frames(pool: Sequence[dict[str, Any]], start: int, step: int, count: int) -> Iterator[bytes]:
    for index in range(start, count, step):
        yield encode_frame({**pool[index % len(pool)], "correlation_id": f"load-{index:07d}"})


def _rss_mb(pids: Sequence[int]) -> dict[int, float]:
    sizes = {}
    for pid in pids:
        try:
            sizes[pid] = psutil.Process(pid).memory_info().rss / 2**20
        except psutil.Error:
            continue
    return sizes


async def run_load(signals: int, supervisors: int, workers: int, coins: int, slots: int,
                   latency_ms: float) -> dict[str, Any]:
    os.environ["TRIDENT_REPORT_MAXLEN"] = str(2 * signals)  # the supervisors inherit it: keep every report
    async with open_stack(coins) as stack:
        redis = aioredis.Redis.from_url(stack.redis.url)
        registry = Registry(redis, owner="bench")
        await registry.set_config(slots=slots, enforce_pair=False)
        async with aiohttp.ClientSession() as http:
            async with http.post(stack.sim_url + "/_sim/knobs", json={"latency_ms": latency_ms}) as answer:
                answer.raise_for_status()
        markets = await load_markets(stack.sim_url)
        pool = synthetic_signals(markets, _SIGNAL_POOL, now_ms=int(time.time() * 1000) + BOOK_AHEAD_MS)
        fleet = [_Supervisor(stack, workers, index) for index in range(supervisors)]
        try:
            for supervisor in fleet:
                await supervisor.wait_ready(redis)
            pids = [pid for s in fleet for pid in (s.pid, *s.worker_pids())]
            sent: list[list[int]] = []
            streams = []
            connections = supervisors * CONNECTIONS_PER_SUPERVISOR
            for index in range(connections):
                sent.append([])
                streams.append((fleet[index % supervisors].socket_path, _frames(pool, index, connections, signals)))
            warm: dict[int, float] = {}

            async def sample_when_warm() -> None:
                while sum(map(len, sent)) < signals // 10:
                    await asyncio.sleep(0.05)
                warm.update(_rss_mb(pids))

            sampler = asyncio.create_task(sample_when_warm())
            started_ms = int(time.time() * 1000)
            started = time.perf_counter()
            await asyncio.gather(*(send_frames(path, frames, progress=False, on_sent=sent[i])
                                   for i, (path, frames) in enumerate(streams)))
            send_s = time.perf_counter() - started
            await sampler
            per_supervisor = [0] * supervisors
            for index in range(connections):
                per_supervisor[index % supervisors] += len(range(index, signals, connections))
            statuses = [await s.wait_drained(redis, n, timeout_s=600) for s, n in zip(fleet, per_supervisor)]
            leases = await _leases_after_release(registry)
            final = _rss_mb(pids)
            admitted = sum(status_counts(s)[0] for s in statuses)
            refused: Counter[str] = Counter()
            for status in statuses:
                refused.update(status_counts(status)[1])
            reports = [fields for _, fields in await redis.xrange(keys.REPORTS)]
            report_ids = [fields[b"correlation_id"] for fields in reports]
            outcomes = Counter(fields[b"status"].decode() for fields in reports)
            busy_s = (max((int(f[b"ts_ms"]) for f in reports), default=started_ms) - started_ms) / 1000
        finally:
            for supervisor in fleet:
                supervisor.stop()
        async with aiohttp.ClientSession() as http:
            async with http.get(stack.sim_url + "/_sim/orders") as answer:
                entries = await answer.json()
        await redis.aclose()
    growth = {pid: round((final[pid] - warm[pid]) / warm[pid] * 100, 2) for pid in final if pid in warm}
    return {
        "signals": signals, "supervisors": supervisors, "workers_each": workers, "slots": slots,
        "triangles_offered": len({frozenset(s["triangle_key"]) for s in pool}), "sim_latency_ms": latency_ms,
        "send_s": round(send_s, 2), "offered_per_s": round(signals / send_s),
        "admitted": admitted, "executions_per_s": round(admitted / busy_s) if busy_s > 0 else 0,
        "refused": dict(refused),
        "reports": len(report_ids), "duplicate_reports": len(report_ids) - len(set(report_ids)),
        "lost_reports": admitted - len(set(report_ids)), "outcomes": dict(outcomes),
        "isolation": isolation_check(entries, latency_ms), "leaked_leases": len(leases),
        "rss_mb_warm": {str(k): round(v, 1) for k, v in warm.items()},
        "rss_mb_final": {str(k): round(v, 1) for k, v in final.items()},
        "rss_growth_pct_max": max(growth.values()) if growth else 0.0, "max_rss_mb": round(max(final.values()), 1),
    }


async def _leases_after_release(registry: Registry) -> list[Any]:
    """Leases still held a little after idle (releases are asynchronous, right after each Done)."""
    deadline = time.monotonic() + 5
    while (leases := await registry.leases()) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return leases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=100_000)
    parser.add_argument("--supervisors", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="worker processes per supervisor")
    parser.add_argument("--coins", type=int, default=30, help="synthetic coins (one triangle id each)")
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=2.0, help="simulator answer delay (widens spans)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    figures = asyncio.run(run_load(args.signals, args.supervisors, args.workers, args.coins, args.slots,
                                   args.latency_ms))
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    iso = figures["isolation"]
    ok = (iso["violations"] == 0 and iso["peak_in_flight"] <= args.slots and iso["client_oids_repeated"] == 0
          and figures["leaked_leases"] == 0 and figures["lost_reports"] == 0 and figures["duplicate_reports"] == 0
          and figures["rss_growth_pct_max"] < 10)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
