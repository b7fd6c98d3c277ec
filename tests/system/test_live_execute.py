"""Live triangles against the simulator and a real Redis, amounts worked out by hand.

Market (taker fee 0.001 everywhere, charged in the quote): BTC-USDT ask 50000 / bid 49990,
ETH-BTC ask 0.05 / bid 0.0499, ETH-USDT ask 2511 / bid 2510, deep books. Account: 1000 USDT.
Triangle USDT → BTC → ETH → USDT with 100 USDT:
- leg 0 buys BTC with 100 USDT: 0.002 BTC, fee 0.1 USDT (on top) → spends 100.1 USDT;
- leg 1 spends 0.002 / 1.001 = 0.001998001998 → 0.00199800 BTC (increment 1e-8) on ETH:
  0.03996 ETH for 0.001998 BTC + 0.000001998 fee → 0.000000002 BTC of dust stays;
- leg 2 sells 0.03996 → 0.0399 ETH (increment 1e-4) at 2510 = 100.149, fee 0.100149 → 100.048851.
Every test also checks the ground truth: the simulator's balances equal the starting ones plus
what the report (decoded from its stream encoding) says the account did.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from shared.kucoin.rest import KucoinRest
from shared.kucoin.ws import PrivateWs
from shared.report import ExecutionReport, Status, report_from_fields, report_to_fields
from shared.signal import Signal, parse_signal
from shared.store.journal import Journal, journal_key
from sim import DEMO_CREDENTIALS, SimConfig, start_simulator
from sim.server import RunningSimulator
from tests.support.reconcile import assert_reconciles
from tests.support.sim import write_markets
from worker.context import ExecutionContext, client_oid
from worker.live import LiveRuntime, execute_live, unwind_client_oid
from worker.live_order import OrderOutcome, OrderRunner, OrderSpec

CONTEXT = ExecutionContext(worker="test/w0", host="test", mode="live", fill_model="depth")


def _symbol(name: str, base_min: str, base_inc: str, quote_inc: str, price_inc: str, min_funds: str,
            ask: str, bid: str) -> dict[str, Any]:
    return {"symbol": name, "baseMinSize": base_min, "quoteMinSize": min_funds, "baseIncrement": base_inc,
            "quoteIncrement": quote_inc, "priceIncrement": price_inc, "minFunds": min_funds,
            "takerFeeRate": "0.001", "makerFeeRate": "0.001",
            "book": {"asks": [[ask, "100"]], "bids": [[bid, "100"]]}}


MARKETS: dict[str, Any] = {
    "symbols": [
        _symbol("BTC-USDT", "0.00001", "0.00000001", "0.000001", "0.1", "0.1", "50000", "49990"),
        _symbol("ETH-BTC", "0.0001", "0.0000001", "0.00000001", "0.00001", "0.00001", "0.05", "0.0499"),
        _symbol("ETH-USDT", "0.0001", "0.0001", "0.000001", "0.01", "0.1", "2511", "2510"),
    ],
    "balances": {"USDT": "1000"},
}
START = {"USDT": D("1000")}


def _leg(pair: str, side: str, param: str, base_min: str, base_inc: str, quote_inc: str, fee_ccy: str) -> dict:
    return {"pair": pair, "side": side, "order_param": param, "base_min_size": base_min, "base_increment": base_inc,
            "quote_increment": quote_inc, "fee_rate": "0.001", "fee_currency": fee_ccy}


def make_signal(cid: str) -> Signal:
    book = lambda ask, bid: {"asks": [{"price": ask, "size": "100"}], "bids": [{"price": bid, "size": "100"}]}  # noqa: E731
    return parse_signal({
        "correlation_id": cid, "triangle_key": ["BTC-USDT", "ETH-BTC", "ETH-USDT"], "primary_quote": "USDT",
        "starting_volume": "100", "predicted_bps": 1.5, "live": True,
        "legs": [
            _leg("BTC-USDT", "buy", "100", "0.00001", "0.00000001", "0.000001", "USDT"),
            _leg("ETH-BTC", "buy", "0.001998", "0.0001", "0.0000001", "0.00000001", "BTC"),
            _leg("ETH-USDT", "sell", "0.0399", "0.0001", "0.0001", "0.000001", "USDT"),
        ],
        "books": [book("50000", "49990"), book("0.05", "0.0499"), book("2511", "2510")],
        "book_ts_ms": 1795600000000, "ts_ms": 1795600000001,
    })


class FaultBefore(OrderRunner):
    """The real runner, turning simulator knobs on just before the order with a given clientOid."""

    def __init__(self, sim: Any, faults: dict[str, dict[str, Any]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sim = sim
        self.faults = faults

    async def run(self, spec: OrderSpec) -> OrderOutcome:
        knobs = self.faults.pop(spec.client_oid, None)
        if knobs:
            self.sim.update_knobs(knobs)
        return await super().run(spec)


class Venue:
    """A simulator, a client and private WebSocket on it, and a journal in the test's Redis."""

    def __init__(self, running: RunningSimulator, client: KucoinRest, ws: PrivateWs, redis: aioredis.Redis) -> None:
        self.running, self.client, self.ws, self.redis = running, client, ws, redis
        self.sim = running.sim

    def runtime(self, fills: str = "sync", policy: str = "unwind", faults: dict[str, dict[str, Any]] | None = None,
                journal: Journal | None = None, resolve_timeout_s: float = 2.0,
                balance_wait_ms: int = 0) -> LiveRuntime:
        orders = FaultBefore(self.sim, faults or {}, self.client, self.ws, fills=fills, fill_timeout_s=2.0,
                             resolve_timeout_s=resolve_timeout_s)
        return LiveRuntime(orders, journal or Journal(self.redis), policy, self.ws, balance_wait_ms)

    async def execute(self, runtime: LiveRuntime, cid: str = "live-1",
                      cancelled: Callable[[], bool] = lambda: False) -> ExecutionReport:
        report = await execute_live(make_signal(cid), runtime, CONTEXT, received_ms=0, received_ns=0,
                                    cancelled=cancelled)
        # what operators and Grafana see is the stream entry: reconcile against that
        decoded = report_from_fields(report_to_fields(report))
        assert decoded.unwinds == report.unwinds and decoded.fills == report.fills
        return decoded

    def orders(self) -> list[Any]:
        return [e for e in self.sim.order_log.entries() if e.kind in ("place", "sync")]

    def assert_reconciles(self, report: ExecutionReport, start: dict[str, D] = START) -> None:
        """Simulator balances == start + every amount the report says moved, to the last digit."""
        assert_reconciles(start, self.sim.balances(), [report])


