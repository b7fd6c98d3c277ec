"""Fault knobs (Python and HTTP admin API), the order log, and rate limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from sim import SimConfig
from tests.support.sim import SimHarness, running_sim, write_markets

SHORT_TIMEOUT_S = 0.3


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[SimHarness]:
    async with running_sim(SimConfig(markets_path=write_markets(tmp_path), spot_limit=20)) as h:
        yield h


def buy(client_oid: str, funds: str = "10") -> dict[str, str]:
    return {"clientOid": client_oid, "symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": funds}


async def test_fail_5xx_next_n_then_recovers(harness: SimHarness) -> None:
    harness.sim.update_knobs(fail_5xx=2)
    for oid in ("f1", "f2"):
        answer = await harness.place(buy(oid))
        assert (answer.status, answer.code) == (500, "500000")
    assert (await harness.place(buy("f3"))).code == "200000"
    assert harness.balance("USDT") > D("985")  # only f3 spent


async def test_fault_restricted_to_path_leaves_other_calls_alone(harness: SimHarness) -> None:
    harness.sim.update_knobs(fail_5xx={"next_n": 1, "path": "/api/v1/hf/orders"})
    assert (await harness.call("GET", "/api/v1/timestamp", signed=False)).status == 200
    assert (await harness.place(buy("s"), kind="sync")).status == 200  # other path, count kept
    assert (await harness.place(buy("p"))).status == 500
    harness.sim.update_knobs(fail_5xx={"path": "/api/v1/hf/*", "probability": 1.0})
    assert (await harness.place(buy("q"), kind="test")).status == 500
    assert (await harness.call("GET", "/api/v1/timestamp", signed=False)).status == 200


async def test_fail_5xx_probability(harness: SimHarness) -> None:
    harness.sim.update_knobs(fail_5xx={"probability": 1.0})
    assert [(await harness.call("GET", "/api/v1/timestamp", signed=False)).status for _ in range(3)] == [500] * 3
    harness.sim.update_knobs(fail_5xx={"probability": 0.0})
    assert (await harness.call("GET", "/api/v1/timestamp", signed=False)).status == 200


async def test_hang_client_times_out_and_nothing_executes(harness: SimHarness) -> None:
    harness.sim.update_knobs(hang=1)
    with pytest.raises(asyncio.TimeoutError):
        await harness.place(buy("hung"), timeout_s=SHORT_TIMEOUT_S)
    assert harness.balance("USDT") == D("1000")
    assert (await harness.get_by_client_oid("hung")).code == "400100"
    [entry] = harness.sim.order_log.entries()
    assert (entry.client_oid, entry.code, entry.order_id) == ("hung", None, None)
    assert (await harness.place(buy("after"))).code == "200000"


async def test_hang_after_match_order_recorded_answer_lost(harness: SimHarness) -> None:
    harness.sim.update_knobs(hang_after_match={"next_n": 1})
    with pytest.raises(asyncio.TimeoutError):
        await harness.place(buy("lost"), timeout_s=SHORT_TIMEOUT_S)
    order = (await harness.get_by_client_oid("lost")).data
    assert (order["active"], order["funds"]) == (False, "10")
    assert harness.balance("USDT") < D("1000")
    [entry] = harness.sim.order_log.entries()
    assert (entry.code, entry.order_id) == ("200000", order["id"])


async def test_force_429_does_not_charge_the_pool(harness: SimHarness) -> None:
    harness.sim.update_knobs(force_429=1)
    refused = await harness.place(buy("r"))
    assert (refused.status, refused.code, refused.body["msg"]) == (429, "429000", "Too Many Requests")
    assert refused.headers["gw-ratelimit-remaining"] == "20"
    ok = await harness.place(buy("r"))
    assert (ok.code, ok.headers["gw-ratelimit-remaining"]) == ("200000", "19")


async def test_reject_code_only_hits_order_calls(harness: SimHarness) -> None:
    harness.sim.update_knobs(reject={"next_n": 1, "code": "200004"})
    assert (await harness.call("GET", "/api/v1/accounts")).code == "200000"  # not an order call: count kept
    rejected = await harness.place(buy("rej"))
    assert (rejected.status, rejected.code, rejected.body["msg"]) == (200, "200004", "Insufficient balance.")
    assert harness.balance("USDT") == D("1000")
    assert (await harness.place(buy("rej"))).code == "200000"
    harness.sim.update_knobs(reject={"next_n": 1, "code": "123456", "msg": "custom"})
    custom = await harness.place(buy("c"), kind="test")
    assert (custom.code, custom.body["msg"]) == ("123456", "custom")


async def test_latency_and_jitter(harness: SimHarness) -> None:
    harness.sim.update_knobs(latency_ms=150)
    started = time.monotonic()
    await harness.call("GET", "/api/v1/timestamp", signed=False)
    assert time.monotonic() - started >= 0.15
    harness.sim.update_knobs(latency_ms=0, jitter_ms=40)
    started = time.monotonic()
    await harness.call("GET", "/api/v1/timestamp", signed=False)
    assert time.monotonic() - started < 1.0


async def test_admin_api_knobs_balances_orders_reset(harness: SimHarness) -> None:
    async def admin(method: str, path: str, body: object = None) -> tuple[int, object]:
        async with harness.session.request(method, harness.running.url + path, json=body) as response:
            return response.status, await response.json()

    status, knobs = await admin("POST", "/_sim/knobs", {"fail_5xx": 1, "latency_ms": 1})
    assert status == 200 and knobs["fail_5xx"]["next_n"] == 1 and knobs["latency_ms"] == 1
    assert (await admin("POST", "/_sim/knobs", {"no_such_knob": 1}))[0] == 400
    assert (await admin("POST", "/_sim/knobs", {"fail_5xx": "x"}))[0] == 400
    assert (await harness.place(buy("x"))).status == 500

    status, balances = await admin("POST", "/_sim/balances", {"USDT": "12.5"})
    assert balances["USDT"] == {"balance": "12.5", "available": "12.5", "holds": "0"}
    assert (await harness.place(buy("y"))).code == "200000"
    status, orders = await admin("GET", "/_sim/orders")
    assert [(o["client_oid"], o["code"]) for o in orders] == [("x", "500000"), ("y", "200000")]

    assert (await admin("POST", "/_sim/reset"))[0] == 200
    assert (await admin("GET", "/_sim/balances"))[1]["USDT"]["available"] == "1000"
    assert (await admin("GET", "/_sim/orders"))[1] == []
    assert (await admin("GET", "/_sim/knobs"))[1]["latency_ms"] == 0
    assert (await harness.get_by_client_oid("y")).code == "400100"


async def test_order_log_arrival_times_monotonic_and_in_order(harness: SimHarness) -> None:
    windows = []
    for oid, kind in (("a", ""), ("b", "test"), ("c", "sync")):
        sent_ns = time.monotonic_ns()
        await harness.place(buy(oid), kind=kind)
        windows.append((sent_ns, time.monotonic_ns()))
    await harness.place(buy("d"), signed=False, headers={"Content-Type": "application/json"})  # logged too
    entries = harness.sim.order_log.entries()
    assert [(e.client_oid, e.kind, e.code) for e in entries] == [
        ("a", "place", "200000"), ("b", "test", "200000"), ("c", "sync", "200000"), ("d", "place", "400001")]
    for entry, (sent_ns, answered_ns) in zip(entries, windows):
        assert sent_ns <= entry.arrival_ns <= answered_ns
    assert [e.arrival_ns for e in entries] == sorted(e.arrival_ns for e in entries)
    assert entries[0].funds == "10" and entries[0].symbol == "BTC-USDT" and entries[0].order_id


async def test_rate_limit_headers_count_down_by_weight(harness: SimHarness) -> None:
    placed = await harness.place(buy("w1"))  # weight 1
    assert (placed.headers["gw-ratelimit-limit"], placed.headers["gw-ratelimit-remaining"]) == ("20", "19")
    assert 0 < int(placed.headers["gw-ratelimit-reset"]) <= 30_000
    fetched = await harness.get_by_client_oid("w1")  # weight 2
    assert fetched.headers["gw-ratelimit-remaining"] == "17"
    bullet = await harness.call("POST", "/api/v1/bullet-private")  # weight 10
    assert bullet.headers["gw-ratelimit-remaining"] == "7"
    public = await harness.call("GET", "/api/v1/timestamp", signed=False)  # public pool, weight 3
    assert (public.headers["gw-ratelimit-limit"], public.headers["gw-ratelimit-remaining"]) == ("2000", "1997")

    exhausted = await harness.call("POST", "/api/v1/bullet-private")  # 10 > 7 left
    assert (exhausted.status, exhausted.code) == (429, "429000")
    assert exhausted.headers["gw-ratelimit-remaining"] == "7"
    assert (await harness.get_by_client_oid("w1")).headers["gw-ratelimit-remaining"] == "5"


async def test_rate_window_refills(tmp_path: Path) -> None:
    config = SimConfig(markets_path=write_markets(tmp_path), spot_limit=2, rate_window_ms=200)
    async with running_sim(config) as harness:
        first = await harness.get_by_client_oid("none")
        assert first.headers["gw-ratelimit-remaining"] == "0"
        refused = await harness.get_by_client_oid("none")
        assert refused.status == 429
        await asyncio.sleep(int(refused.headers["gw-ratelimit-reset"]) / 1000)  # wait out the window
        assert (await harness.get_by_client_oid("none")).headers["gw-ratelimit-remaining"] == "0"
