"""HF orders against a two-level book: fills, fees and balances checked against hand-worked examples.

Book (BTC-USDT, taker fee 0.001): asks 0.001 @ 50000, 0.01 @ 50010; bids 0.001 @ 49990,
0.01 @ 49980. Account: 1000 USDT, 1 BTC.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from sim import Knobs, SimConfig
from tests.support.sim import SimHarness, running_sim, write_markets

FULL_ORDER_FIELDS = {
    "id", "clientOid", "symbol", "opType", "type", "side", "price", "size", "funds", "dealSize", "dealFunds",
    "remainSize", "remainFunds", "cancelledSize", "cancelledFunds", "fee", "feeCurrency", "stp", "timeInForce",
    "postOnly", "hidden", "iceberg", "visibleSize", "cancelAfter", "channel", "remark", "tags", "cancelExist",
    "tradeType", "inOrderBook", "active", "tax", "createdAt", "lastUpdatedAt",
}
SYNC_FIELDS = {"orderId", "clientOid", "orderTime", "originSize", "dealSize", "remainSize", "canceledSize",
               "status", "matchTime"}
AMOUNT_FIELDS = ("price", "size", "funds", "dealSize", "dealFunds", "remainSize", "remainFunds", "cancelledSize",
                 "cancelledFunds", "fee", "visibleSize", "tax")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[SimHarness]:
    async with running_sim(SimConfig(markets_path=write_markets(tmp_path))) as h:
        yield h


def market(side: str, client_oid: str, **amount: str) -> dict[str, str]:
    return {"clientOid": client_oid, "symbol": "BTC-USDT", "side": side, "type": "market", **amount}


async def test_market_buy_by_funds_walks_two_levels(harness: SimHarness) -> None:
    placed = await harness.place(market("buy", "buy-funds", funds="100"))
    assert placed.data["clientOid"] == "buy-funds"
    assert re.fullmatch(r"[0-9a-f]{24}", placed.data["orderId"])

    # Level 1: 0.001 BTC for 50 USDT. 50 USDT left / 50010 = 0.00099980004 -> 0.0009998 BTC (8 dp).
    level2_qty = D("0.0009998")
    deal_size = D("0.001") + level2_qty
    deal_funds = D("50") + D("50010") * level2_qty  # 50 + 49.999998
    fee = deal_funds * D("0.001")
    assert (deal_size, deal_funds, fee) == (D("0.0019998"), D("99.999998"), D("0.099999998"))

    order = (await harness.get_by_client_oid("buy-funds")).data
    assert D(order["dealSize"]) == deal_size
    assert D(order["dealFunds"]) == deal_funds
    assert D(order["fee"]) == fee and order["feeCurrency"] == "USDT"
    assert D("50000") < D(order["dealFunds"]) / D(order["dealSize"]) < D("50010")  # VWAP between the levels
    assert (order["funds"], order["size"], order["cancelledFunds"], order["cancelExist"]) == ("100", "0", "0", False)
    assert order["active"] is False
    assert harness.balance("BTC") == D("1") + deal_size
    assert harness.balance("USDT") == D("1000") - deal_funds - fee == D("899.900002002")


async def test_market_sell_by_size_walks_two_levels(harness: SimHarness) -> None:
    await harness.place(market("sell", "sell-size", size="0.005"))
    order = (await harness.get_by_client_oid("sell-size")).data
    deal_funds = D("0.001") * D("49990") + D("0.004") * D("49980")  # 49.99 + 199.92
    fee = deal_funds * D("0.001")
    assert (D(order["dealSize"]), D(order["dealFunds"]), D(order["fee"])) == (D("0.005"), D("249.91"), fee)
    assert harness.balance("BTC") == D("0.995")
    assert harness.balance("USDT") == D("1000") + D("249.91") - D("0.24991")


async def test_market_buy_by_size_and_sell_by_funds(harness: SimHarness) -> None:
    await harness.place(market("buy", "buy-size", size="0.002"))
    bought = (await harness.get_by_client_oid("buy-size")).data
    assert D(bought["dealFunds"]) == D("50") + D("50.01")
    # Sell for 100 USDT of bids: 0.001 @ 49990 (49.99), then 50.01 / 49980 = 0.00100060 BTC.
    await harness.place(market("sell", "sell-funds", funds="100"))
    sold = (await harness.get_by_client_oid("sell-funds")).data
    assert D(sold["dealSize"]) == D("0.001") + D("0.0010006")
    assert D(sold["dealFunds"]) == D("49.99") + D("49980") * D("0.0010006")
    spent = D("100.01") * D("1.001")
    received = D(sold["dealFunds"]) * D("0.999")
    assert harness.balance("USDT") == D("1000") - spent + received
    assert harness.balance("BTC") == D("1") + D("0.002") - D("0.0020006")


async def test_partial_fill_cancels_remainder_sync_shape(harness: SimHarness) -> None:
    answer = await harness.place(market("buy", "too-big", size="0.02"), kind="sync")
    sync = answer.data
    assert set(sync) == SYNC_FIELDS
    assert (sync["status"], sync["originSize"], sync["dealSize"], sync["canceledSize"], sync["remainSize"]) == (
        "done", "0.02", "0.011", "0.009", "0")
    order = (await harness.get_by_client_oid("too-big")).data
    assert D(order["dealFunds"]) == D("50") + D("500.1")
    assert (order["cancelledSize"], order["cancelExist"], order["active"]) == ("0.009", True, False)
    assert harness.balance("USDT") == D("1000") - D("550.1") * D("1.001")


async def test_partial_fill_by_funds_cancels_remaining_funds(harness: SimHarness) -> None:
    await harness.place(market("buy", "deep", funds="800"))
    order = (await harness.get_by_client_oid("deep")).data
    assert (order["dealSize"], order["dealFunds"], order["cancelledFunds"]) == ("0.011", "550.1", "249.9")
    assert order["cancelExist"] is True


async def test_insufficient_balance_checked_for_worst_case(harness: SimHarness) -> None:
    harness.sim.set_balances({"USDT": "100"})  # 100 funds need 100.1 with the fee on top
    answer = await harness.place(market("buy", "short", funds="100"))
    assert (answer.status, answer.code, answer.body["msg"]) == (200, "200004", "Insufficient balance.")
    sell = await harness.place(market("sell", "short-btc", size="1.5"))
    assert sell.code == "200004"
    assert (harness.balance("USDT"), harness.balance("BTC")) == (D("100"), D("1"))
    assert (await harness.get_by_client_oid("short")).code == "400100"  # never stored


@pytest.mark.parametrize(
    ("amounts", "code", "msg"),
    [
        ({"size": "0.000001"}, "400100", "Order size below the minimum requirement."),
        ({"size": "0.000010001"}, "400100", "Order size increment invalid."),
        ({"funds": "0.05"}, "600100", "Funds below the minimum requirement."),
        ({"funds": "10.0000001"}, "400100", "Funds increment invalid."),
        ({"size": "abc"}, "300000", "Order size invalid."),
        ({"funds": "-1"}, "300000", "Order funds invalid."),
        ({"size": "0.001", "funds": "10"}, "400100", None),
        ({}, "400100", None),
    ],
)
async def test_amount_validation(harness: SimHarness, amounts: dict[str, str], code: str, msg: str | None) -> None:
    answer = await harness.place(market("buy", "bad", **amounts))
    assert answer.code == code
    if msg is not None:
        assert answer.body["msg"] == msg
    assert harness.balance("USDT") == D("1000")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"symbol": "NOPE-USDT"}, "900001"),
        ({"symbol": "DOGE-USDT", "funds": "10"}, "400600"),
        ({"clientOid": "has space"}, "400100"),
        ({"clientOid": "x" * 41}, "400100"),
        ({"side": "hold"}, "400100"),
        ({"tags": "t" * 21}, "400100"),
        ({"stp": "DC"}, "400100"),
    ],
)
async def test_parameter_validation(harness: SimHarness, overrides: dict[str, str], code: str) -> None:
    assert (await harness.place({**market("buy", "p-1", funds="10"), **overrides})).code == code


async def test_duplicate_client_oid(harness: SimHarness) -> None:
    assert (await harness.place(market("buy", "dup", funds="10"))).code == "200000"
    usdt_after_first = harness.balance("USDT")
    again = await harness.place(market("buy", "dup", funds="10"))
    assert again.code == "126044"
    assert harness.balance("USDT") == usdt_after_first


async def test_order_test_validates_but_never_executes(harness: SimHarness) -> None:
    answer = await harness.place(market("buy", "dry", funds="100"), kind="test")
    assert answer.data["clientOid"] == "dry" and re.fullmatch(r"[0-9a-f]{24}", answer.data["orderId"])
    assert (await harness.get_by_client_oid("dry")).code == "400100"
    assert harness.balance("USDT") == D("1000")
    assert (await harness.place(market("buy", "dry", size="0.000010001"), kind="test")).code == "400100"
    # Balance is not checked by default; the knob turns it on.
    assert (await harness.place(market("buy", "rich", funds="5000"), kind="test")).code == "200000"
    harness.sim.update_knobs(test_checks_balance=True)
    assert (await harness.place(market("buy", "rich", funds="5000"), kind="test")).code == "200004"


async def test_get_by_id_and_client_oid_full_shape(harness: SimHarness) -> None:
    placed = (await harness.place({**market("sell", "shape", size="0.001"), "remark": "r1", "tags": "t1"})).data
    by_id = await harness.call("GET", f"/api/v1/hf/orders/{placed['orderId']}?symbol=BTC-USDT")
    by_client = await harness.get_by_client_oid("shape")
    assert by_id.data == by_client.data
    order = by_id.data
    assert set(order) == FULL_ORDER_FIELDS
    assert all(isinstance(order[name], str) for name in AMOUNT_FIELDS)
    assert (order["id"], order["clientOid"], order["side"], order["type"]) == (
        placed["orderId"], "shape", "sell", "market")
    assert (order["remark"], order["tags"], order["active"], order["inOrderBook"]) == ("r1", "t1", False, False)
    assert isinstance(order["createdAt"], int) and order["lastUpdatedAt"] >= order["createdAt"]
    wrong_symbol = await harness.call("GET", f"/api/v1/hf/orders/{placed['orderId']}?symbol=DOGE-USDT")
    assert wrong_symbol.code == "400100"
    no_symbol = await harness.call("GET", f"/api/v1/hf/orders/{placed['orderId']}")
    assert no_symbol.code == "400100"


async def test_stp_is_null_unless_set_and_remain_funds_is_funds_minus_deal_funds(harness: SimHarness) -> None:
    await harness.place(market("buy", "plain", funds="100"))
    plain = (await harness.get_by_client_oid("plain")).data
    assert plain["stp"] is None  # KuCoin's SDK refuses "" here
    assert D(plain["remainFunds"]) == D("100") - D(plain["dealFunds"]) == D("0.000002")
    await harness.place({**market("sell", "with-stp", size="0.001"), "stp": "CN"})
    with_stp = (await harness.get_by_client_oid("with-stp")).data
    assert (with_stp["stp"], with_stp["remainFunds"]) == ("CN", "0")  # by size: no funds to remain


async def test_order_not_exist_answers_400100_or_hf_126043(harness: SimHarness) -> None:
    missing = await harness.get_by_client_oid("never")
    assert (missing.code, missing.body["msg"]) == ("400100", "order not exist.")
    harness.sim.update_knobs(order_not_exist_126043=True)
    missing = await harness.get_by_client_oid("never")
    assert (missing.code, missing.body["msg"]) == ("126043", "Order does not exist")
    by_id = await harness.call("GET", "/api/v1/hf/orders/670fd33bf9406e0007ab3945?symbol=BTC-USDT")
    assert by_id.code == "126043"


async def test_good_till_time_limit_order_is_accepted_and_rests(harness: SimHarness) -> None:
    limit = {"clientOid": "gtt", "symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "49000",
             "size": "0.001", "timeInForce": "GTT", "cancelAfter": 3600}
    sync = (await harness.place(limit, kind="sync")).data
    assert (sync["status"], sync["remainSize"]) == ("open", "0.001")
    order = (await harness.get_by_client_oid("gtt")).data
    assert (order["timeInForce"], order["active"]) == ("GTT", True)


async def test_cancel_market_order_refused_limit_order_cancelled(harness: SimHarness) -> None:
    market_id = (await harness.place(market("buy", "m", funds="10"))).data["orderId"]
    refused = await harness.call("DELETE", f"/api/v1/hf/orders/{market_id}?symbol=BTC-USDT")
    assert (refused.code, refused.body["msg"]) == ("400100", "order_not_exist_or_not_allow_to_cancel")

    usdt = harness.balance("USDT")
    limit = {"clientOid": "rest", "symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "49000",
             "size": "0.01"}
    sync = (await harness.place(limit, kind="sync")).data
    assert (sync["status"], sync["remainSize"], sync["dealSize"]) == ("open", "0.01", "0")
    held = D("0.01") * D("49000") * D("1.001")
    assert harness.balance("USDT") == usdt - held
    assert harness.sim.exchange.ledger.holds("USDT") == held
    cancelled = await harness.call("DELETE", f"/api/v1/hf/orders/{sync['orderId']}?symbol=BTC-USDT")
    assert cancelled.data == {"orderId": sync["orderId"]}
    order = (await harness.get_by_client_oid("rest")).data
    assert (order["active"], order["cancelledSize"], order["remainSize"]) == (False, "0.01", "0")
    assert harness.balance("USDT") == usdt


async def test_fee_inside_funds_knob(harness: SimHarness) -> None:
    harness.sim.update_knobs(fee_inside_funds=True)
    await harness.place(market("buy", "inside", funds="100"))
    order = (await harness.get_by_client_oid("inside")).data
    # Budget 100 / 1.001 = 99.9000999 -> 99.900099; level 1 takes 50, 49.900099 / 50010 -> 0.0009978 BTC.
    deal_funds = D("50") + D("50010") * D("0.0009978")
    assert D(order["dealFunds"]) == deal_funds
    assert harness.balance("USDT") == D("1000") - deal_funds * D("1.001")
    assert deal_funds * D("1.001") <= D("100")


async def test_consume_liquidity_knob(harness: SimHarness) -> None:
    book_path = "/api/v1/market/orderbook/level2_20?symbol=BTC-USDT"
    before = (await harness.call("GET", book_path, signed=False)).data
    await harness.place(market("buy", "static", size="0.0015"))
    assert (await harness.call("GET", book_path, signed=False)).data["asks"] == before["asks"]

    harness.sim.update_knobs(consume_liquidity=True)
    await harness.place(market("buy", "eats", size="0.0015"))
    after = (await harness.call("GET", book_path, signed=False)).data
    assert after["asks"] == [["50010", "0.0095"]]
    assert int(after["sequence"]) > int(before["sequence"])


async def test_config_knobs_apply_from_start(tmp_path: Path) -> None:
    config = SimConfig(markets_path=write_markets(tmp_path), knobs=Knobs(test_checks_balance=True))
    async with running_sim(config) as harness:
        assert (await harness.place(market("buy", "rich", funds="5000"), kind="test")).code == "200004"
