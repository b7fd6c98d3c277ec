"""Benchmark: admission latency while Grafana's dashboards query the same Redis.

Run: `python -m bench.dashboard_load [--reports 100000] [--seconds 30] [--rate 200] [--json OUT]`.

Why: every admission is one EVALSHA on the registry's Redis, and Redis runs one command at a time,
so a dashboard query that takes Redis 150 ms delays every admission behind it by up to 150 ms.
The old dashboards ran `XREVRANGE trident:reports + - COUNT 10000` in five panels every 10 s; the
current ones read at most the last 500 entries. This measures the registry's acquire+release
round trip (what admission waits for) at a steady rate in three phases on one Redis holding a full
report stream of realistic 3-leg reports (~2 KB of text each):

- quiet: no dashboard;
- dashboards: every Redis query of `deploy/grafana/dashboards/*.json`, as the plugin sends it,
  every 10 s (the dashboards' refresh), from a separate process (Grafana is another client);
- old dashboards: the same with the five raw-report panels at COUNT 10000, for comparison.

Acquires are paced on a fixed schedule and timed from the call, so a stall shows up in every
acquire that waits behind it. The figure: p99 with dashboards / p99 quiet (the target is ≤ 1.1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.common import percentile
from shared.report import BookTop, ExecutionReport, LegFill, Status, report_to_fields
from shared.store.registry import Grant, LeaseRequest, Registry
from tools.embedded_redis import EmbeddedRedis

DASHBOARDS = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
REFRESH_S = 10.0
OLD_RAW_COUNT = 10_000


def realistic_report_fields(index: int) -> dict[str, str]:
    """A filled 3-leg paper report as the stream holds it."""
    D = Decimal
    legs = tuple(LegFill(
        leg=leg, pair=("BTC-USDT", "ETH-BTC", "ETH-USDT")[leg], side=("buy", "buy", "sell")[leg],
        order_id=f"6650e1b2c3d4e5f6a7b8c9{index:06d}{leg}", input_currency=("USDT", "BTC", "ETH")[leg],
        output_currency=("BTC", "ETH", "USDT")[leg], spent=D("100.12345678"), received=D("0.00199812"),
        filled_size=D("0.0020"), filled_funds=D("100.0004"), avg_price=D("50012.3"), fee=D("0.000002"),
        fee_currency=("BTC", "ETH", "USDT")[leg], latency_ms=12.5 + leg,
    ) for leg in range(3))
    now_ms = int(time.time() * 1000)
    return report_to_fields(ExecutionReport(
        correlation_id=f"opp-{index:012d}-a1b2c3d4", status=Status.FILLED, mode="paper", fill_model="depth",
        triangle=("BTC-USDT", "ETH-BTC", "ETH-USDT"), primary_quote="USDT", predicted_bps=29.96,
        effective_bps=-3.125, profit=D("-0.031"), spent=D("100"), returned=D("99.969"), ts_ms=now_ms,
        book_ts_ms=now_ms - 3, signal_ts_ms=now_ms - 2, received_ts_ms=now_ms - 1, first_order_ms=0.412,
        total_ms=97.0, error="", worker="w0", host="trident-host-01", fills=legs,
        book_tops=tuple(BookTop(D("50000.1"), D("0.8123"), D("49990.2"), D("1.2345")) for _ in range(3)),
        timings=(("signal_received", 0.0), ("leg0_order_fired", 0.412)),
    ))


def _fill(url: str, count: int) -> int:
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for index in range(count):
        pipe.xadd("trident:reports", realistic_report_fields(index), maxlen=100_000, approximate=True)
        if index % 500 == 499:
            pipe.execute()
    pipe.execute()
    client.hset("trident:refusals", mapping={"triangle_busy": 12, "stale": 3, "rate_budget": 1})
    client.hset("trident:{reg}:config", mapping={"slots": 4})
    used = int(client.memory_usage("trident:reports", samples=0) or 0)
    client.close()
    return used


def _targets(raw_count: int | None) -> list[dict[str, Any]]:
    targets = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["type"] == "redis-datasource":
                    target = dict(target)
                    if raw_count is not None and target["keyName"] == "trident:reports" and target["count"] > 200:
                        target["count"] = raw_count
                    targets.append(target)
    return targets


def _grafana(url: str, targets: list[dict[str, Any]], stop: Any) -> None:
    """What Grafana's Redis data source sends on each refresh, until `stop` is set."""
    client = redis.Redis.from_url(url)
    while not stop.is_set():
        now_ms = int(time.time() * 1000)
        for target in targets:
            key = target["keyName"]
            if target["command"] == "xrevrange":
                client.xrevrange(key, f"{now_ms}-0", f"{now_ms - 6 * 3_600_000}-0", count=target.get("count") or None)
            elif target["command"] == "xrange":
                client.xrange(key, f"{now_ms - 6 * 3_600_000}-0", f"{now_ms}-0", count=target.get("count") or None)
            else:
                client.execute_command(target["command"].upper(), key)
        stop.wait(REFRESH_S)
    client.close()


