"""The private WebSocket client against the simulator: fills by clientOid, balances, reconnects.

Market (tests.support.sim): BTC-USDT asks 0.001 @ 50000, 0.01 @ 50010; bids 0.001 @ 49990,
0.01 @ 49980; taker fee 0.001. Account: 1000 USDT, 1 BTC.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal as D
from pathlib import Path

import aiohttp

from shared.kucoin.models import BulletToken
from shared.kucoin.rest import KucoinRest
from shared.kucoin.ws import PrivateWs
from sim import DEMO_CREDENTIALS, SimConfig, start_simulator
from sim.server import RunningSimulator
from sim.ws_hub import PrivateWsHub
from tests.support.e2e import wait_until
from tests.support.sim import write_markets


@dataclass
class Rig:
    running: RunningSimulator
    rest: KucoinRest
    ws: PrivateWs

    @property
    def hub(self) -> PrivateWsHub:
        return self.running.sim.ws_hub

    async def sell(self, oid: str, size: str = "0.001") -> None:
        self.ws.watch(oid, "BTC-USDT")
        await self.rest.place_order("BTC-USDT", "sell", size=D(size), client_oid=oid)


@asynccontextmanager
async def rig(tmp_path: Path, rest_type: type[KucoinRest] = KucoinRest, **ws_options: float) -> AsyncIterator[Rig]:
    running = await start_simulator(config=SimConfig(markets_path=write_markets(tmp_path)))
    try:
        async with aiohttp.ClientSession() as session:
            rest = rest_type(session, running.url, DEMO_CREDENTIALS, timeout_s=2)
            ws = PrivateWs(rest, session, backoff_initial_s=0.01, backoff_max_s=0.05, **ws_options)
            try:
                yield Rig(running, rest, ws)
            finally:
                await ws.close()
    finally:
        await running.stop()


async def test_connects_subscribes_and_learns_fills_by_client_oid(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.ws.start()
        assert await r.ws.wait_connected(5)
        assert r.hub.connections == 1
        await r.sell("s-1", "0.002")  # 0.001 @ 49990 + 0.001 @ 49980
        done = await r.ws.wait_done("s-1", 2)
        assert done is not None
        assert (done.status, done.filled_size, done.source, done.symbol) == ("filled", D("0.002"), "ws", "BTC-USDT")
        r.ws.watch("b-1", "BTC-USDT")
        await r.rest.place_order("BTC-USDT", "buy", funds=D("900"), client_oid="b-1")  # book runs out
        partial = await r.ws.wait_done("b-1", 2)  # the simulator ends it `update` + `done`, as KuCoin does
        assert partial is not None and (partial.status, partial.filled_size) == ("canceled", D("0.011"))


async def test_done_with_any_type_ends_the_wait_and_open_updates_do_not() -> None:
    ws = PrivateWs(None, None)  # type: ignore[arg-type]  # events fed by hand: no connection needed
    ws.watch("u-1", "BTC-USDT")
    event = {"orderId": "o1", "clientOid": "u-1", "symbol": "BTC-USDT", "filledSize": "0.5"}
    ws._dispatch({"topic": "/spotMarket/tradeOrdersV2", "type": "message", "data": {**event, "type": "update",
                                                                                      "status": "open"}})
    assert await ws.wait_done("u-1", 0.01) is None  # part cancelled, still open: not the end
    ws._dispatch({"topic": "/spotMarket/tradeOrdersV2", "type": "message", "data": {**event, "type": "update",
                                                                                      "status": "done"}})
    done = await ws.wait_done("u-1", 0.01)
    assert done is not None and (done.status, done.filled_size, done.source) == ("canceled", D("0.5"), "ws")


async def test_balance_view_follows_the_account(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.ws.start()
        assert await r.ws.wait_connected(5)
        await wait_until(lambda: r.ws.balance("BTC") is not None, 2)  # the REST snapshot
        assert (r.ws.balance("BTC").available, r.ws.balance("USDT").total) == (D("1"), D("1000"))
        await r.sell("s-1")
        # 0.001 BTC sold at 49990: +49.99 − 0.04999 fee
        await wait_until(lambda: r.ws.balance("USDT").available == D("1049.94001"), 2)
        assert r.ws.balance("BTC").available == D("0.999") == r.running.sim.balances()["BTC"]


async def test_a_dropped_event_leaves_the_waiter_to_its_own_query(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.ws.start()
        assert await r.ws.wait_connected(5)
        r.hub.update_knobs(drop={"next_n": 1, "event": "filled"})
        await r.sell("s-1")
        assert await r.ws.wait_done("s-1", 0.2) is None  # still connected, nothing to reconcile


async def test_reconnects_resubscribes_and_reconciles_what_it_missed(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.ws.start()
        assert await r.ws.wait_connected(5)
        r.hub.update_knobs(cut={"next_n": 1, "event": "match"})  # the fill happens while we are away
        await r.sell("s-1")
        done = await r.ws.wait_done("s-1", 5)
        assert done is not None and (done.status, done.source, done.filled_size) == ("filled", "query", D("0.001"))
        assert await r.ws.wait_connected(5)
        assert (r.ws.connects, r.ws.resolved_by_query, r.hub.connections) == (2, 1, 1)
        await r.sell("s-2")  # resubscribed: events flow again on the new connection
        again = await r.ws.wait_done("s-2", 2)
        assert again is not None and again.source == "ws"
        assert r.hub.cut_connections() == 1
        await wait_until(lambda: r.ws.connects == 3, 5)


async def test_missing_welcome_times_out_then_a_fresh_connection_works(tmp_path: Path) -> None:
    async with rig(tmp_path, welcome_timeout_s=0.2) as r:
        r.hub.update_knobs(withhold_welcome=1)
        await r.ws.start()
        assert await r.ws.wait_connected(5)
        assert (r.ws.connects, r.hub.connections_served) == (1, 2)


class ForgedFirstToken(KucoinRest):
    """The first bullet-private answer carries a token the server does not know (an expired one)."""

    forged = 0

    async def bullet_private(self) -> BulletToken:
        token = await super().bullet_private()
        if not self.forged:
            self.forged += 1
            return replace(token, token="expired-token")
        return token


async def test_a_refused_token_is_replaced_on_the_next_attempt(tmp_path: Path) -> None:
    async with rig(tmp_path, rest_type=ForgedFirstToken) as r:
        await r.ws.start()
        assert await r.ws.wait_connected(5)
        assert (r.ws.connects, r.hub.connections_served) == (1, 1)  # the forged one was turned away


async def test_pings_keep_a_quiet_connection_alive(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        # the server drops a client silent for 60 + 60 ms; the client pings every 60 ms
        r.hub.update_knobs(ping_interval_ms=60, ping_timeout_ms=60)
        await r.ws.start()
        assert await r.ws.wait_connected(5)
        await asyncio.sleep(0.5)  # several server idle limits pass
        assert (r.ws.connects, r.hub.connections, r.ws.connected) == (1, 1, True)
