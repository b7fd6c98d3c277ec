"""The simulator's private WebSocket: protocol, KuCoin's event sequences, and its fault knobs.

Market (tests.support.sim): BTC-USDT asks 0.001 @ 50000, 0.01 @ 50010; bids 0.001 @ 49990,
0.01 @ 49980; taker fee 0.001 in USDT. Account: 1000 USDT, 1 BTC.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shared.kucoin.constants import BALANCE_TOPIC, ORDER_TOPIC
from sim import SimConfig
from tests.support.sim import SimHarness, running_sim, write_markets


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[SimHarness]:
    async with running_sim(SimConfig(markets_path=write_markets(tmp_path))) as h:
        yield h


async def connect(h: SimHarness, token: str | None = None, connect_id: str = "conn-1") -> aiohttp.ClientWebSocketResponse:
    bullet = (await h.call("POST", "/api/v1/bullet-private")).data
    server = bullet["instanceServers"][0]
    url = f"{server['endpoint']}?token={token or bullet['token']}&connectId={connect_id}"
    return await h.session.ws_connect(url)


async def subscribed(h: SimHarness, *topics: str) -> aiohttp.ClientWebSocketResponse:
    ws = await connect(h)
    assert (await ws.receive_json(timeout=2)) == {"id": "conn-1", "type": "welcome"}
    for n, topic in enumerate(topics):
        await ws.send_json({"id": f"s{n}", "type": "subscribe", "topic": topic, "privateChannel": True,
                            "response": True})
        assert (await ws.receive_json(timeout=2)) == {"id": f"s{n}", "type": "ack"}
    return ws


async def pushes(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [await ws.receive_json(timeout=2) for _ in range(count)]


def market(side: str, oid: str, **amount: str) -> dict[str, str]:
    return {"clientOid": oid, "symbol": "BTC-USDT", "side": side, "type": "market", **amount}


async def test_welcome_ping_subscribe_and_protocol_errors(harness: SimHarness) -> None:
    ws = await connect(harness, connect_id="abc123")
    assert (await ws.receive_json(timeout=2)) == {"id": "abc123", "type": "welcome"}
    await ws.send_json({"id": "7", "type": "ping"})
    pong = await ws.receive_json(timeout=2)
    assert (pong["id"], pong["type"]) == ("7", "pong")
    await ws.send_json({"id": "8", "type": "subscribe", "topic": "/spotMarket/nope", "response": True})
    assert await ws.receive_json(timeout=2) == {"id": "8", "type": "error", "code": 404,
                                                "data": "topic /spotMarket/nope is not found"}
    await ws.send_str("not json")
    assert (await ws.receive_json(timeout=2))["code"] == 400
    await ws.send_json({"id": "9", "type": "subscribe", "topic": ORDER_TOPIC, "response": False})
    await ws.send_json({"id": "10", "type": "ping"})  # no ack was asked for: the pong comes next
    assert (await ws.receive_json(timeout=2))["id"] == "10"
    await ws.close()


async def test_bad_token_gets_401_and_is_closed(harness: SimHarness) -> None:
    ws = await connect(harness, token="forged")
    assert await ws.receive_json(timeout=2) == {"id": "conn-1", "type": "error", "code": 401, "data": "token is invalid"}
    assert (await ws.receive(timeout=2)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert harness.sim.ws_hub.connections_served == 0


async def test_market_buy_sequence_then_balances_without_fee_or_deal_funds(harness: SimHarness) -> None:
    ws = await subscribed(harness, ORDER_TOPIC, BALANCE_TOPIC)
    placed = (await harness.place(market("buy", "b-1", funds="100"))).data
    events = await pushes(ws, 6)
    assert all(e["type"] == "message" and e["userId"] for e in events)
    orders = [e["data"] for e in events if e["topic"] == ORDER_TOPIC]
    assert [(o["type"], o["status"]) for o in orders] == [
        ("received", "new"), ("match", "match"), ("match", "match"), ("filled", "done")]
    assert {o["orderId"] for o in orders} == {placed["orderId"]} and {o["clientOid"] for o in orders} == {"b-1"}
    # 0.001 @ 50000, then 50 USDT left / 50010 → 0.0009998 BTC
    assert [(o["matchPrice"], o["matchSize"], o["filledSize"]) for o in orders[1:3]] == [
        ("50000", "0.001", "0.001"), ("50010", "0.0009998", "0.0019998")]
    assert orders[3]["filledSize"] == "0.0019998"
    assert not any({"fee", "dealFunds"} & set(o) for o in orders)
    assert all(isinstance(o["ts"], int) and o["ts"] > 10**18 for o in orders)  # nanoseconds
    balances = {e["data"]["currency"]: e["data"] for e in events if e["topic"] == BALANCE_TOPIC}
    assert (balances["BTC"]["availableChange"], balances["BTC"]["total"]) == ("0.0019998", "1.0019998")
    # 99.999998 USDT + 0.099999998 fee on top
    assert D(balances["USDT"]["availableChange"]) == -D("100.099997998")
    assert D(balances["USDT"]["available"]) == harness.balance("USDT") == D("899.900002002")
    assert balances["USDT"]["relationContext"]["orderId"] == placed["orderId"]
    await ws.close()


async def test_unfilled_remainder_ends_update_done_and_topics_filter(harness: SimHarness) -> None:
    ws = await subscribed(harness, ORDER_TOPIC)  # orders only: no balance pushes
    await harness.place(market("buy", "b-2", funds="900"))  # the book holds 0.011 BTC for 550.1 USDT
    events = [e["data"] for e in await pushes(ws, 4)]
    # KuCoin's spec: part filled and the rest cancelled ends `update` + `done`
    assert [e["type"] for e in events] == ["received", "match", "match", "update"]
    assert (events[3]["status"], events[3]["filledSize"], events[3]["canceledFunds"]) == ("done", "0.011", "349.9")
    await harness.place(market("sell", "s-1", size="0.002"), kind="sync")
    events = [e["data"] for e in await pushes(ws, 4)]
    assert [e["type"] for e in events] == ["received", "match", "match", "filled"]
    assert [e["remainSize"] for e in events] == ["0.002", "0.001", "0", "0"]
    await ws.send_json({"id": "u", "type": "unsubscribe", "topic": ORDER_TOPIC, "response": True})
    assert (await ws.receive_json(timeout=2))["type"] == "ack"
    await harness.place(market("sell", "s-2", size="0.001"))
    await ws.send_json({"id": "p", "type": "ping"})
    assert (await ws.receive_json(timeout=2))["type"] == "pong"  # nothing was pushed before it
    await ws.close()


async def test_market_order_balances_hold_then_settle_each_message_with_its_own_id(harness: SimHarness) -> None:
    ws = await subscribed(harness, BALANCE_TOPIC)
    placed = (await harness.place(market("sell", "s-9", size="0.002"))).data
    events = await pushes(ws, 3)
    assert len({e["id"] for e in events}) == 3 and all(len(e["id"]) == 24 for e in events)
    data = [e["data"] for e in events]
    assert [(d["currency"], d["relationEvent"]) for d in data] == [
        ("BTC", "trade.hold"), ("BTC", "trade.setted"), ("USDT", "trade.setted")]
    assert {d["relationContext"]["orderId"] for d in data} == {placed["orderId"]}
    held, spent, proceeds = data
    # held at acceptance: 1 BTC total, 0.002 of it on hold; settled: the hold is gone with the BTC
    assert (held["available"], held["hold"], held["total"], held["availableChange"], held["holdChange"]) == (
        "0.998", "0.002", "1", "-0.002", "0.002")
    assert (spent["available"], spent["hold"], spent["total"], spent["availableChange"], spent["holdChange"]) == (
        "0.998", "0", "0.998", "0", "-0.002")
    received = D("0.001") * D("49990") + D("0.001") * D("49980")
    assert D(proceeds["availableChange"]) == received * D("0.999")
    assert D(proceeds["available"]) == harness.balance("USDT")
    await ws.close()


async def test_zero_fill_ends_canceled_done(harness: SimHarness) -> None:
    ws = await subscribed(harness, ORDER_TOPIC)
    body = {"clientOid": "ioc", "symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "40000",
            "size": "0.001", "timeInForce": "IOC"}  # nothing crosses: cancelled whole
    await harness.place(body)
    events = [e["data"] for e in await pushes(ws, 2)]
    assert [(e["type"], e["status"]) for e in events] == [("received", "new"), ("canceled", "done")]
    await ws.close()


async def test_resting_limit_order_opens_then_cancels_with_its_hold_released(harness: SimHarness) -> None:
    ws = await subscribed(harness, ORDER_TOPIC, BALANCE_TOPIC)
    body = {"clientOid": "l-1", "symbol": "BTC-USDT", "side": "sell", "type": "limit", "price": "60000", "size": "0.5"}
    order_id = (await harness.place(body)).data["orderId"]
    opened = await pushes(ws, 3)
    assert [e["data"].get("type") for e in opened[:2]] == ["received", "open"]
    assert (opened[2]["data"]["available"], opened[2]["data"]["hold"]) == ("0.5", "0.5")
    await harness.call("DELETE", f"/api/v1/hf/orders/{order_id}?symbol=BTC-USDT")
    cancelled, released = await pushes(ws, 2)
    assert (cancelled["data"]["type"], cancelled["data"]["canceledSize"]) == ("canceled", "0.5")
    assert (released["data"]["available"], released["data"]["holdChange"]) == ("1", "-0.5")
    await ws.close()


async def test_drop_reorder_and_delay_knobs(harness: SimHarness) -> None:
    hub = harness.sim.ws_hub
    ws = await subscribed(harness, ORDER_TOPIC)
    hub.update_knobs(drop={"next_n": 1, "event": "filled"}, reorder=1)
    await harness.place(market("sell", "s-1", size="0.001"))
    assert [e["data"]["type"] for e in await pushes(ws, 2)] == ["match", "received"]  # reversed, filled dropped
    await harness.place(market("sell", "s-2", size="0.001"))
    assert [e["data"]["type"] for e in await pushes(ws, 3)] == ["received", "match", "filled"]  # knobs used up
    hub.update_knobs(delay_ms=300)
    placed_at = time.monotonic()
    await harness.place(market("sell", "s-3", size="0.001"))
    first = await ws.receive_json(timeout=2)
    assert time.monotonic() - placed_at >= 0.3 and first["data"]["clientOid"] == "s-3"
    await ws.close()


async def test_cut_drops_the_connection_before_the_chosen_event(harness: SimHarness) -> None:
    hub = harness.sim.ws_hub
    ws = await subscribed(harness, ORDER_TOPIC)
    hub.update_knobs(cut={"next_n": 1, "event": "match"})
    await harness.place(market("sell", "s-1", size="0.001"))
    assert (await ws.receive_json(timeout=2))["data"]["type"] == "received"
    assert (await ws.receive(timeout=2)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                                  aiohttp.WSMsgType.ERROR)
    assert hub.connections == 0
    ws2 = await subscribed(harness, ORDER_TOPIC)
    assert hub.connections == 1
    response = await harness.session.post(harness.running.url + "/_sim/ws/cut")
    assert (await response.json()) == {"cut": 1}
    assert (await ws2.receive(timeout=2)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                                   aiohttp.WSMsgType.ERROR)


async def test_withheld_welcome_and_silent_clients_are_dropped(harness: SimHarness) -> None:
    hub = harness.sim.ws_hub
    hub.update_knobs(withhold_welcome=1, ping_interval_ms=100, ping_timeout_ms=100)
    bullet = (await harness.call("POST", "/api/v1/bullet-private")).data["instanceServers"][0]
    assert (bullet["pingInterval"], bullet["pingTimeout"]) == (100, 100)
    ws = await connect(harness)
    await ws.send_json({"id": "1", "type": "ping"})
    assert (await ws.receive_json(timeout=2))["type"] == "pong"  # no welcome came first
    started = time.monotonic()
    closing = await ws.receive(timeout=2)  # silent from here on: dropped after 100 + 100 ms
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert time.monotonic() - started >= 0.15


async def test_knobs_over_http(harness: SimHarness) -> None:
    url = harness.running.url + "/_sim/ws/knobs"
    async with harness.session.post(url, json={"drop": {"next_n": 2, "event": "match"}, "delay_ms": 5}) as response:
        knobs = await response.json()
    assert (knobs["drop"], knobs["delay_ms"]) == ({"next_n": 2, "event": "match"}, 5.0)
    for bad in ({"nope": 1}, {"drop": {"event": "whatever"}}, {"reorder": -1}):
        async with harness.session.post(url, json=bad) as response:
            assert response.status == 400
    async with harness.session.get(url) as response:
        assert (await response.json())["drop"]["next_n"] == 2  # a refused change changed nothing
