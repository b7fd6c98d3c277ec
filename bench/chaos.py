"""Chaos: two supervisors × two workers on one Redis, killed piece by piece while signals flow.

    python -m bench.chaos [--signals 3000] [--rate 200] [--json out.json]

A bounded stream of heavily overlapping signals (a few triangles sharing pairs) goes to both
supervisors, every `--resend-every`-th frame sent again, unchanged, to the other one. During the
run: a worker holding executions is SIGKILLed (at 25 % of the signals), a supervisor is SIGKILLed
and started again (45 %), and redis-server is SIGKILLed and started again from its append-only
file (65 %, `appendfsync always`). Then everything settles and the run is judged only from the
simulator's order log and the report stream, never from Trident's own counters:

- isolation: two executions sharing a pair whose order spans overlap (first order's arrival to the
  last order's arrival, plus the simulator's latency unless the execution was `lost`: a dead
  worker sends nothing after its last order arrived) were in flight together — a violation;
- no clientOid placed twice;
- exactly one report per execution (every execution in the order log has one, none has two);
- no lease left once settled (after a sweep of the expired ones).

The worker killed belongs to the supervisor that is not killed: a worker and its own supervisor
both dying is a double failure this run does not cover (in paper mode nothing journals the
execution, so nobody is left to write its `lost` report; its lease expires by TTL).

Exit 1 when any of these fails. The suite runs a shorter one (tests/system/test_chaos.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal as signals_
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bench.latency import load_markets
from bench.markets import write_bench_markets
from bench.stack import free_port, wait_http
from shared.codec import as_text, encode_frame
from shared.report import report_from_fields
from shared.store import keys
from shared.store.fleet import read_fleet
from shared.store.registry import Registry
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from tools.embedded_redis import EmbeddedRedis
from tools.synthetic import restamped, synthetic_signals
from worker.context import client_oid

__all__ = ["run_chaos", "judge", "main"]

_UNLIMITED = "1000000000"


class Node:
    """One `trident run` (its own session, so its orphans can be found and killed at the end)."""

    def __init__(self, index: int, workdir: Path, redis_url: str, sim_url: str, workers: int, lease_ttl_ms: int,
                 extra_env: dict[str, str] | None = None) -> None:
        self.index = index
        self.workers = workers
        self.socket_path = str(workdir / f"s{index}.sock")
        self.log = workdir / f"s{index}.log"
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TRIDENT_")},
            "TRIDENT_API_KEY": DEMO_API_KEY, "TRIDENT_API_SECRET": DEMO_API_SECRET,
            "TRIDENT_API_PASSPHRASE": DEMO_API_PASSPHRASE, "TRIDENT_RATE_BUDGET_LIMIT": _UNLIMITED,
            "TRIDENT_METRICS_PORT": "0", "TRIDENT_LEASE_TTL_MS": str(lease_ttl_ms),
            "TRIDENT_REDIS_URL": redis_url, "TRIDENT_SOCKET_PATH": self.socket_path,
            "TRIDENT_WORKERS": str(workers), "TRIDENT_EXCHANGE_URL": sim_url,
            "TRIDENT_SPOOL_DIR": str(workdir / f"spool{index}"), "TRIDENT_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1", **(extra_env or {}),
        }
        self.host = self._env.get("TRIDENT_HOST_ID") or socket.gethostname()  # its identity in Redis
        self.groups: list[int] = []  # every process group started, for the final clean-up
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen([sys.executable, "-m", "tools.cli", "run"], env=self._env,
                                            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        self.groups.append(self.process.pid)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def status(self, client: aioredis.Redis) -> dict[str, str]:
        for member in await read_fleet(client):
            if member.status.get("pid") == str(self.pid):
                return member.status
        return {}

    async def wait_ready(self, client: aioredis.Redis, timeout_s: float = 60.0) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"supervisor {self.index} exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(RedisError, OSError):
                    if (await self.status(client)).get("workers_alive") == str(self.workers):
                        return
                await asyncio.sleep(0.1)  # its status hash is the only readiness signal another process has

    def worker_pids(self) -> list[int]:
        """The worker processes: the supervisor's children holding a connection to the exchange."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        found = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                if any(c.raddr for c in child.net_connections(kind="inet")):
                    found.append(child.pid)
        return found

    def kill(self) -> None:
        """SIGKILL the supervisor alone: its workers are orphaned, as after a crash of it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def kill_all(self) -> None:
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signals_.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)


class _Sender:
    """Frames to one supervisor over its socket; reconnects while it restarts (frames meanwhile are lost)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sent = 0
        self.dropped = 0

    async def run(self) -> None:
        writer: asyncio.StreamWriter | None = None
        while (frame := await self.queue.get()) is not None:
            for _attempt in range(2):
                try:
                    if writer is None:
                        _, writer = await asyncio.open_unix_connection(self.node.socket_path)
                    writer.write(frame)
                    await writer.drain()
                    self.sent += 1
                    break
                except OSError:
                    if writer is not None:
                        writer.close()
                    writer = None
            else:
                self.dropped += 1
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def judge(orders: Sequence[dict[str, Any]], reports: Sequence[dict[str, str]], latency_ms: float) -> dict[str, Any]:
    """The verdict from the order log and the report stream alone (see the module docstring)."""
    by_execution: dict[str, list[dict[str, Any]]] = defaultdict(list)
    anonymous = [order for order in orders if not order.get("client_oid")]  # not an execution's (a warm-up)
    orders = [order for order in orders if order.get("client_oid")]
    for order in orders:
        by_execution[order["client_oid"].rsplit("-", 1)[0]].append(order)
    report_ids = [entry.get("correlation_id", "") for entry in reports]
    status_of = {client_oid(entry.get("correlation_id", ""), 0).rsplit("-", 1)[0]: entry.get("status", "")
                 for entry in reports}
    latency_ns = int(latency_ms * 1e6)
    spans: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for execution, legs in by_execution.items():
        arrivals = [leg["arrival_ns"] for leg in legs]
        end = max(arrivals) + (0 if status_of.get(execution) == "lost" else latency_ns)
        for pair in {leg["symbol"] for leg in legs}:
            spans[pair].append((min(arrivals), end, execution))
    overlapping: set[frozenset[str]] = set()
    for pair_spans in spans.values():
        pair_spans.sort()
        for i, (start, _, execution) in enumerate(pair_spans):
            for other_start, other_end, other in pair_spans[:i]:
                if other_end > start and other != execution:
                    overlapping.add(frozenset((execution, other)))
    return {
        "executions": len(by_execution),
        "order_calls_without_client_oid": len(anonymous),
        "isolation_violations": len(overlapping),
        "client_oids_placed_twice": sum(n > 1 for n in Counter(o["client_oid"] for o in orders).values()),
        "reports": len(report_ids),
        "duplicate_reports": len(report_ids) - len(set(report_ids)),
        "executions_without_report": sum(execution not in status_of for execution in by_execution),
        "outcomes": dict(Counter(entry.get("status", "") for entry in reports)),
        "reports_by_host": dict(Counter(entry.get("host", "") for entry in reports)),
    }


