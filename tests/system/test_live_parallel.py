"""The parallel live strategy against the simulator under its fault knobs, amounts by hand.

Same market and signal as test_live_execute.py, but the account holds all three currencies
(1000 USDT, 0.01 BTC, 0.5 ETH), and the legs go at once, each sized from the signal:
- leg 0 buys BTC with 100 USDT: +0.002 BTC, −100.1 USDT (fee 0.1 on top);
- leg 1 buys ETH with 0.001998 BTC: +0.03996 ETH, −0.001999998 BTC (fee 0.000001998 BTC);
- leg 2 sells 0.0399 ETH at 2510: +100.048851 USDT (fee 0.100149), −0.0399 ETH.
Every test reconciles the simulator's balances with the report to the last increment and checks
that no clientOid was placed twice.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from shared.report import ExecutionReport, Status, report_from_fields, report_to_fields
from shared.store import keys
from shared.store.journal import Journal
from tests.support.reconcile import assert_reconciles
from tests.system.test_live_execute import CONTEXT, MARKETS, FaultBefore, Venue, make_signal, venue
from worker.context import client_oid
from worker.live import LiveRuntime, unwind_client_oid
from worker.live_order import OrderOutcome, OrderSpec
from worker.live_parallel import execute_parallel

HELD = copy.deepcopy(MARKETS)
HELD["balances"] = {"USDT": "1000", "BTC": "0.01", "ETH": "0.5"}
START = {"USDT": D("1000"), "BTC": D("0.01"), "ETH": D("0.5")}
OIDS = [client_oid("par-1", i) for i in range(3)]


class Recording(FaultBefore):
    """Faults before chosen orders, and a log of when each order started and ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[tuple[str, str]] = []

    async def run(self, spec: OrderSpec) -> OrderOutcome:
        self.events.append(("start", spec.client_oid))
        try:
            return await super().run(spec)
        finally:
            self.events.append(("end", spec.client_oid))


def runtime(v: Venue, *, faults: dict[str, dict[str, Any]] | None = None, rebalance: str = "hold",
            fills: str = "sync", resolve_timeout_s: float = 2.0) -> LiveRuntime:
    # the legs run at once, so each fault is aimed at its order's clientOid (the simulator's client_oid)
    aimed = {oid: {knob: {**({"next_n": value} if isinstance(value, int) else value), "client_oid": oid}
                   for knob, value in knobs.items()} for oid, knobs in (faults or {}).items()}
    orders = Recording(v.sim, aimed, v.client, v.ws, fills=fills, fill_timeout_s=2.0,
                       resolve_timeout_s=resolve_timeout_s)
    return LiveRuntime(orders, Journal(v.redis), "unwind", v.ws, 0, rebalance)


async def execute(v: Venue, rt: LiveRuntime) -> ExecutionReport:
    report = await execute_parallel(make_signal("par-1"), rt, CONTEXT, received_ms=0, received_ns=0)
    decoded = report_from_fields(report_to_fields(report))  # reconcile what the stream carries
    assert (decoded.fills, decoded.unwinds, decoded.inventory) == (report.fills, report.unwinds, report.inventory)
    assert decoded.strategy == "parallel"
    assert_reconciles(START, v.sim.balances(), [decoded])
    inventory = dict(decoded.inventory)
    for currency in START:  # the report's inventory change is the account's, to the last digit
        assert v.sim.balances().get(currency, D(0)) - START[currency] == inventory.get(currency, D(0)), currency
    placed = [e.client_oid for e in v.orders() if e.code == "200000"]
    assert len(placed) == len(set(placed)), "a clientOid was placed twice"
    return decoded


async def test_three_legs_at_once_and_the_inventory_change(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url, HELD) as v:
        rt = runtime(v)
        report = await execute(v, rt)
        assert (report.status, report.error) == (Status.FILLED, "")
        assert dict(report.inventory) == {"USDT": D("-0.051149"), "BTC": D("0.000000002"), "ETH": D("0.00006")}
        assert (report.spent, report.returned) == (D("100.1"), D("100.048851"))
        # every order was placed before any finished: one round trip, not three
        events = rt.orders.events  # type: ignore[attr-defined]
        assert [kind for kind, _ in events[:3]] == ["start"] * 3
        assert sorted(oid for _, oid in events[:3]) == sorted(OIDS)
        assert sorted(e.client_oid for e in v.orders()) == sorted(OIDS)
        amounts = {e.client_oid: D(e.funds) if e.funds else D(e.size) for e in v.orders()}
        assert amounts == dict(zip(OIDS, [D("100"), D("0.001998"), D("0.0399")], strict=True))  # from the signal
        journal = await Journal(v.redis).read("par-1")
        assert (journal["status"], [journal[f"leg{i}_state"] for i in range(3)]) == ("filled", ["done"] * 3)
        # the balance view it traded from is published for the registry's claims
        seen = await v.redis.hgetall(keys.INVENTORY)
        assert set(seen) == {b"USDT", b"BTC", b"ETH"}


async def test_reject_on_one_leg_holds_and_says_imbalanced(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url, HELD) as v:
        report = await execute(v, runtime(v, faults={OIDS[1]: {"reject": {"next_n": 1, "code": "400100"}}}))
        assert report.status == Status.IMBALANCED and "leg 1" in report.error
        assert [f.order_id == "" for f in report.fills] == [False, True, False]  # leg 1 keeps its slot, empty
        assert dict(report.inventory) == {"USDT": D("-0.051149"), "BTC": D("0.002"), "ETH": D("-0.0399")}
        assert report.unwinds == ()


