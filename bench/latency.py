"""Signal→wire latency: the sender's socket write → the order's arrival at the simulator.

Three kinds of process, as in production: this script (the opportunity engine, sending), the
supervisor with its workers (`trident run`, a subprocess; `--workers 0` executes inline in the
supervisor) and the exchange simulator (another subprocess). Both ends are stamped with
`time.monotonic_ns()` (CLOCK_MONOTONIC is system-wide on Linux), so the difference is a true
cross-process latency. A signal's latency runs from its write to the arrival of the *first* of
its three order tests (they go out concurrently). Signals are stamped (book time) as they are
sent, as a live engine does, so none is refused as stale for having waited in a queue here.

With a thin floor (`bench.thin`), one floor probe runs half-way between two signals, so the
floor is measured under the same load as the path it is compared with.

    python -m bench.latency [--workers 2 0] [--rate 200] [--signals 1000] [--json OUT]
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
import uvloop

from bench.common import LatencySummary, host_info, markdown_table, write_json
from bench.procstat import CpuSnapshot, busy_and_steal, snapshot
from bench.stack import Stack, SupervisorProcess, cpu_seconds, open_stack, status_counts
from bench.thin import COMPLETION_PARTS, THIN_PARTS, ThinFloor, open_thin_floor
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
    cpu_s: dict[str, float] = field(default_factory=dict)  # role ("worker 0", "simulator", …) → CPU s
    machine: dict[str, float | None] = field(default_factory=dict)  # busy and stolen cores (bench.procstat)
    floor_ns: dict[str, list[int]] = field(default_factory=dict)  # the thin floor's samples, this run
    repeat: int = 0
    kind: str = "latency"  # "latency", "saturation" or "completion" (the simulator answering late)

    @property
    def label(self) -> str:
        return f"{variant_name(self.workers)} @ {'max' if self.rate is None else f'{self.rate:g}/s'}"

    def summary(self) -> LatencySummary:
        return LatencySummary.from_ns(self.label, "signal→wire", self.latencies_ns)

    @property
    def filled(self) -> int:
        return sum(1 for r in self.reports if r.status == "filled")

    def cpu_ms_per_execution(self) -> dict[str, float]:
        """Each process's CPU over the run divided by the filled executions (refusals included)."""
        return {role: round(1000 * seconds / max(self.filled, 1), 3) for role, seconds in self.cpu_s.items()}

    def executions_per_s(self) -> float:
        """Filled reports per second between the first and the last one."""
        stamps = sorted(r.ts_ms for r in self.reports if r.status == "filled")
        if len(stamps) < 2 or stamps[-1] == stamps[0]:
            return 0.0
        return (len(stamps) - 1) * 1000 / (stamps[-1] - stamps[0])

    def to_dict(self) -> dict[str, Any]:
        filled = self.filled
        return {
            **(self.summary().to_dict() if self.latencies_ns else {}),
            "workers": self.workers, "variant": variant_name(self.workers), "rate": self.rate,
            "connections": self.connections, "sent": self.sent, "achieved_send_rate": round(self.sent / self.send_s, 1),
            "admitted": self.admitted, "filled": filled, "refusals": self.refusals, "wall_s": round(self.wall_s, 2),
            "executions_per_s": round(self.executions_per_s(), 1), "stopped_cleanly": self.stopped_cleanly,
            "cpu_s": {role: round(seconds, 3) for role, seconds in self.cpu_s.items()},
            "cpu_ms_per_execution": self.cpu_ms_per_execution(), "admitted_fraction": round(self.admitted / self.sent, 4),
            **self.machine, "repeat": self.repeat, "kind": self.kind,
        }


async def load_markets(sim_url: str) -> dict[str, Market]:
    async with make_session() as session:
        return await fetch_markets(KucoinRest(session, sim_url))


def _stamped_frames(signals: Sequence[dict[str, Any]], book_ahead_ms: int) -> Iterator[bytes]:
    """Each signal framed with its book stamped now (+ `book_ahead_ms`), as it is about to be written."""
    for signal in signals:
        yield encode_frame(restamped(signal, int(time.time() * 1000) + book_ahead_ms))


async def _probe_between(floor: ThinFloor, count: int, rate: float) -> None:
    """One floor probe half-way between consecutive signals, on the senders' absolute schedule."""
    interval_ns = 1e9 / rate
    start_ns = time.monotonic_ns() + interval_ns / 2
    for index in range(count - 1):
        delay_ns = start_ns + index * interval_ns - time.monotonic_ns()
        if delay_ns > 0:
            await asyncio.sleep(delay_ns / 1e9)
        await floor.probe()


async def _send(socket_path: str, signals: Sequence[dict[str, Any]], rate: float | None,
                connections: int, book_ahead_ms: int, floor: ThinFloor | None = None) -> list[int]:
    """Write every signal over `connections` connections (signal i on connection i mod n); the
    monotonic ns of each write, by signal index. With a `floor` (and a rate), probe it between."""
    stamps: list[list[int]] = [[] for _ in range(connections)]
    shares = [signals[index::connections] for index in range(connections)]
    probes = [_probe_between(floor, len(signals), rate)] if floor is not None and rate else []
    await asyncio.gather(*(
        send_frames(socket_path, _stamped_frames(share, book_ahead_ms), total=len(share), progress=False,
                    on_sent=stamps[index], rate=rate / connections if rate else None)
        for index, share in enumerate(shares)
    ), *probes)
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


_SAMPLE_S = 0.05
_Sample = tuple[int, dict[str, float], CpuSnapshot | None]


