"""What `redis_wait_replicas = 1` costs an admission: acquire (+ WAIT 1) + release, with and without.

Starts a primary and one replica on loopback ports (plain redis-server, no sentinel needed to
measure replication) and times `Registry.acquire` then `release` round trips, sequentially.

    python -m bench.wait_cost [--n 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

import redis.asyncio as aioredis

from bench.stack import free_port
from shared.store.registry import Grant, LeaseRequest, Registry
from tools.embedded_redis import find_redis_server

TRIANGLE = ("BTC-USDT", "ETH-BTC", "ETH-USDT")


async def _time(registry: Registry, n: int) -> list[float]:
    samples = []
    for i in range(n):
        request = LeaseRequest(lease_id=f"w-{i}", triangle_id=",".join(TRIANGLE), quote="USDT", pairs=TRIANGLE,
                               notional=Decimal("10"), book_ts_ms=0)
        started = time.perf_counter_ns()
        grant = await registry.acquire(request)
        assert isinstance(grant, Grant), grant
        await registry.release(grant.lease_id, grant.token)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


async def _run(n: int) -> str:
    binary, directory = find_redis_server(), tempfile.mkdtemp(prefix="wait-cost-")
    primary, replica = free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory]
    procs = [subprocess.Popen([binary, "--port", str(primary), *common], stdout=subprocess.DEVNULL),
             subprocess.Popen([binary, "--port", str(replica), "--replicaof", "127.0.0.1", str(primary), *common],
                              stdout=subprocess.DEVNULL)]
    client, follower = aioredis.Redis(port=primary), aioredis.Redis(port=replica)
    try:
        while True:  # until the replica has synced (WAIT counts only online replicas)
            try:
                if (await follower.info("replication")).get("master_link_status") == "up":
                    break
            except OSError:
                pass
            await asyncio.sleep(0.05)
        lines = ["| acquire + release | n | p50 µs | p99 µs | mean µs |", "|---|--:|--:|--:|--:|"]
        for replicas in (0, 1, 0, 1):  # interleaved, so drift hits both alike
            registry = Registry(client, owner="bench", ttl_ms=10_000, wait_replicas=replicas, wait_timeout_ms=100)
            samples = sorted(await _time(registry, n))
            lines.append(f"| wait_replicas={replicas} | {n} | {samples[n // 2]:,.0f} | {samples[n * 99 // 100]:,.0f}"
                         f" | {statistics.fmean(samples):,.0f} |")
        return "\n".join(lines)
    finally:
        await client.aclose()
        await follower.aclose()
        for proc in procs:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wait_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    print(asyncio.run(_run(parser.parse_args(argv).n)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