async def test_reject_on_one_leg_convert_runs_that_conversion_once_more(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url, HELD) as v:
        faults = {OIDS[1]: {"reject": {"next_n": 1, "code": "400100"}}}
        report = await execute(v, runtime(v, faults=faults, rebalance="convert"))
        assert report.status == Status.UNWOUND
        (conversion,) = report.unwinds
        # the 0.002 BTC leg 0 delivered buys ETH on ETH-BTC (funds 0.002 / 1.001 → 0.001998)
        assert (conversion.leg, conversion.pair, conversion.side, conversion.currency) == (1, "ETH-BTC", "buy", "BTC")
        assert (conversion.recovered, conversion.recovered_currency) == (D("0.03996"), "ETH")
        assert dict(report.inventory) == {"USDT": D("-0.051149"), "BTC": D("0.000000002"), "ETH": D("0.00006")}
        assert unwind_client_oid("par-1", 1) in [e.client_oid for e in v.orders()]


async def test_two_legs_rejected_convert_reverses_the_one_that_filled(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url, HELD) as v:
        faults = {OIDS[1]: {"reject": 1}, OIDS[2]: {"fail_5xx": 1}}  # one knob of each kind: one order each
        report = await execute(v, runtime(v, faults=faults, rebalance="convert", resolve_timeout_s=0.2))
        assert report.status == Status.UNWOUND and len(report.fills) == 1
        (conversion,) = report.unwinds
        # 0.002 BTC sold back at 49990: 99.98, fee 0.09998
        assert (conversion.pair, conversion.side, conversion.spent, conversion.recovered) == (
            "BTC-USDT", "sell", D("0.002"), D("99.88002"))
        assert dict(report.inventory) == {"USDT": D("-0.21998"), "BTC": D("0")}


async def test_hang_after_match_is_resolved_by_client_oid_not_placed_again(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url, HELD) as v:
        faults = {OIDS[2]: {"hang_after_match": {"next_n": 1, "path": "/api/v1/hf/orders/sync"}}}
        report = await execute(v, runtime(v, faults=faults))
        assert report.status == Status.FILLED
        assert sorted(e.client_oid for e in v.orders()) == sorted(OIDS)
        assert report.fills[2].latency_ms >= 500  # the client's 0.5 s timeout passed: found by its clientOid


async def test_5xx_on_a_leg_not_placed_is_imbalanced_and_never_retried(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url, HELD) as v:
        faults = {OIDS[0]: {"fail_5xx": {"next_n": 1, "path": "/api/v1/hf/orders/sync"}}}
        report = await execute(v, runtime(v, faults=faults, resolve_timeout_s=0.2))
        assert report.status == Status.IMBALANCED and "not found by clientOid" in report.error
        assert report.fills[0].order_id == "" and len(report.fills) == 3
        assert sorted(e.client_oid for e in v.orders()) == sorted(OIDS)  # one attempt each


async def test_websocket_cut_mid_triangle_fills_learned_by_query(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url, HELD) as v:
        v.sim.ws_hub.update_knobs(cut={"next_n": 1, "event": "match"})
        report = await execute(v, runtime(v, fills="ws"))
        assert report.status == Status.FILLED
        assert sorted(e.client_oid for e in v.orders()) == sorted(OIDS)


async def test_the_balance_view_short_places_nothing(tmp_path: Path, redis_url: str) -> None:
    poor = copy.deepcopy(HELD)
    poor["balances"] = {"USDT": "1000", "BTC": "0.01"}  # no ETH for leg 2
    async with venue(tmp_path, redis_url, poor) as v:
        rt = runtime(v)
        report = await execute_parallel(make_signal("par-1"), rt, CONTEXT, received_ms=0, received_ns=0)
        assert report.status == Status.FAILED and report.error.startswith("no_inventory: ETH 0.0399 needed")
        assert v.orders() == [] and v.sim.balances() == {"USDT": D("1000"), "BTC": D("0.01")}


@pytest.mark.parametrize("rebalance", ["hold", "convert"])
async def test_partial_leg_is_imbalanced_and_never_converted(tmp_path: Path, redis_url: str, rebalance: str) -> None:
    thin = copy.deepcopy(HELD)
    thin["symbols"][1]["book"]["asks"] = [["0.05", "0.02"]]  # leg 1 gets 0.02 of its 0.03996 ETH
    async with venue(tmp_path, redis_url, thin) as v:
        report = await execute(v, runtime(v, rebalance=rebalance))
        assert report.status == Status.IMBALANCED and report.unwinds == ()
        assert report.fills[1].filled_size == D("0.02")


async def test_two_parallel_triangles_at_once_reconcile(tmp_path: Path, redis_url: str) -> None:
    async with venue(tmp_path, redis_url, HELD) as v:
        rt = runtime(v)
        signals = [replace(make_signal(f"par-{i}"), correlation_id=f"par-{i}") for i in (1, 2)]
        reports = await asyncio.gather(*(execute_parallel(s, rt, CONTEXT, received_ms=0, received_ns=0)
                                         for s in signals))
        assert [r.status for r in reports] == [Status.FILLED, Status.FILLED]
        assert_reconciles(START, v.sim.balances(), [report_from_fields(report_to_fields(r)) for r in reports])
        assert len(v.orders()) == 6