async def _kill_a_busy_worker(nodes: Sequence[Node], client: aioredis.Redis, sim_url: str, latency_ms: float,
                              timeout_s: float = 20.0) -> dict[str, Any]:
    """SIGKILL a worker that its own health line says runs an execution.

    Health lines are rewritten once a second, so the exchange is slowed (2.5 s per answer) and
    only a line written a full second after that counts: a worker it shows ``ongoing`` > 0 is
    then stuck in an order call, certainly holding its execution, when it is killed.
    """
    async with aiohttp.ClientSession() as http:
        async with http.post(sim_url + "/_sim/knobs", json={"latency_ms": 2500}) as answer:
            answer.raise_for_status()
        slowed_s = int(time.time()) + 1  # health lines carry whole seconds
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for node in nodes:
                        name = f"{node.host}:{node.pid}"
                        for index in range(node.workers):
                            line = as_text(await client.get(keys.worker_health_key(name, index)) or b"")
                            stamp, _, rest = line.partition(" ")
                            fields = dict(part.split("=", 1) for part in rest.split() if "=" in part)
                            try:
                                written_s = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
                                    tzinfo=UTC).timestamp()
                            except ValueError:
                                continue
                            if written_s >= slowed_s and fields.get("ongoing", "0") != "0" \
                                    and fields.get("pid", "").isdigit():
                                pid = int(fields["pid"])
                                child = pid in node.worker_pids()
                                os.kill(pid, signals_.SIGKILL)
                                return {"event": "worker_killed", "supervisor": node.index, "pid": pid,
                                        "child_of_supervisor": child, "health_line": line}
                    await asyncio.sleep(0.02)  # another process's state: polled
        finally:
            async with http.post(sim_url + "/_sim/knobs", json={"latency_ms": latency_ms}) as answer:
                answer.raise_for_status()


