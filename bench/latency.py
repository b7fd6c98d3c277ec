"""Signal→wire latency: the sender's socket write → the order's arrival at the simulator.

Three kinds of process, as in production: this script (the opportunity engine, sending), the
supervisor with its workers (`trident run`, a subprocess; `--workers 0` executes inline in the
supervisor) and the exchange simulator (another subprocess). Both ends are stamped with
`time.monotonic_ns()` (CLOCK_MONOTONIC is system-wide on Linux), so the difference is a true
cross-process latency. A signal's latency runs from its write to the arrival of the *first* of
its three order tests (they go out concurrently). Signals are stamped (book time) as they are
sent, as a live engine does, so none is refused as stale for having waited in a queue here.

    python -m bench.latency [--workers 2 0] [--rate 500] [--signals 3000] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench.common import LatencySummary, host_info, markdown_table, write_json
from bench.stack import Stack, SupervisorProcess, cpu_seconds, open_stack, status_counts
from shared.codec import encode_frame
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.report import ExecutionReport, report_from_fields
from shared.store import keys
from tools.send import send_frames
from tools.synthetic import Market, fetch_markets, restamped, synthetic_signals
from worker.context import client_oid

__all__ = ["Run", "load_markets", "run_config", "variant_name", "main"]

_BENCH_CONFIG = {"slots": 1000, "enforce_pair": 0, "enforce_same_quote": 0, "paused": 0}


def variant_name(workers: int) -> str:
    return "inline" if workers == 0 else f"multiprocess ×{workers}"


@dataclass(slots=True)
class Run:
    """One supervisor configuration fed one signal stream."""

    workers: int
    rate: float | None  # offered signals/s; None: as fast as the socket takes them
    connections: int
    sent: int
    send_s: float
    wall_s: float  # first write → every frame admitted or refused and nothing in flight
    latencies_ns: list[int]
    reports: list[ExecutionReport]
    admitted: int
    refusals: dict[str, int]
    stopped_cleanly: bool  # False: SIGTERM did not stop the supervisor in time, it was killed
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{variant_name(self.workers)} @ {'max' if self.rate is None else f'{self.rate:g}/s'}"

    def summary(self) -> LatencySummary:
        return LatencySummary.from_ns(self.label, "signal→wire", self.latencies_ns)

    def executions_per_s(self) -> float:
        """Filled reports per second between the first and the last one."""
        stamps = sorted(r.ts_ms for r in self.reports if r.status == "filled")
        if len(stamps) < 2 or stamps[-1] == stamps[0]:
            return 0.0
        return (len(stamps) - 1) * 1000 / (stamps[-1] - stamps[0])

    def to_dict(self) -> dict[str, Any]:
        filled = sum(1 for r in self.reports if r.status == "filled")
        return {
            **(self.summary().to_dict() if self.latencies_ns else {}),
            "workers": self.workers, "variant": variant_name(self.workers), "rate": self.rate,
            "connections": self.connections, "sent": self.sent, "achieved_send_rate": round(self.sent / self.send_s, 1),
            "admitted": self.admitted, "filled": filled, "refusals": self.refusals, "wall_s": round(self.wall_s, 2),
            "executions_per_s": round(self.executions_per_s(), 1), "stopped_cleanly": self.stopped_cleanly,
            "cpu_s": {role: round(seconds, 2) for role, seconds in self.cpu_s.items()},
        }


async def load_markets(sim_url: str) -> dict[str, Market]:
    async with make_session() as session:
        return await fetch_markets(KucoinRest(session, sim_url))


def _stamped_frames(signals: Sequence[dict[str, Any]], book_ahead_ms: int) -> Iterator[bytes]:
    """Each signal framed with its book stamped now (+ `book_ahead_ms`), as it is about to be written."""
    for signal in signals:
        yield encode_frame(restamped(signal, int(time.time() * 1000) + book_ahead_ms))


async def _send(socket_path: str, signals: Sequence[dict[str, Any]], rate: float | None,
                connections: int, book_ahead_ms: int) -> list[int]:
    """Write every signal over `connections` connections (signal i on connection i mod n); the
    monotonic ns of each write, by signal index."""
    stamps: list[list[int]] = [[] for _ in range(connections)]
    shares = [signals[index::connections] for index in range(connections)]
    await asyncio.gather(*(
        send_frames(socket_path, _stamped_frames(share, book_ahead_ms), total=len(share), progress=False,
                    on_sent=stamps[index], rate=rate / connections if rate else None)
        for index, share in enumerate(shares)
    ))
    sent_ns = [0] * len(signals)
    for index, share_stamps in enumerate(stamps):
        sent_ns[index::connections] = share_stamps
    return sent_ns


async def _order_log(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(url + "/_sim/orders") as response:
        return await response.json()


async def _reports(redis: aioredis.Redis, prefix: str) -> list[ExecutionReport]:
    entries = await redis.xrange(keys.REPORTS)
    reports = (report_from_fields(fields) for _, fields in entries)
    return [report for report in reports if report.correlation_id.startswith(prefix)]


def _first_arrivals(entries: Sequence[dict[str, Any]], signals: Sequence[dict[str, Any]]) -> dict[int, int]:
    """Signal index → arrival ns of the first of its order tests at the exchange."""
    leg_of = {client_oid(str(s["correlation_id"]), leg): i for i, s in enumerate(signals) for leg in range(3)}
    first: dict[int, int] = {}
    for entry in entries:
        index = leg_of.get(entry.get("client_oid"))
        if index is not None and entry.get("kind") == "test":
            first[index] = min(first.get(index, entry["arrival_ns"]), entry["arrival_ns"])
    return first


async def run_config(stack: Stack, markets: dict[str, Market], *, workers: int, rate: float | None, count: int,
                     tag: str, connections: int = 1, seed: int = 7, book_ahead_ms: int = 0,
                     on_ready: Callable[[SupervisorProcess], None] | None = None) -> Run:
    """Start a supervisor with `workers`, send `count` signals at `rate`, collect everything.

    `book_ahead_ms` stamps books in the future: a saturating sender builds a backlog whose books
    would otherwise go stale behind their triangle's previous trade (the stale rule is tested
    elsewhere; capacity runs must not measure it). `on_ready` is called once the supervisor is
    ready, just before the first signal (profiling).
    """
    redis = aioredis.Redis.from_url(stack.redis.url)
    signals = synthetic_signals(markets, count, seed=seed, now_ms=0, prefix=tag)
    await redis.hset(keys.CONFIG, mapping=_BENCH_CONFIG)
    supervisor = SupervisorProcess(stack, workers)
    try:
        async with make_session() as session:
            async with session.post(stack.sim_url + "/_sim/reset") as response:
                response.raise_for_status()
            await supervisor.wait_ready(redis)
            pids: dict[str, int | list[int]] = {**stack.pids(), "supervisor": supervisor.pid,
                                                "workers": supervisor.worker_pids()}
            if on_ready is not None:
                on_ready(supervisor)
            cpu_before = cpu_seconds(pids)
            started = time.monotonic()
            sent_ns = await _send(supervisor.socket_path, signals, rate, connections, book_ahead_ms)
            send_s = time.monotonic() - started
            status = await supervisor.wait_drained(redis, count)
            wall_s = time.monotonic() - started
            cpu_after = cpu_seconds(pids)
            entries = await _order_log(session, stack.sim_url)
    finally:
        stopped_cleanly = supervisor.stop()
    reports = await _reports(redis, tag + "-")
    await redis.aclose()
    first = _first_arrivals(entries, signals)
    admitted, refusals = status_counts(status)
    return Run(
        workers=workers, rate=rate, connections=connections, sent=count, send_s=send_s, wall_s=wall_s,
        latencies_ns=sorted(first[index] - sent_ns[index] for index in first), reports=reports,
        admitted=admitted, refusals=refusals, stopped_cleanly=stopped_cleanly,
        cpu_s={role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after},
    )


async def _run(workers_list: list[int], rate: float, count: int, coins: int) -> dict[str, Any]:
    async with open_stack(coins) as stack:
        markets = await load_markets(stack.sim_url)
        runs = [await run_config(stack, markets, workers=workers, rate=rate, count=count, tag=f"lat{workers}w")
                for workers in workers_list]
    return {"host": host_info(), "runs": [run.to_dict() for run in runs],
            "table": markdown_table([run.summary() for run in runs])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 0], help="worker processes; 0 = inline")
    parser.add_argument("--rate", type=float, default=500.0, help="offered signals per second")
    parser.add_argument("--signals", type=int, default=3000)
    parser.add_argument("--coins", type=int, default=24, help="synthetic coins added to the markets")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = asyncio.run(_run(args.workers, args.rate, args.signals, args.coins))
    print(results["table"])
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