@asynccontextmanager
async def venue(tmp_path: Path, redis_url: str, markets: dict[str, Any] = MARKETS) -> AsyncIterator[Venue]:
    running = await start_simulator(config=SimConfig(markets_path=write_markets(tmp_path, markets)))
    redis = aioredis.Redis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession() as session:
            client = KucoinRest(session, running.url, DEMO_CREDENTIALS, timeout_s=0.5)
            ws = PrivateWs(client, session)
            await ws.start()
            assert await ws.wait_connected(5)
            try:
                yield Venue(running, client, ws, redis)
            finally:
                await ws.close()
    finally:
        await redis.aclose()
        await running.stop()


@pytest.mark.parametrize("fills", ["sync", "ws"])
async def test_happy_path_fees_from_the_fills_reconcile_exactly(tmp_path: Path, redis_url: str, fills: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        report = await v.execute(v.runtime(fills))
        assert (report.status, report.mode, report.error) == (Status.FILLED, "live", "")
        leg0, leg1, leg2 = report.fills
        assert (leg0.filled_size, leg0.filled_funds, leg0.fee, leg0.spent) == (D("0.002"), D("100"), D("0.1"), D("100.1"))
        assert (leg1.filled_funds, leg1.fee, leg1.fee_currency) == (D("0.001998"), D("0.000001998"), "BTC")
        assert (leg1.spent, leg1.received) == (D("0.001999998"), D("0.03996"))
        assert (leg2.filled_size, leg2.fee, leg2.received) == (D("0.0399"), D("0.100149"), D("100.048851"))
        assert (report.spent, report.returned, report.profit) == (D("100.1"), D("100.048851"), D("-0.051149"))
        edge = report.edge  # the signal's books are the exchange's: no latency drift, fees cost
        assert edge.latency == 0 and edge.fees > 0
        assert edge.predicted - edge.model - edge.fees - edge.slippage - edge.latency - edge.rounding == D(
            f"{report.effective_bps:.3f}")
        assert v.sim.balances() == {"USDT": D("999.948851"), "BTC": D("0.000000002"), "ETH": D("0.00006")}
        v.assert_reconciles(report)
        # one order per leg, each with its deterministic id, sized from what the previous one delivered
        placed = v.orders()
        assert [e.client_oid for e in placed] == [client_oid("live-1", i) for i in range(3)]
        assert [e.kind for e in placed] == ["sync" if fills == "sync" else "place"] * 3
        amounts = [D(e.funds) if e.funds else D(e.size) for e in placed]
        assert amounts == [D("100"), D("0.001998"), D("0.0399")] and [e.funds is None for e in placed] == [
            False, False, True]
        journal = await Journal(v.redis).read("live-1")
        assert (journal["state"], journal["status"]) == ("done", "filled")
        assert [journal[f"leg{i}_state"] for i in range(3)] == ["done"] * 3
        assert journal["leg2_fee"] == "0.100149" and journal["leg1_fee_currency"] == "BTC"
        assert journal["leg0_order_id"] == leg0.order_id
        assert await v.redis.ttl(journal_key("live-1")) > 0


async def test_leg1_rejected_unwinds_the_btc_back_to_usdt(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        runtime = v.runtime(faults={client_oid("live-1", 1): {"reject": {"next_n": 1, "code": "200004"}}})
        report = await v.execute(runtime)
        assert report.status == Status.UNWOUND
        assert "leg 1" in report.error and "200004" in report.error
        assert len(report.fills) == 1 and report.edge.fees == 0  # nothing to attribute
        (unwind,) = report.unwinds
        # 0.002 BTC sold at 49990 = 99.98 USDT, fee 0.09998 → 99.88002 recovered
        assert (unwind.leg, unwind.currency, unwind.stranded, unwind.spent) == (1, "BTC", D("0.002"), D("0.002"))
        assert (unwind.pair, unwind.side, unwind.recovered, unwind.fee) == ("BTC-USDT", "sell", D("99.88002"), D("0.09998"))
        assert (report.returned, report.profit) == (D("99.88002"), D("-0.21998"))
        assert v.sim.balances() == {"USDT": D("999.78002"), "BTC": D("0")}
        v.assert_reconciles(report)
        placed = v.orders()
        assert [e.client_oid for e in placed] == [client_oid("live-1", 0), client_oid("live-1", 1),
                                                  unwind_client_oid("live-1", 1)]
        assert placed[1].code == "200004"
        journal = await Journal(v.redis).read("live-1")
        assert (journal["status"], journal["leg1_state"], journal["unwind1_state"]) == ("unwound", "rejected", "done")


async def test_a_refused_leg_gives_the_report_the_exchange_code_as_data(tmp_path: Path, redis_url: str) -> None:
    """The metrics' code label comes from the KucoinError where it was caught; the text stays for people."""
    async with venue(tmp_path, redis_url) as v:
        runtime = v.runtime(faults={client_oid("live-1", 1): {"reject": {"next_n": 1, "code": "200004"}}})
        report = await execute_live(make_signal("live-1"), runtime, CONTEXT, received_ms=0, received_ns=0)
        assert (report.status, report.error_code) == (Status.UNWOUND, "200004")
        assert report.error.startswith("leg 1: KuCoin 200004: ")
        assert report_from_fields(report_to_fields(report)).error == report.error


async def test_leg2_rejected_unwinds_the_eth(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        report = await v.execute(v.runtime(faults={client_oid("live-1", 2): {"reject": 1}}))
        assert report.status == Status.UNWOUND and len(report.fills) == 2
        (unwind,) = report.unwinds
        # 0.03996 ETH held; 0.0399 sellable (increment 1e-4) → the same 100.048851 USDT as leg 2 would have
        assert (unwind.leg, unwind.currency, unwind.stranded, unwind.spent) == (2, "ETH", D("0.03996"), D("0.0399"))
        assert unwind.recovered == D("100.048851")
        v.assert_reconciles(report)


async def test_hold_policy_keeps_the_stranded_btc(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        runtime = v.runtime(policy="hold", faults={client_oid("live-1", 1): {"reject": 1}})
        report = await v.execute(runtime)
        assert report.status == Status.STRANDED
        (unwind,) = report.unwinds
        assert (unwind.currency, unwind.stranded, unwind.spent, unwind.recovered, unwind.order_id) == (
            "BTC", D("0.002"), D("0"), D("0"), "")
        assert v.sim.balances() == {"USDT": D("899.9"), "BTC": D("0.002")}
        assert len(v.orders()) == 2  # nothing was sold
        v.assert_reconciles(report)


async def test_partial_fill_on_leg1_sizes_leg2_from_what_filled(tmp_path: Path, redis_url: str) -> None:
    thin = copy.deepcopy(MARKETS)
    thin["symbols"][1]["book"]["asks"] = [["0.05", "0.02"]]  # only 0.02 ETH for sale
    async with venue(tmp_path, redis_url, thin) as v:
        report = await v.execute(v.runtime())
        leg0, leg1, leg2 = report.fills
        # leg 1 wanted 0.03996 ETH, got 0.02 for 0.001 BTC (+0.000001 fee); the rest was cancelled
        assert (leg1.filled_size, leg1.spent) == (D("0.02"), D("0.001001"))
        assert leg2.filled_size == D("0.02") and D(v.orders()[2].size) == D("0.02")
        assert leg2.received == D("50.1498")  # 0.02 × 2510 = 50.2, fee 0.0502
        (unwind,) = report.unwinds
        # 0.002 − 0.001001 = 0.000999 BTC stranded, sold at 49990 = 49.94001, fee 0.04994001
        assert (unwind.leg, unwind.stranded, unwind.spent, unwind.recovered) == (
            1, D("0.000999"), D("0.000999"), D("49.89006999"))
        assert report.status == Status.UNWOUND and report.error == ""
        assert report.returned == D("50.1498") + D("49.89006999")
        v.assert_reconciles(report)


async def test_websocket_dropped_mid_leg_fill_learned_by_query_no_second_order(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        v.sim.ws_hub.update_knobs(cut={"next_n": 1, "event": "match"})  # leg 0's match: connection gone
        report = await v.execute(v.runtime("ws"))
        assert report.status == Status.FILLED
        assert v.ws.connects >= 2  # it reconnected (and reconciled)
        placed = v.orders()
        assert [e.client_oid for e in placed] == [client_oid("live-1", i) for i in range(3)]
        v.assert_reconciles(report)


@pytest.mark.parametrize("fills,path", [("sync", "/api/v1/hf/orders/sync"), ("ws", "/api/v1/hf/orders")])
async def test_placement_response_lost_is_resolved_by_client_oid(
    tmp_path: Path, redis_url: str, fills: str, path: str
) -> None:
    async with venue(tmp_path, redis_url) as v:
        v.sim.update_knobs(hang_after_match={"next_n": 1, "path": path})  # leg 0 matches, its answer never comes
        task = asyncio.create_task(v.execute(v.runtime(fills)))
        while not v.orders():
            await asyncio.sleep(0.005)
        # the journal said what was being placed before the exchange saw it
        journal = await Journal(v.redis).read("live-1")
        assert (journal["leg0_state"], journal["leg0_client_oid"]) == ("placing", client_oid("live-1", 0))
        report = await task
        assert report.status == Status.FILLED
        placed = v.orders()
        assert [e.client_oid for e in placed] == [client_oid("live-1", i) for i in range(3)]
        assert report.fills[0].order_id == placed[0].order_id
        assert report.fills[0].latency_ms >= 500  # the client's 0.5 s timeout passed: the answer was lost
        v.assert_reconciles(report)


@pytest.mark.parametrize("hf_not_found", [False, True])  # 400100 `order not exist.` or HF's 126043
async def test_placement_lost_before_the_exchange_is_not_placed_again(
    tmp_path: Path, redis_url: str, hf_not_found: bool
) -> None:
    async with venue(tmp_path, redis_url) as v:
        v.sim.update_knobs(order_not_exist_126043=hf_not_found)
        v.sim.update_knobs(hang={"next_n": 1, "path": "/api/v1/hf/orders/sync"})  # never reaches matching
        report = await v.execute(v.runtime(resolve_timeout_s=0.2))
        assert report.status == Status.FAILED
        assert "leg 0" in report.error and "not found by clientOid" in report.error
        assert len(v.orders()) == 1 and v.sim.balances() == START
        journal = await Journal(v.redis).read("live-1")
        assert (journal["status"], journal["leg0_state"]) == ("failed", "rejected")


async def test_cancel_after_leg0_unwinds(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        report = await v.execute(v.runtime(), cancelled=lambda: len(v.orders()) >= 1)
        assert (report.status, report.error, len(report.fills)) == (Status.UNWOUND, "cancelled", 1)
        assert report.unwinds[0].spent == D("0.002")
        v.assert_reconciles(report)


async def test_an_execution_is_never_run_twice_nor_without_its_journal(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        assert (await v.execute(v.runtime())).status == Status.FILLED
        again = await v.execute(v.runtime())
        assert again.status == Status.FAILED and "already journaled" in again.error
        dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        try:
            blind = await v.execute(v.runtime(journal=Journal(dead)), cid="live-2")
        finally:
            await dead.aclose()
        assert blind.status == Status.FAILED and "journal unavailable" in blind.error
        assert len(v.orders()) == 3


async def test_private_websocket_down_legs_still_run_and_learn_fills_by_query(tmp_path: Path, redis_url: str) -> None:
    """The seed failed a live leg with `ws_not_connected`; here a leg never waits on a socket that is down."""
    async with venue(tmp_path, redis_url) as v:
        await v.ws.close()
        assert not v.ws.connected
        report = await v.execute(v.runtime("ws"))
        assert report.status == Status.FILLED
        assert all(fill.latency_ms < 1000 for fill in report.fills)  # none waited out fill_timeout_s (2 s)
        assert [e.client_oid for e in v.orders()] == [client_oid("live-1", i) for i in range(3)]
        v.assert_reconciles(report)


async def test_fee_inside_funds_the_report_still_reconciles_to_the_last_increment(tmp_path: Path, redis_url: str) -> None:
    """KuCoin holds a buy's taker fee on top of `funds` (the simulator's default, and what its docs
    say: "the system puts a hold on a portion of the funds in your account to pay the taker fee");
    were it inside, the client still reads what moved from `dealFunds` and `fee`."""
    async with venue(tmp_path, redis_url) as v:
        v.sim.update_knobs(fee_inside_funds=True)
        report = await v.execute(v.runtime())
        assert len(report.fills) == 3 and report.fills[0].spent <= D("100")  # the fee came out of the 100
        assert [e.client_oid for e in v.orders()][:3] == [client_oid("live-1", i) for i in range(3)]
        v.assert_reconciles(report)


async def test_insufficient_balance_on_a_chained_leg_waits_for_the_push_and_runs_once_more(
    tmp_path: Path, redis_url: str
) -> None:
    """The exchange refuses leg 1 (200004: not placed) while leg 0's BTC push is still on its way
    (300 ms late): the leg waits for the push, then the same order runs once and fills."""
    async with venue(tmp_path, redis_url) as v:
        v.sim.ws_hub.update_knobs(delay_ms=300)
        faults = {client_oid("live-1", 1): {"reject": {"next_n": 1, "code": "200004"}}}
        before = v.ws.balance("BTC")
        started = time.monotonic()
        report = await v.execute(v.runtime(faults=faults, balance_wait_ms=2000))
        elapsed_s = time.monotonic() - started
        assert (report.status, report.balance_waits, report.error) == (Status.FILLED, 1, "")
        assert report.fills[1].latency_ms < 250  # the retry alone: the wait is not a leg's latency
        assert 0.3 <= elapsed_s < 2.0  # it waited for the late push, not out the 2 s bound
        assert before is None or before.available == 0
        calls = [(e.client_oid, e.code) for e in v.orders()]
        assert calls == [(client_oid("live-1", 0), "200000"), (client_oid("live-1", 1), "200004"),
                         (client_oid("live-1", 1), "200000"), (client_oid("live-1", 2), "200000")]
        v.assert_reconciles(report)


async def test_insufficient_balance_twice_stops_the_triangle_after_one_retry(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url) as v:
        faults = {client_oid("live-1", 1): {"reject": {"next_n": 2, "code": "200004"}}}
        report = await v.execute(v.runtime(faults=faults, balance_wait_ms=200))
        assert (report.status, report.balance_waits) == (Status.UNWOUND, 1) and "200004" in report.error
        assert [e.code for e in v.orders() if e.client_oid == client_oid("live-1", 1)] == ["200004", "200004"]
        v.assert_reconciles(report)
