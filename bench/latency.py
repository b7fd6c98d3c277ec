"""Signal→wire latency: the sender's socket write → the order's arrival at the simulator.

Three kinds of process, as in production: this script (the opportunity engine, sending), the
supervisor with its workers (`trident run`, a subprocess), and the exchange simulator (another
subprocess). Both ends are stamped with `time.monotonic_ns()` (CLOCK_MONOTONIC is system-wide on
Linux), so the difference is a true cross-process latency. A signal's latency is its write time
to the arrival of its *first* order test (the three go out concurrently).

    python -m bench.latency [--workers 1 2] [--rate 200] [--signals 2000] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal as signals
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench.common import LatencySummary, host_info, markdown_table, write_json
from shared import keys
from shared.codec import encode_frame
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from supervisor.embedded_redis import EmbeddedRedis
from supervisor.send import send_frames
from supervisor.synthetic import fetch_markets, synthetic_signals
from worker.execute import client_oid
from worker.kucoin.rest import KucoinRest
from worker.kucoin.session import make_session

__all__ = ["main", "measure"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_http(url: str, timeout_s: float = 20.0) -> None:
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
            await asyncio.sleep(0.05)


def start_simulator_process(port: int) -> subprocess.Popen[bytes]:
    """The simulator in its own process with a rate-limit pool far above the offered load."""
    return subprocess.Popen(
        [sys.executable, "-m", "sim", "--port", str(port), "--spot-limit", "100000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def start_supervisor_process(workdir: Path, redis_url: str, exchange_url: str, workers: int,
                             extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TRIDENT_API_KEY": DEMO_API_KEY, "TRIDENT_API_SECRET": DEMO_API_SECRET,
           "TRIDENT_API_PASSPHRASE": DEMO_API_PASSPHRASE, **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor.cli", "run", "--socket", str(workdir / "signals.sock"),
         "--redis-url", redis_url, "--workers", str(workers), "--exchange-url", exchange_url,
         "--spool-dir", str(workdir / "spool"), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def _wait_supervisor(redis: aioredis.Redis, workers: int, pid: int, timeout_s: float = 60.0) -> None:
    """Ready once its status hash says every worker said hello."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async for key in redis.scan_iter(match=keys.STATUS_PREFIX + "*"):
            status = await redis.hgetall(key)
            if status.get(b"pid") == str(pid).encode() and status.get(b"workers_alive") == str(workers).encode():
                return
        await asyncio.sleep(0.1)
    raise TimeoutError("supervisor did not become ready")


async def _order_log(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(url + "/_sim/orders") as response:
        body = await response.json()
    return body["data"] if isinstance(body, dict) and "data" in body else body


async def _settle(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    """The order log once it has stopped growing (every admitted execution has reached the exchange)."""
    previous = -1
    while True:
        entries = await _order_log(session, url)
        if len(entries) == previous:
            return entries
        previous = len(entries)
        await asyncio.sleep(0.5)


def _restamp(signal: dict[str, Any]) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    return {**signal, "book_ts_ms": now_ms, "t_sock_arrive_ms": now_ms, "t_arrive_ms": now_ms,
            "t_eval_ms": now_ms, "ts_ms": now_ms}


async def measure(workers: int, rate: float, count: int, *, redis_url: str, sim_url: str, workdir: Path,
                  tag: str) -> tuple[list[int], int]:
    """Latencies (ns) of every admitted signal, and how many were admitted, for one configuration."""
    redis = aioredis.Redis.from_url(redis_url)
    await redis.hset(keys.CONFIG, mapping={"slots": 1000, "enforce_pair": 0, "paused": 0})
    supervisor = start_supervisor_process(workdir, redis_url, sim_url, workers)
    try:
        await _wait_supervisor(redis, workers, supervisor.pid)
        async with make_session() as session:
            markets = await fetch_markets(KucoinRest(session, sim_url))
            signals_ = synthetic_signals(markets, count, now_ms=0, prefix=tag)
            sent_ns: list[int] = []
            frames = (encode_frame(_restamp(s)) for s in signals_)
            await send_frames(str(workdir / "signals.sock"), frames, total=count, rate=rate, progress=False,
                              on_sent=sent_ns)
            entries = await _settle(session, sim_url)
    finally:
        supervisor.send_signal(signals.SIGTERM)
        supervisor.wait(timeout=15)
        await redis.aclose()
    first_leg = {client_oid(str(s["correlation_id"]), 0): i for i, s in enumerate(signals_)}
    latencies = []
    for entry in entries:
        index = first_leg.get(entry.get("client_oid"))
        if index is not None and entry.get("kind") == "test":
            latencies.append(entry["arrival_ns"] - sent_ns[index])
    return sorted(latencies), len(latencies)


async def run(workers_list: list[int], rate: float, count: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="trident-bench-"))
    port = _free_port()
    sim_url = f"http://127.0.0.1:{port}"
    simulator = start_simulator_process(port)
    results: dict[str, Any] = {"host": host_info(), "rate": rate, "signals": count, "configs": []}
    try:
        with EmbeddedRedis(str(workdir / "redis")) as redis_server:
            await _wait_http(sim_url)
            rows = []
            for workers in workers_list:
                latencies, admitted = await measure(workers, rate, count, redis_url=redis_server.url,
                                                    sim_url=sim_url, workdir=workdir, tag=f"lat{workers}w")
                row = LatencySummary.from_ns(f"{workers} worker(s) @ {rate:g}/s", "signal→wire", latencies)
                rows.append(row)
                results["configs"].append({"workers": workers, "admitted": admitted, **row.to_dict()})
            results["table"] = markdown_table(rows)
    finally:
        simulator.send_signal(signals.SIGTERM)
        simulator.wait(timeout=10)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rate", type=float, default=200.0, help="offered signals per second")
    parser.add_argument("--signals", type=int, default=2000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.workers, args.rate, args.signals))
    print(results["table"])
    print(json.dumps([{k: c[k] for k in ("workers", "admitted")} for c in results["configs"]]))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
