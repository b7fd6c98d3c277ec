"""The processes a benchmark runs against: Redis, the exchange simulator, a supervisor with workers.

Every piece runs as in production, in its own process: a private `redis-server` on a Unix socket
(`EmbeddedRedis`), the simulator (`python -m sim`, rate-limit pools far above any offered load)
and the supervisor (`trident run` as `python -m tools.cli run`, its exchange rate budget as
large, metrics endpoint off). `cpu_seconds` reads what each process and its children have used,
so a result can say which process a saturated machine spent its cores on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal as signals
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
import redis as syncredis
import redis.asyncio as aioredis

from bench.markets import write_bench_markets
from shared.store import keys
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from tools.embedded_redis import EmbeddedRedis

__all__ = ["Stack", "SupervisorProcess", "open_stack", "parse_cpus", "cpu_seconds", "status_counts", "free_port", "wait_http"]

_UNLIMITED = "1000000000"
_STOP_TIMEOUT_S = 15


def free_port() -> int:
    """A loopback TCP port nobody is listening on (for a simulator started in another process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_http(url: str, timeout_s: float = 20.0) -> None:
    """Wait until a simulator at `url` answers its timestamp endpoint."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url + "/api/v1/timestamp") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)  # start-up poll: the simulator gives no readiness signal


@dataclass(frozen=True, slots=True)
class Stack:
    """What every part of one suite run shares; `trident_cpus`, when set, pins each supervisor
    (and the workers it spawns, which inherit its affinity) to those CPUs."""

    workdir: Path
    redis: EmbeddedRedis
    redis_pid: int
    sim_url: str
    simulator: subprocess.Popen[bytes]
    trident_cpus: frozenset[int] | None = None

    def pids(self) -> dict[str, int]:
        """The long-lived processes by role (the supervisor's are added per run)."""
        return {"simulator": self.simulator.pid, "redis": self.redis_pid, "bench": os.getpid()}


def parse_cpus(text: str) -> frozenset[int]:
    """A CPU list as `taskset -c` takes it: "0", "0,1", "0-3,6"."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    if not cpus:
        raise ValueError(f"no CPUs in {text!r}")
    return frozenset(cpus)


@asynccontextmanager
async def open_stack(coins: int, *, infra_cpus: frozenset[int] | None = None,
                     trident_cpus: frozenset[int] | None = None) -> AsyncIterator[Stack]:
    """Redis and the simulator (with `coins` extra coins, see `bench.markets`) in a private
    temporary directory, all removed when the block ends.

    For a machine with cores to spare: `infra_cpus` pins the simulator, Redis and this process
    (the sender) to those CPUs and `trident_cpus` the supervisors and their workers to others,
    as `taskset -c` would, so the processes under test do not share cores with the load.
    """
    workdir = Path(tempfile.mkdtemp(prefix="trident-bench-"))  # short: Unix socket paths live here
    markets = write_bench_markets(workdir / "markets.json", coins)
    port = free_port()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "sim", "--port", str(port), "--markets", str(markets), "--spot-limit", _UNLIMITED],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        with EmbeddedRedis(str(workdir / "redis")) as redis_server:
            client = syncredis.Redis.from_url(redis_server.url)
            redis_pid = int(client.info("server")["process_id"])
            client.close()
            if infra_cpus:
                for pid in (simulator.pid, redis_pid, os.getpid()):
                    os.sched_setaffinity(pid, infra_cpus)
            await wait_http(f"http://127.0.0.1:{port}")
            yield Stack(workdir, redis_server, redis_pid, f"http://127.0.0.1:{port}", simulator, trident_cpus)
    finally:
        simulator.send_signal(signals.SIGTERM)
        simulator.wait(timeout=_STOP_TIMEOUT_S)
        shutil.rmtree(workdir, ignore_errors=True)


class SupervisorProcess:
    """`trident run` with `workers` worker processes (0: inline) against the stack."""

    def __init__(self, stack: Stack, workers: int, book_skew_ms: int | None = None) -> None:
        """`book_skew_ms`: how far ahead of its clock this supervisor accepts a book time (a
        saturating run stamps books ahead, see `bench.latency.run_config`); None: the default."""
        self.stack = stack
        self.workers = workers
        self.socket_path = str(stack.workdir / "signals.sock")
        env = {
            **os.environ, "TRIDENT_API_KEY": DEMO_API_KEY, "TRIDENT_API_SECRET": DEMO_API_SECRET,
            "TRIDENT_API_PASSPHRASE": DEMO_API_PASSPHRASE, "TRIDENT_RATE_BUDGET_LIMIT": _UNLIMITED,
            "TRIDENT_METRICS_PORT": "0",
            **({"TRIDENT_BOOK_SKEW_MS": str(book_skew_ms)} if book_skew_ms is not None else {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "run", "--socket", self.socket_path,
             "--redis-url", stack.redis.url, "--workers", str(workers), "--exchange-url", stack.sim_url,
             "--spool-dir", str(stack.workdir / "spool"), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=(lambda: os.sched_setaffinity(0, stack.trident_cpus)) if stack.trident_cpus else None,  # noqa: PLW1509
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """The worker processes (aiomultiprocess spawns them as children of the supervisor)."""
        return self.child_roles().get("workers", [])

    def child_roles(self) -> dict[str, list[int]]:
        """The supervisor's children by role: `workers` (each holds a warm connection to the
        exchange) and `manager` (aiomultiprocess's multiprocessing manager, spawned the same way)."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return {}
        roles: dict[str, list[int]] = {"workers": [], "manager": []}
        for child in children:
            if "resource_tracker" in " ".join(_cmdline(child)):
                continue
            try:
                connected = any(c.raddr for c in child.net_connections(kind="inet"))
            except psutil.Error:
                connected = False
            roles["workers" if connected else "manager"].append(child.pid)
        return roles

    async def status(self, redis: aioredis.Redis) -> dict[str, str]:
        """Its status hash (refreshed every second), empty until the first refresh."""
        async for key in redis.scan_iter(match=keys.STATUS_PREFIX + "*"):
            status = {k.decode(): v.decode() for k, v in (await redis.hgetall(key)).items()}
            if status.get("pid") == str(self.pid):
                return status
        return {}

    async def wait_ready(self, redis: aioredis.Redis, timeout_s: float = 60.0) -> None:
        """Ready once its status says every executor is alive (inline: the one in-process)."""
        wanted = str(max(self.workers, 1))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"supervisor exited with {self.process.returncode}")
            if (await self.status(redis)).get("workers_alive") == wanted:
                return
            await asyncio.sleep(0.1)  # the status hash is the only readiness signal another process has
        raise TimeoutError("supervisor did not become ready")

    async def wait_drained(self, redis: aioredis.Redis, frames: int, timeout_s: float = 120.0) -> dict[str, str]:
        """Its status once every frame was admitted or refused and nothing is in flight."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = await self.status(redis)
            admitted, refused = status_counts(status)
            if admitted + sum(refused.values()) >= frames and status.get("in_flight") == "0":
                return status
            await asyncio.sleep(0.2)
        raise TimeoutError(f"supervisor did not process {frames} frames in {timeout_s} s")

    def stop(self) -> bool:
        """SIGTERM and wait; a supervisor still running after the timeout is killed with its
        children (its workers). Returns whether it stopped by itself."""
        if self.process.poll() is None:
            self.process.send_signal(signals.SIGTERM)
        try:
            self.process.wait(timeout=_STOP_TIMEOUT_S)
            return True
        except subprocess.TimeoutExpired:
            try:
                children = psutil.Process(self.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            for process in [*children, psutil.Process(self.pid)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            self.process.wait(timeout=_STOP_TIMEOUT_S)
            return False


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def status_counts(status: Mapping[str, str]) -> tuple[int, dict[str, int]]:
    """(admitted, refusals by reason) from a status hash."""
    refused = {key.partition(":")[2]: int(value) for key, value in status.items() if key.startswith("refused:")}
    return int(status.get("admitted", "0")), refused


def cpu_seconds(pids: Mapping[str, int | list[int]]) -> dict[str, float]:
    """User + system CPU seconds used so far by each role's process(es); gone processes count 0."""
    used: dict[str, float] = {}
    for role, pid_or_pids in pids.items():
        total = 0.0
        for pid in pid_or_pids if isinstance(pid_or_pids, list) else [pid_or_pids]:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        used[role] = total
    return used