async def _sample(pids: dict[str, int | list[int]], samples: list[_Sample]) -> None:
    """Every 50 ms: wall ms, each process's CPU and the machine's counters (saturated runs)."""
    while True:
        samples.append((int(time.time() * 1000), cpu_seconds(pids), snapshot()))
        await asyncio.sleep(_SAMPLE_S)


def _at_last_report(samples: Sequence[_Sample], reports: Sequence[ExecutionReport],
                    fallback: tuple[dict[str, float], CpuSnapshot | None]) -> tuple[dict[str, float], CpuSnapshot | None]:
    """The first sample taken after the last report: the run's work, without the drain's idle tail."""
    last_ms = max((r.ts_ms for r in reports), default=None)
    if last_ms is None:
        return fallback
    return next(((cpu, machine) for wall_ms, cpu, machine in samples if wall_ms >= last_ms), fallback)


async def run_config(stack: Stack, markets: dict[str, Market], *, workers: int, rate: float | None, count: int,
                     tag: str, connections: int = 1, seed: int = 7, book_ahead_ms: int = 0,
                     on_ready: Callable[[SupervisorProcess], None] | None = None,
                     floor: ThinFloor | None = None, repeat: int = 0, kind: str = "latency",
                     sim_knobs: dict[str, Any] | None = None) -> Run:
    """Start a supervisor with `workers`, send `count` signals at `rate`, collect everything.

    `book_ahead_ms` stamps books in the future: a saturating sender builds a backlog whose books
    would otherwise go stale behind their triangle's previous trade (the stale rule is tested
    elsewhere; capacity runs must not measure it). `on_ready` is called once the supervisor is
    ready, just before the first signal (profiling). With a `floor`, its probes run between the
    signals and the run carries their samples. `sim_knobs` are set on the simulator after its
    reset (e.g. an injected answer latency); a "completion" run probes COMPLETION_PARTS.
    """
    redis = aioredis.Redis.from_url(stack.redis.url)
    signals = synthetic_signals(markets, count, seed=seed, now_ms=0, prefix=tag)
    await redis.hset(keys.CONFIG, mapping=_BENCH_CONFIG)
    # Books stamped ahead would be refused as future_book: this supervisor accepts them.
    supervisor = SupervisorProcess(stack, workers, book_skew_ms=2 * book_ahead_ms if book_ahead_ms else None)
    try:
        async with make_session() as session:
            async with session.post(stack.sim_url + "/_sim/reset") as response:
                response.raise_for_status()
            if sim_knobs:
                async with session.post(stack.sim_url + "/_sim/knobs", json=sim_knobs) as response:
                    response.raise_for_status()
            await supervisor.wait_ready(redis)
            pids: dict[str, int | list[int]] = {**stack.pids(), "supervisor": supervisor.pid}
            children = supervisor.child_roles()
            pids.update({f"worker {index}": pid for index, pid in enumerate(children.get("workers", []))})
            if children.get("manager"):
                pids["worker manager"] = children["manager"]
            if on_ready is not None:
                on_ready(supervisor)
            if floor is not None:
                floor.start_run(tag, COMPLETION_PARTS if kind == "completion" else THIN_PARTS)
            cpu_before, machine_before = cpu_seconds(pids), snapshot()
            started = time.monotonic()
            samples: list[_Sample] = []
            sampler = None if rate else asyncio.create_task(_sample(pids, samples))
            sent_ns = await _send(supervisor.socket_path, signals, rate, connections, book_ahead_ms, floor)
            send_s = time.monotonic() - started
            # At a rate, CPU and busy cores are taken over the send window: the steady state
            # (at most one execution is still under way when it ends).
            cpu_after, machine_after = cpu_seconds(pids), snapshot()
            status = await supervisor.wait_drained(redis, count)
            wall_s = time.monotonic() - started
            entries = await _order_log(session, stack.sim_url)
    finally:
        stopped_cleanly = supervisor.stop()
    reports = await _reports(redis, tag + "-")
    await redis.aclose()
    if sampler is not None:  # saturated: up to the last report, not the idle wait for the drain
        sampler.cancel()
        cpu_after, machine_after = _at_last_report(samples, reports, (cpu_after, machine_after))
    first = _first_arrivals(entries, signals)
    admitted, refusals = status_counts(status)
    if floor is not None:
        floor.add_post_arrivals(entries)
    return Run(
        workers=workers, rate=rate, connections=connections, sent=count, send_s=send_s, wall_s=wall_s,
        latencies_ns=sorted(first[index] - sent_ns[index] for index in first), reports=reports,
        admitted=admitted, refusals=refusals, stopped_cleanly=stopped_cleanly,
        cpu_s={role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after},
        machine=busy_and_steal(machine_before, machine_after),
        floor_ns={part: list(samples) for part, samples in floor.samples.items()} if floor is not None else {},
        repeat=repeat, kind=kind,
    )


async def _run(workers_list: list[int], rate: float, count: int, coins: int) -> dict[str, Any]:
    async with open_stack(coins) as stack:
        markets = await load_markets(stack.sim_url)
        probe = synthetic_signals(markets, 1, now_ms=int(time.time() * 1000), prefix="thin")[0]
        async with open_thin_floor(stack, probe) as floor:
            runs = [await run_config(stack, markets, workers=workers, rate=rate, count=count, tag=f"lat{workers}w",
                                     floor=floor) for workers in workers_list]
    return {"host": host_info(), "runs": [run.to_dict() for run in runs],
            "table": markdown_table([run.summary() for run in runs])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 0], help="worker processes; 0 = inline")
    parser.add_argument("--rate", type=float, default=200.0, help="offered signals per second")
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--coins", type=int, default=24, help="synthetic coins added to the markets")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = uvloop.run(_run(args.workers, args.rate, args.signals, args.coins))
    print(results["table"])
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