async def _settle(client: aioredis.Redis, registry: Registry, nodes: Sequence[Node], workdir: Path,
                  timeout_s: float) -> float:
    """Until nothing is in flight, no spool holds a report and the stream stopped growing."""
    started = time.monotonic()
    quiet_since, last_len = time.monotonic(), -1
    async with asyncio.timeout(timeout_s):
        while True:
            await asyncio.sleep(0.2)
            try:
                await registry.sweep()
                leases = await client.hlen(keys.LEASE_DATA)
                length = await client.xlen(keys.REPORTS)
                in_flight = [int((await node.status(client)).get("in_flight", "1")) for node in nodes]
            except (RedisError, OSError):
                continue
            spooled = [path for path in workdir.glob("spool*/*.spool") if path.stat().st_size]
            if length != last_len:
                quiet_since, last_len = time.monotonic(), length
            if not leases and not spooled and not any(in_flight) and time.monotonic() - quiet_since > 1.5:
                return time.monotonic() - started


async def run_chaos(signals: int, *, rate: float = 200.0, supervisors: int = 2, workers: int = 2, coins: int = 2,
                    latency_ms: float = 30.0, resend_every: int = 3, lease_ttl_ms: int = 3000,
                    slots: int = 8, chaos: bool = True, extra_env: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    """One chaos run in a private directory; returns the figures with the verdict (`judge`)."""
    workdir = Path(tempfile.mkdtemp(prefix="tri-chaos-"))
    redis_server = EmbeddedRedis(str(workdir / "redis"), extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    port = free_port()
    markets_path = write_bench_markets(workdir / "markets.json", coins)
    simulator = subprocess.Popen(
        [sys.executable, "-m", "sim", "--port", str(port), "--markets", str(markets_path), "--spot-limit", _UNLIMITED],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    sim_url = f"http://127.0.0.1:{port}"
    nodes = [Node(i, workdir, redis_server.url, sim_url, workers, lease_ttl_ms,
                  extra_env[i] if i < len(extra_env) else None) for i in range(supervisors)]
    events: list[dict[str, Any]] = []
    client: aioredis.Redis | None = None
    plan: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(redis_server.start)
        await wait_http(sim_url)
        async with aiohttp.ClientSession() as http:
            async with http.post(sim_url + "/_sim/knobs", json={"latency_ms": latency_ms}) as answer:
                answer.raise_for_status()
        client = aioredis.Redis.from_url(redis_server.url, socket_timeout=2, socket_connect_timeout=2)
        registry = Registry(client, owner="chaos")
        await registry.set_config(slots=slots)
        markets = await load_markets(sim_url)
        pool = synthetic_signals(markets, 500, now_ms=int(time.time() * 1000))
        for node in nodes:
            node.start()
        for node in nodes:
            await node.wait_ready(client)
        senders = [_Sender(node) for node in nodes]
        tasks = [asyncio.create_task(sender.run()) for sender in senders]
        started = time.monotonic()
        progress = [0]  # signals handed to the senders so far

        async def reached(fraction: float) -> int:
            while progress[0] < signals * fraction:
                await asyncio.sleep(0.01)  # the send loop below advances it
            return progress[0]

        async def chaos_plan() -> None:
            """One failure at a time, each at the earliest at its share of the signals."""
            at = await reached(0.25)
            killed = await _kill_a_busy_worker(nodes, client, sim_url, latency_ms)
            events.append({"at_signal": at, **killed})
            at = await reached(0.45)
            victim = nodes[(killed["supervisor"] + 1) % len(nodes)]  # not the dead worker's: one failure at a time
            old = victim.pid
            victim.kill()
            victim.start()
            events.append({"at_signal": at, "event": "supervisor_killed_and_restarted", "pid": old,
                           "new_pid": victim.pid})
            await victim.wait_ready(client)  # a supervisor refuses to start without Redis
            at = await reached(0.65)
            await asyncio.to_thread(redis_server.kill)
            down = time.monotonic()
            await asyncio.sleep(1.0)  # an outage long enough for admissions, releases and reports to fail
            await asyncio.to_thread(redis_server.start)
            events.append({"at_signal": at, "event": "redis_killed_and_restarted_from_aof",
                           "down_s": round(time.monotonic() - down, 2)})

        plan = asyncio.create_task(chaos_plan()) if chaos else None
        resent = 0
        for index in range(signals):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = encode_frame(restamped({**pool[index % len(pool)], "correlation_id": f"chaos-{index:06d}"}))
            target = index % supervisors
            senders[target].queue.put_nowait(frame)
            if resend_every and index % resend_every == 0:
                senders[(target + 1) % supervisors].queue.put_nowait(frame)
                resent += 1
            progress[0] = index + 1
        if plan is not None:
            await plan  # a plan still running when the signals end: its failures land after them
        send_s = time.monotonic() - started
        for sender in senders:
            sender.queue.put_nowait(None)
        await asyncio.gather(*tasks)
        settle_s = await _settle(client, registry, nodes, workdir, timeout_s=60 + lease_ttl_ms / 1000)
        await registry.sweep()
        leases_left = len(await registry.leases())
        reports = [{as_text(k): as_text(v) for k, v in fields.items()} for _, fields in await client.xrange(keys.REPORTS)]
        async with aiohttp.ClientSession() as http:
            async with http.get(sim_url + "/_sim/orders") as answer:
                orders = await answer.json()
        errors = [line for node in nodes for line in node.log.read_text(errors="replace").splitlines()
                  if '"level":"error"' in line]
    finally:
        if plan is not None and not plan.done():
            plan.cancel()
            with contextlib.suppress(BaseException):
                await plan
        for node in nodes:
            node.kill_all()
        if client is not None:
            await client.aclose()
        simulator.send_signal(signals_.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            simulator.wait(timeout=10)
        if simulator.poll() is None:
            simulator.kill()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    verdict = judge(orders, reports, latency_ms)
    return {
        "signals": signals, "resent_to_the_other_supervisor": resent, "rate_per_s": rate,
        "supervisors": supervisors, "workers_each": workers, "sim_latency_ms": latency_ms,
        "lease_ttl_ms": lease_ttl_ms, "frames_written": sum(s.sent for s in senders),
        "frames_dropped_while_down": sum(s.dropped for s in senders), "send_s": round(send_s, 2),
        "settle_s": round(settle_s, 2), "events": events, **verdict, "leases_left": leases_left,
        "supervisor_errors": Counter(json.loads(line).get("event", "?") for line in errors if line.startswith("{")),
        "lost_by_worker_exit": sum(json.loads(line).get("lost", 0) for line in errors
                                   if line.startswith("{") and '"worker_exited"' in line),
        "verdict_ok": passed(verdict, leases_left),
    }


def passed(verdict: dict[str, Any], leases_left: int) -> bool:
    return (verdict["isolation_violations"] == 0 and verdict["client_oids_placed_twice"] == 0
            and verdict["duplicate_reports"] == 0 and verdict["executions_without_report"] == 0 and leases_left == 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=200.0, help="signals per second (default 200)")
    parser.add_argument("--latency-ms", type=float, default=30.0, help="simulator answer delay (longer executions)")
    parser.add_argument("--resend-every", type=int, default=3, help="every Nth frame also to the other supervisor")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    figures = asyncio.run(run_chaos(args.signals, rate=args.rate, latency_ms=args.latency_ms,
                                    resend_every=args.resend_every))
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["verdict_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