async def _admissions(url: str, seconds: float, rate: float) -> list[int]:
    client = aioredis.Redis.from_url(url)
    registry = Registry(client, owner="bench")
    samples: list[int] = []
    interval = 1.0 / rate
    start = time.monotonic()
    index = 0
    while (now := time.monotonic()) - start < seconds:
        due = start + index * interval
        if due > now:
            await asyncio.sleep(due - now)
        request = LeaseRequest(f"b-{index}", f"t-{index % 997}", "USDT", (f"P{index % 997}-USDT",),
                               Decimal("100"), int(time.time() * 1000))
        began = time.perf_counter_ns()
        grant = await registry.acquire(request)
        if isinstance(grant, Grant):
            await registry.release(grant.lease_id, grant.token)
        samples.append(time.perf_counter_ns() - began)
        index += 1
    await client.aclose()
    return sorted(samples)


def _phase(url: str, name: str, targets: list[dict[str, Any]] | None, seconds: float, rate: float) -> dict[str, Any]:
    stop = multiprocessing.Event()
    grafana = None
    if targets is not None:
        grafana = multiprocessing.Process(target=_grafana, args=(url, targets, stop), daemon=True)
        grafana.start()
        time.sleep(0.2)  # its first refresh lands inside the measured window
    samples = asyncio.run(_admissions(url, seconds, rate))
    stop.set()
    if grafana is not None:
        grafana.join(REFRESH_S + 5)
    summary = {"phase": name, "n": len(samples), **{f"p{p}_ms": percentile(samples, p) / 1e6 for p in (50, 99, 99.9)},
               "max_ms": samples[-1] / 1e6}
    print(f"{name:<16} n={summary['n']:>6}  p50 {summary['p50_ms']:.3f} ms  p99 {summary['p99_ms']:.3f} ms  "
          f"p99.9 {summary['p99.9_ms']:.3f} ms  max {summary['max_ms']:.3f} ms", flush=True)
    return summary


def _slowlog(url: str) -> list[tuple[int, str]]:
    """The slowest commands since the last call, (µs, the command's first 60 characters), then reset."""
    client = redis.Redis.from_url(url)
    entries = []
    for entry in client.slowlog_get(10):
        command = entry["command"]
        entries.append((int(entry["duration"]), (command.decode() if isinstance(command, bytes) else str(command))[:60]))
    client.slowlog_reset()
    client.close()
    return sorted(entries, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=100_000, help="entries in the report stream (its MAXLEN)")
    parser.add_argument("--seconds", type=float, default=30.0, help="per phase (3 dashboard refreshes at 30)")
    parser.add_argument("--rate", type=float, default=200.0, help="admissions per second")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    with EmbeddedRedis() as server:
        used = _fill(server.url, args.reports)
        print(f"report stream: {args.reports} entries, {used / 1e6:.0f} MB ({used / args.reports:.0f} B each)")
        client = redis.Redis.from_url(server.url)
        client.config_set("slowlog-log-slower-than", 1000)
        client.slowlog_reset()
        client.close()
        results = [_phase(server.url, "quiet", None, args.seconds, args.rate)]
        results.append(_phase(server.url, "dashboards", _targets(None), args.seconds, args.rate))
        slow_new = _slowlog(server.url)
        results.append(_phase(server.url, "old dashboards", _targets(OLD_RAW_COUNT), args.seconds, args.rate))
        slow_old = _slowlog(server.url)
    ratio = results[1]["p99_ms"] / results[0]["p99_ms"]
    print(f"admission p99 with dashboards / quiet: {ratio:.2f}x (old dashboards: "
          f"{results[2]['p99_ms'] / results[0]['p99_ms']:.2f}x)")
    print(f"slowest Redis commands (µs): dashboards {slow_new[:3]}; old dashboards {slow_old[:3]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"phases": results, "p99_ratio": ratio, "slowlog_new": slow_new,
                                               "slowlog_old": slow_old}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
