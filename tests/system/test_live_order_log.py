"""Live mode's order log: per order sent, `order_placed`, `order_resolved` when its placement
outcome was unknown, then its end (filled, rejected, unwound), all written after the legs.

Against the simulator: the in-process venue of test_live_execute for exact figures and the
lost-answer case, and a real `trident run --mode live` for stdout JSON and the human file log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import structlog

from shared.codec import encode_frame
from shared.report import ExecutionReport, Status
from shared.store.registry import Registry
from sim.server import RunningSimulator
from tests.support.e2e import fresh_signal, markets_of, wait_until
from tests.support.processes import TridentProcess, trident_env
from tests.system.test_live_execute import CONTEXT, make_signal, venue
from tools.send import send_frames
from tools.synthetic import restamped
from worker.context import client_oid
from worker.execution_log import log_execution
from worker.live import LiveRuntime, execute_live, unwind_client_oid

_PER_ORDER = ("client_oid", "pair", "side", "filled_size", "filled_funds", "fee", "fee_currency", "latency_ms")


async def _run_and_log(runtime: LiveRuntime) -> tuple[ExecutionReport, list[dict[str, Any]], list[dict[str, Any]]]:
    """Run one triangle as the executor does (legs, then the log); the log lines while the legs
    ran and after, separately."""
    with structlog.testing.capture_logs() as during:
        report = await execute_live(make_signal("live-1"), runtime, CONTEXT, received_ms=0, received_ns=0)
    with structlog.testing.capture_logs() as after:
        log_execution(report, report.error_code)
    return report, during, after


def _orders(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"].startswith("order_")]


async def test_each_order_is_placed_then_filled_with_its_figures_and_nothing_before_the_legs_end(
    tmp_path: Path, redis_url: str
) -> None:
    async with venue(tmp_path, redis_url) as v:
        report, during, after = await _run_and_log(v.runtime())
    assert report.status == Status.FILLED
    assert not _orders(during) and not any(e["event"] == "execution" for e in during)
    assert [e["event"] for e in after] == ["order_placed", "order_filled"] * 3 + ["execution"]
    assert all(e["log_level"] == "info" for e in after)
    placed, filled = after[0:6:2], after[1:6:2]
    assert [e["client_oid"] for e in placed] == [client_oid("live-1", i) for i in range(3)]
    # what each order asked for: funds for the buys, size for the sell, as the simulator saw them
    assert [(e["pair"], e["side"], e.get("funds"), e.get("size")) for e in placed] == [
        ("BTC-USDT", "buy", "100", None), ("ETH-BTC", "buy", "0.001998", None), ("ETH-USDT", "sell", None, "0.0399")]
    assert placed[0]["line"] == f"PLACE BTC-USDT buy funds 100 USDT (leg 0, {client_oid('live-1', 0)})"
    for entry, fill in zip(filled, report.fills, strict=True):
        assert all(key in entry for key in _PER_ORDER)
        assert (entry["order_id"], entry["filled_size"], entry["fee"], entry["fee_currency"]) == (
            fill.order_id, str(fill.filled_size), str(fill.fee), fill.fee_currency)
        assert entry["latency_ms"] == round(fill.latency_ms, 3) and entry["latency_ms"] > 0
    assert filled[0]["line"] == "FILL BTC-USDT buy 0.002 @ 50000 fee 0.1 USDT"
    assert filled[2]["line"] == "FILL ETH-USDT sell 0.0399 @ 2510 fee 0.100149 USDT"


async def test_a_lost_placement_answer_logs_its_resolution_by_client_oid(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        v.sim.update_knobs(hang_after_match={"next_n": 1, "path": "/api/v1/hf/orders/sync"})
        report, during, after = await _run_and_log(v.runtime())
    assert report.status == Status.FILLED and not _orders(during)
    events = [e["event"] for e in after]
    assert events == ["order_placed", "order_resolved", "order_filled"] + ["order_placed", "order_filled"] * 2 + [
        "execution"]
    resolved = after[1]
    assert (resolved["client_oid"], resolved["resolved"], resolved["order_id"]) == (
        client_oid("live-1", 0), "found", report.fills[0].order_id)
    assert resolved["latency_ms"] >= 500  # the client's 0.5 s timeout passed before the query found it
    assert resolved["line"].startswith(f"RESOLVE BTC-USDT {client_oid('live-1', 0)}: placement outcome unknown, found")


async def test_a_placement_never_seen_resolves_as_not_found(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        v.sim.update_knobs(hang={"next_n": 1, "path": "/api/v1/hf/orders/sync"})  # never reaches matching
        report, _, after = await _run_and_log(v.runtime(resolve_timeout_s=0.2))
    assert report.status == Status.FAILED
    assert [e["event"] for e in after] == ["order_placed", "order_resolved", "order_rejected", "execution"]
    assert after[1]["resolved"] == "not found" and after[1]["order_id"] == ""


async def test_a_rejected_leg_and_its_unwind_each_get_their_lines(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        runtime = v.runtime(faults={client_oid("live-1", 1): {"reject": {"next_n": 1, "code": "200004"}}})
        report, during, after = await _run_and_log(runtime)
    assert report.status == Status.UNWOUND and not _orders(during)
    assert [e["event"] for e in after] == [
        "order_placed", "order_filled", "order_placed", "order_rejected", "order_placed", "order_unwound", "execution"]
    rejected, unwind_placed, unwound = after[3], after[4], after[5]
    assert (rejected["client_oid"], rejected["error_code"], rejected["funds"]) == (
        client_oid("live-1", 1), "200004", "0.001998")
    assert rejected["line"].startswith("REJECT ETH-BTC buy funds 0.001998 BTC (leg 1): KuCoin 200004")
    assert (unwind_placed["client_oid"], unwind_placed["size"]) == (unwind_client_oid("live-1", 1), "0.002")
    assert unwind_placed["line"].startswith("PLACE BTC-USDT sell size 0.002 BTC (unwind, ")
    assert (unwound["recovered"], unwound["fee"], unwound["fee_currency"]) == ("99.88002", "0.09998", "USDT")
    assert unwound["line"] == "UNWIND BTC-USDT sell 0.002 BTC → 99.88002 fee 0.09998 USDT"


async def test_a_live_service_logs_orders_as_json_and_readable_lines_in_the_file(
    redis_url: str, simulator: RunningSimulator, workdir: Path, trident_process: Callable[..., TridentProcess],
) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    await Registry(redis, owner="test").set_config(slots=10, enforce_pair=False)
    await redis.aclose()
    log_file = workdir / "trident.log"
    process = trident_process(trident_env(redis_url, simulator.url, workdir, metrics_port=0, mode="live",
                                          log_file=str(log_file)))
    await process.wait_ready()
    markets = await markets_of(simulator)

    def events() -> list[dict[str, Any]]:
        found = []
        for line in process.output.read_text().splitlines():
            if line.startswith("{") and ('"event":"order_' in line or '"event":"execution"' in line):
                found.append(json.loads(line))
        return found

    good = {**fresh_signal(markets, 0, "lvlog-ok"), "live": True}
    doomed = {**fresh_signal(markets, 1, "lvlog-doomed"), "live": True}
    await send_frames(process.socket_path, [encode_frame(restamped(good))], progress=False)
    await wait_until(lambda: any(e["event"] == "execution" for e in events()), 30)
    middle = doomed["triangle_key"][1]  # stops trading after the signal was made: leg 1 is refused
    simulator.sim.exchange.symbols[middle] = replace(simulator.sim.exchange.symbols[middle], enable_trading=False)
    await send_frames(process.socket_path, [encode_frame(restamped(doomed))], progress=False)
    await wait_until(lambda: sum(e["event"] == "execution" for e in events()) == 2, 30)
    ok = [e for e in events() if e["correlation_id"] == "lvlog-ok"]
    assert [e["event"] for e in ok] == ["order_placed", "order_filled"] * 3 + ["execution"]
    assert ok[-1]["status"] == "filled" and all(e["level"] == "info" for e in ok)
    bad = [e["event"] for e in events() if e["correlation_id"] == "lvlog-doomed"]
    assert bad == ["order_placed", "order_filled", "order_placed", "order_rejected", "order_placed",
                   "order_unwound", "execution"]
    await wait_until(lambda: log_file.exists() and "UNWOUND lvlog-doomed" in log_file.read_text(), 10)
    text = log_file.read_text()
    fill = next(e for e in ok if e["event"] == "order_filled")
    assert (f"FILL {fill['pair']} {fill['side']} {fill['filled_size']} @ {fill['avg_price']} "
            f"fee {fill['fee']} {fill['fee_currency']}") in text
    assert text.count(" PLACE ") == 6 and text.count(" FILL ") == 4 and " REJECT " in text and " UNWIND " in text
