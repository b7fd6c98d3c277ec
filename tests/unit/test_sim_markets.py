"""The built-in market set, market files (JSON and TOML), and the public/market endpoints."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from sim import SimConfig
from sim.market import MarketSpec, load_markets
from tests.support.sim import SIMPLE_MARKETS, SimHarness, running_sim, write_markets

SYMBOL_FIELDS = {
    "symbol", "name", "baseCurrency", "quoteCurrency", "feeCurrency", "market", "baseMinSize", "quoteMinSize",
    "baseMaxSize", "quoteMaxSize", "baseIncrement", "quoteIncrement", "priceIncrement", "priceLimitRate",
    "minFunds", "isMarginEnabled", "enableTrading", "feeCategory", "makerFeeCoefficient", "takerFeeCoefficient",
    "st",
}


@pytest.fixture(scope="module")
def default_markets() -> MarketSpec:
    return load_markets()


@pytest.fixture
async def harness() -> AsyncIterator[SimHarness]:
    async with running_sim() as h:
        yield h


def triangles(spec: MarketSpec) -> list[tuple[str, str, str]]:
    pairs = {frozenset((s.base_currency, s.quote_currency)) for s in spec.symbols.values()}
    currencies = sorted({c for pair in pairs for c in pair})
    return [t for t in itertools.combinations(currencies, 3)
            if all(frozenset(edge) in pairs for edge in itertools.combinations(t, 2))]


def mid(spec: MarketSpec, base: str, quote: str) -> D:
    """Units of `quote` per `base`, from the mid of whichever pair exists."""
    name = f"{base}-{quote}"
    if name in spec.books:
        book = spec.books[name]
        return (book.bids[0][0] + book.asks[0][0]) / 2
    return 1 / mid(spec, quote, base)


def test_default_markets_shape(default_markets: MarketSpec) -> None:
    spec = default_markets
    assert len(spec.symbols) >= 11
    found = triangles(spec)
    assert len(found) >= 6
    assert {"USDT", "BTC", "ETH", "KCS"} <= {c for t in found for c in t}
    btc = spec.symbols["BTC-USDT"]
    assert (btc.base_min_size, btc.quote_min_size, btc.base_increment, btc.quote_increment,
            btc.price_increment, btc.min_funds, btc.taker_fee_rate) == (
        D("0.00001"), D("0.1"), D("0.00000001"), D("0.000001"), D("0.1"), D("0.1"), D("0.001"))
    assert spec.balances["USDT"] == D("100000") and spec.balances["BTC"] == D("2") and spec.balances["ETH"] == D("30")
    traded = {c for s in spec.symbols.values() for c in (s.base_currency, s.quote_currency)}
    assert all(spec.balances.get(c, 0) > 0 for c in traded)


def test_default_books_are_realistic(default_markets: MarketSpec) -> None:
    for name, book in default_markets.books.items():
        symbol = default_markets.symbols[name]
        assert 10 <= len(book.bids) <= 20 and 10 <= len(book.asks) <= 20, name
        assert book.bids[0][0] < book.asks[0][0], name
        assert [p for p, _ in book.bids] == sorted((p for p, _ in book.bids), reverse=True)
        assert [p for p, _ in book.asks] == sorted(p for p, _ in book.asks)
        for side in (book.bids, book.asks):
            sizes = [s for _, s in side]
            assert sizes == sorted(sizes) and sizes[-1] > sizes[0], name
            assert all(p % symbol.price_increment == 0 and s % symbol.base_increment == 0 for p, s in side)
            assert all(s >= symbol.base_min_size for s in sizes)


def test_default_triangles_carry_small_real_edges(default_markets: MarketSpec) -> None:
    """Small mispricings, as a live market shows for moments: within 80 bps gross at mid, several
    paying after three 0.1 % fees (> 30 bps gross) and some that stop paying after fees."""
    edges = []
    for a, b, c in triangles(default_markets):
        loop = mid(default_markets, a, b) * mid(default_markets, b, c) * mid(default_markets, c, a)
        edge_bps = abs(loop - 1) * 10000  # the better of the two directions
        assert edge_bps < 80, (a, b, c, loop)
        edges.append(edge_bps)
    assert sum(1 for e in edges if e > 35) >= 3 and any(5 < e < 30 for e in edges), edges


def test_toml_market_file(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[[symbols]]\nsymbol = "ABC-XYZ"\nbaseMinSize = "1"\nquoteMinSize = "0.5"\nbaseIncrement = "0.1"\n'
        'quoteIncrement = "0.01"\npriceIncrement = 0.001\ntakerFeeRate = "0.002"\n'
        '[symbols.book]\nbids = [["1.000", "5"], ["1.001", "2"]]\nasks = [["1.003", "4"]]\n'
        '[balances]\nXYZ = "50"\n',
        encoding="utf-8",
    )
    spec = load_markets(path)
    symbol = spec.symbols["ABC-XYZ"]
    assert (symbol.base_currency, symbol.quote_currency, symbol.min_funds) == ("ABC", "XYZ", D("0.5"))
    assert (symbol.price_increment, symbol.taker_fee_rate, symbol.enable_trading) == (D("0.001"), D("0.002"), True)
    assert spec.books["ABC-XYZ"].bids == ((D("1.001"), D("2")), (D("1.000"), D("5")))  # sorted best first
    assert spec.balances == {"XYZ": D("50")}


@pytest.mark.parametrize(
    "broken",
    [
        {"symbols": [{"symbol": "NODASH", "baseMinSize": "1"}]},
        {"symbols": [{"symbol": "A-B", "baseMinSize": "1"}]},  # increments missing
        {"symbols": [{**SIMPLE_MARKETS["symbols"][0], "book": {"bids": [["-1", "1"]]}}]},
    ],
)
def test_invalid_market_file_names_the_file(tmp_path: Path, broken: dict) -> None:
    path = write_markets(tmp_path, broken)
    with pytest.raises(ValueError, match="markets.json"):
        load_markets(path)


async def test_markets_file_served(tmp_path: Path) -> None:
    many_levels = {**SIMPLE_MARKETS["symbols"][0],
                   "book": {"asks": [[str(50000 + i), "0.1"] for i in range(120)], "bids": []}}
    markets = {"symbols": [many_levels], "balances": {"USDT": "7"}}
    async with running_sim(SimConfig(markets_path=write_markets(tmp_path, markets))) as harness:
        symbols = (await harness.call("GET", "/api/v2/symbols", signed=False)).data
        assert [s["symbol"] for s in symbols] == ["BTC-USDT"]
        assert SYMBOL_FIELDS <= set(symbols[0]) and symbols[0]["baseIncrement"] == "0.00000001"
        level20 = (await harness.call("GET", "/api/v1/market/orderbook/level2_20?symbol=BTC-USDT", signed=False))
        assert len(level20.data["asks"]) == 20 and level20.data["bids"] == []
        assert level20.data["asks"][0] == ["50000", "0.1"]
        level100 = await harness.call("GET", "/api/v1/market/orderbook/level2_100?symbol=BTC-USDT", signed=False)
        assert len(level100.data["asks"]) == 100
        accounts = (await harness.call("GET", "/api/v1/accounts")).data
        assert [(a["currency"], a["available"]) for a in accounts] == [("USDT", "7")]


async def test_default_orderbook_and_symbols_endpoints(harness: SimHarness) -> None:
    book = (await harness.call("GET", "/api/v1/market/orderbook/level2_20?symbol=ETH-BTC", signed=False)).data
    assert set(book) == {"time", "sequence", "bids", "asks"}
    assert D(book["bids"][0][0]) < D(book["asks"][0][0])
    unknown = await harness.call("GET", "/api/v1/market/orderbook/level2_20?symbol=NOPE-USDT", signed=False)
    assert unknown.code == "900001"
    symbols = (await harness.call("GET", "/api/v2/symbols", signed=False)).data
    assert len(symbols) == len(load_markets().symbols)


async def test_trade_fees(harness: SimHarness) -> None:
    fees = (await harness.call("GET", "/api/v1/trade-fees?symbols=BTC-USDT,KCS-ETH")).data
    assert fees == [{"symbol": "BTC-USDT", "takerFeeRate": "0.001", "makerFeeRate": "0.001"},
                    {"symbol": "KCS-ETH", "takerFeeRate": "0.001", "makerFeeRate": "0.001"}]
    eleven = ",".join(["BTC-USDT"] * 11)
    assert (await harness.call("GET", f"/api/v1/trade-fees?symbols={eleven}")).code == "400100"
    assert (await harness.call("GET", "/api/v1/trade-fees?symbols=NOPE-USDT")).code == "900001"


async def test_bullet_private_points_at_this_server(harness: SimHarness) -> None:
    data = (await harness.call("POST", "/api/v1/bullet-private")).data
    assert data["token"] in harness.sim.ws_tokens
    [server] = data["instanceServers"]
    assert server["endpoint"] == f"ws://127.0.0.1:{harness.running.port}/ws/private"
    assert (server["pingInterval"], server["pingTimeout"], server["protocol"]) == (18000, 10000, "websocket")


async def test_default_demo_trades_a_triangle(harness: SimHarness) -> None:
    """USDT -> BTC -> ETH -> USDT with the default markets and account: about 30 bps of fees lost."""
    usdt, btc, eth = harness.balance("USDT"), harness.balance("BTC"), harness.balance("ETH")
    first = await harness.place({"clientOid": "t-1", "symbol": "BTC-USDT", "side": "buy", "type": "market",
                                 "funds": "100"})
    got_btc = harness.balance("BTC") - btc
    funds = str(got_btc.quantize(D("0.00000001")))  # ETH-BTC quoteIncrement
    second = await harness.place({"clientOid": "t-2", "symbol": "ETH-BTC", "side": "buy", "type": "market",
                                  "funds": funds})
    got_eth = harness.balance("ETH") - eth
    size = str(got_eth.quantize(D("0.0000001")))  # ETH-USDT baseIncrement (fills are whole increments)
    third = await harness.place({"clientOid": "t-3", "symbol": "ETH-USDT", "side": "sell", "type": "market",
                                 "size": size})
    assert [a.code for a in (first, second, third)] == ["200000"] * 3
    change_bps = (harness.balance("USDT") - usdt) / 100 * 10000
    assert D(-45) < change_bps < D(-20)
