"""The KuCoin client against the simulator over loopback: every endpoint, every error class.

Each side was unit-tested alone (client against canned payloads, simulator with raw HTTP);
this proves they agree on the wire: signatures, shapes, codes and numbers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path

import aiohttp
import pytest

from shared.credentials import Credentials
from shared.kucoin.errors import (
    AuthError,
    DuplicateClientOid,
    InsufficientBalance,
    InvalidOrder,
    RateLimited,
    ServerError,
    UnknownOutcome,
    UnknownSymbol,
)
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET, SimConfig
from sim.server import RunningSimulator, start_simulator

MARKETS = {
    "symbols": [
        {
            "symbol": "BTC-USDT", "baseMinSize": "0.00001", "quoteMinSize": "0.1", "baseIncrement": "0.00000001",
            "quoteIncrement": "0.000001", "priceIncrement": "0.1", "takerFeeRate": "0.001", "makerFeeRate": "0.001",
            "book": {"asks": [["50000", "0.001"], ["50010", "1"]], "bids": [["49990", "0.002"], ["49980", "1"]]},
        },
    ],
    "balances": {"USDT": "1000", "BTC": "1"},
}
DEMO = Credentials(DEMO_API_KEY, DEMO_API_SECRET, DEMO_API_PASSPHRASE)


@dataclass
class Rig:
    simulator: RunningSimulator
    client: KucoinRest
    session: aiohttp.ClientSession


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    markets = tmp_path / "markets.json"
    markets.write_text(json.dumps(MARKETS))
    simulator = await start_simulator(config=SimConfig(markets_path=markets))
    session = make_session(timeout_s=2.0)
    yield Rig(simulator, KucoinRest(session, simulator.url, DEMO, timeout_s=2.0), session)
    await session.close()
    await simulator.stop()


async def _balance(client: KucoinRest, currency: str) -> D:
    (account,) = [a for a in await client.accounts() if a.currency == currency]
    return account.available


async def test_market_buy_by_funds_walks_two_levels_with_the_fee_on_top(rig: Rig) -> None:
    ack = await rig.client.place_order("BTC-USDT", "buy", funds=D("100"), client_oid="buy-1")
    order = await rig.client.get_order(ack.order_id, "BTC-USDT")
    # 50 USDT buys the 0.001 BTC at 50000; the other 50 USDT at 50010 buy 0.00099980 (rounded
    # down to 1e-8), costing 49.999998 USDT
    assert order.deal_size == D("0.001") + D("0.0009998") == D("0.0019998")
    assert order.deal_funds == D("50") + D("0.0009998") * D("50010") == D("99.999998")
    assert order.fee == D("99.999998") * D("0.001") and order.fee_currency == "USDT"
    assert not order.active and order.client_oid == "buy-1"
    assert order.remain_funds == D("100") - order.deal_funds == D("0.000002")  # KuCoin: funds − dealFunds
    assert await _balance(rig.client, "USDT") == D("1000") - D("99.999998") - D("0.099999998")
    assert await _balance(rig.client, "BTC") == D("1.0019998")
    assert (await rig.client.get_order_by_client_oid("buy-1", "BTC-USDT")).id == ack.order_id


async def test_market_sell_by_size_walks_two_levels_and_pays_the_fee_from_proceeds(rig: Rig) -> None:
    sync = await rig.client.place_order_sync("BTC-USDT", "sell", size=D("0.0025"), client_oid="sell-1")
    assert (sync.deal_size, sync.status) == (D("0.0025"), "done")
    order = await rig.client.get_order_by_client_oid("sell-1", "BTC-USDT")
    proceeds = D("0.002") * D("49990") + D("0.0005") * D("49980")
    assert proceeds == D("124.97") == order.deal_funds
    assert order.fee == proceeds * D("0.001")
    assert await _balance(rig.client, "USDT") == D("1000") + proceeds - proceeds * D("0.001")
    assert await _balance(rig.client, "BTC") == D("1") - D("0.0025")


async def test_order_test_validates_without_trading(rig: Rig) -> None:
    ack = await rig.client.order_test("BTC-USDT", "buy", funds=D("10"), client_oid="t-1")
    assert ack.order_id
    assert await _balance(rig.client, "USDT") == D("1000")
    assert rig.simulator.sim.order_log.entries()[-1].kind == "test"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"symbol": "BTC-USDT", "side": "buy", "funds": D("5000")}, InsufficientBalance),
        ({"symbol": "BTC-USDT", "side": "sell", "size": D("0.000011111")}, InvalidOrder),  # increment
        ({"symbol": "BTC-USDT", "side": "sell", "size": D("0.000001")}, InvalidOrder),  # below minimum
        ({"symbol": "DOGE-USDT", "side": "buy", "funds": D("10")}, UnknownSymbol),
    ],
)
async def test_exchange_refusals_map_to_their_exceptions(rig: Rig, kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        await rig.client.place_order(client_oid="refused-1", **kwargs)


async def test_duplicate_client_oid_is_refused(rig: Rig) -> None:
    await rig.client.place_order("BTC-USDT", "buy", funds=D("1"), client_oid="dup-1")
    with pytest.raises(DuplicateClientOid):
        await rig.client.place_order("BTC-USDT", "buy", funds=D("1"), client_oid="dup-1")


async def test_limit_order_rests_and_cancels(rig: Rig) -> None:
    ack = await rig.client.place_order("BTC-USDT", "buy", size=D("0.001"), price=D("40000"), order_type="limit",
                                       client_oid="lim-1")
    assert (await rig.client.get_order(ack.order_id, "BTC-USDT")).active
    assert await rig.client.cancel_order(ack.order_id, "BTC-USDT") == ack.order_id
    assert not (await rig.client.get_order(ack.order_id, "BTC-USDT")).active


async def test_public_and_account_endpoints(rig: Rig) -> None:
    (symbol,) = await rig.client.symbols()
    assert (symbol.symbol, symbol.base_increment, symbol.quote_min_size) == ("BTC-USDT", D("0.00000001"), D("0.1"))
    book = await rig.client.order_book("BTC-USDT")
    assert book.asks[0] == (D("50000"), D("0.001")) and book.bids[0] == (D("49990"), D("0.002"))
    (fee,) = await rig.client.trade_fees(["BTC-USDT"])
    assert fee.taker_fee_rate == D("0.001")
    assert abs(await rig.client.server_time() - __import__("time").time() * 1000) < 5000
    token = await rig.client.bullet_private()
    assert token.token and token.endpoint.startswith("ws://") and token.ping_interval_ms == 18000


async def test_faults_map_to_their_exceptions_without_a_second_placement(rig: Rig) -> None:
    sim = rig.simulator.sim
    sim.update_knobs(force_429={"next_n": 1})
    with pytest.raises(RateLimited) as limited:
        await rig.client.order_test("BTC-USDT", "buy", funds=D("1"), client_oid="r-1")
    assert limited.value.reset_ms > 0
    sim.update_knobs(fail_5xx={"next_n": 1})
    with pytest.raises(ServerError):
        await rig.client.order_test("BTC-USDT", "buy", funds=D("1"), client_oid="r-2")
    sim.update_knobs(fail_5xx={"next_n": 1})
    with pytest.raises(UnknownOutcome):
        await rig.client.place_order("BTC-USDT", "buy", funds=D("1"), client_oid="r-3")
    sim.update_knobs(hang_after_match={"next_n": 1})
    with pytest.raises(UnknownOutcome) as unknown:
        await rig.client.place_order("BTC-USDT", "buy", funds=D("1"), client_oid="r-4")
    assert unknown.value.client_oid == "r-4"
    # the outcome is learned by querying, never by placing again
    assert (await rig.client.get_order_by_client_oid("r-4", "BTC-USDT")).deal_funds > 0
    assert [e.client_oid for e in sim.order_log.entries() if e.kind == "place"].count("r-4") == 1


async def test_wrong_secret_is_refused_as_auth_error(rig: Rig) -> None:
    wrong = KucoinRest(rig.session, rig.simulator.url, Credentials(DEMO_API_KEY, "not-the-secret", DEMO_API_PASSPHRASE))
    with pytest.raises(AuthError) as refused:
        await wrong.accounts()
    assert refused.value.code == "400004"  # the passphrase is encrypted with the secret, checked first
