"""KucoinRest against an in-test aiohttp server that answers canned KuCoin payloads and records
every request exactly as it arrived (method, raw path+query, headers, body bytes)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from shared.credentials import Credentials
from shared.kucoin import auth
from shared.kucoin.auth import sign
from shared.kucoin.errors import (
    AuthError,
    DuplicateClientOid,
    InsufficientBalance,
    InvalidOrder,
    KucoinError,
    RateLimited,
    ServerError,
    TransportError,
    UnknownOutcome,
    UnknownSymbol,
)
from shared.kucoin.models import RateLimitInfo
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session

SECRET = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
PASSPHRASE = "MyPassphrase123"
ENCRYPTED_PASSPHRASE = "9tqIJtSeIaRxPqfJLqcjaP7Qmm3NHUcwCbV40A7rdYU="  # from the API notes
CREDS = Credentials("key-abc", SECRET, PASSPHRASE)

ORDER_ID = "670fd33bf9406e0007ab3945"
FULL_ORDER = {
    "id": ORDER_ID, "clientOid": "tri-0001", "symbol": "BTC-USDT", "opType": "DEAL", "type": "market",
    "side": "buy", "price": "0", "size": "0", "funds": "100", "dealSize": "0.00149", "dealFunds": "99.79",
    "remainSize": "0", "remainFunds": "0.21", "cancelledSize": "0", "cancelledFunds": "0.21",
    "fee": "0.09979", "feeCurrency": "USDT", "stp": None, "timeInForce": "GTC", "postOnly": False,
    "hidden": False, "iceberg": False, "visibleSize": "0", "cancelAfter": 0, "channel": "API",
    "remark": None, "tags": None, "cancelExist": True, "tradeType": "TRADE", "inOrderBook": False,
    "active": False, "tax": "0", "createdAt": 1729176273859, "lastUpdatedAt": 1729176273861,
}  # fmt: skip
BTC_USDT_SYMBOL = {
    "symbol": "BTC-USDT", "name": "BTC-USDT", "baseCurrency": "BTC", "quoteCurrency": "USDT",
    "feeCurrency": "USDT", "market": "USDS", "baseMinSize": "0.00001", "quoteMinSize": "0.1",
    "baseMaxSize": "10000000000", "quoteMaxSize": "99999999", "baseIncrement": "0.00000001",
    "quoteIncrement": "0.000001", "priceIncrement": "0.1", "priceLimitRate": "0.1", "minFunds": "0.1",
    "isMarginEnabled": True, "enableTrading": True, "feeCategory": 1, "makerFeeCoefficient": "1.00",
    "takerFeeCoefficient": "1.00", "st": False,
}  # fmt: skip


def ok(data: Any) -> dict[str, Any]:
    return {"code": "200000", "data": data}


@dataclass(frozen=True)
class Received:
    method: str
    raw_path: str
    headers: CIMultiDictProxy[str]
    body: bytes


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeKucoin:
    """Canned answers keyed by (METHOD, path); every request is recorded before it is answered."""

    requests: list[Received] = field(default_factory=list)
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def reply(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        text: str | None = None,
    ) -> None:
        async def answer(_: web.Request) -> web.StreamResponse:
            if text is not None:
                return web.Response(status=status, text=text, headers=headers)
            return web.json_response(payload, status=status, headers=headers)

        self.routes[(method, path)] = answer

    def hang(self, method: str, path: str) -> None:
        """Never answer (until teardown): the client must give up by its own timeout."""

        async def never(_: web.Request) -> web.StreamResponse:
            await self.release.wait()
            return web.Response(status=599)

        self.routes[(method, path)] = never

    def drop_first(self, method: str, path: str, payload: Any) -> None:
        """Close the connection without answering the first time, answer `payload` afterwards."""

        async def drop_then_answer(request: web.Request) -> web.StreamResponse:
            if sum(r.raw_path.split("?")[0] == path for r in self.requests) == 1:
                assert request.transport is not None
                request.transport.abort()
                raise web.HTTPInternalServerError()  # never reaches the client: socket is gone
            return web.json_response(payload)

        self.routes[(method, path)] = drop_then_answer

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Received(request.method, request.raw_path, request.headers, await request.read()))
        route = self.routes.get((request.method, request.path))
        if route is None:
            return web.json_response({"code": "404000", "msg": "no canned route"}, status=404)
        return await route(request)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeKucoin, str]]:
    state = FakeKucoin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield state, str(server.make_url("")).rstrip("/")
    state.release.set()
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[Any]:
    async with make_session(timeout_s=5.0) as http:
        yield http


@pytest.fixture
def server(fake: tuple[FakeKucoin, str]) -> FakeKucoin:
    return fake[0]


@pytest.fixture
def client(fake: tuple[FakeKucoin, str], session: Any) -> KucoinRest:
    return KucoinRest(session, fake[1], CREDS, timeout_s=5.0)


def freeze_clock(monkeypatch: pytest.MonkeyPatch, timestamp_ms: int) -> None:
    """Pin the signer's wall clock (half a ms in, so float rounding cannot drop a ms)."""
    monkeypatch.setattr(auth, "time", SimpleNamespace(time=lambda: (timestamp_ms + 0.5) / 1000))


def assert_signed(request: Received) -> None:
    """The signature verifies over exactly what the server received."""
    ts = request.headers["KC-API-TIMESTAMP"]
    expected = sign(SECRET, f"{ts}{request.method}{request.raw_path}".encode() + request.body)
    assert request.headers["KC-API-SIGN"] == expected
    assert request.headers["KC-API-KEY"] == "key-abc"
    assert request.headers["KC-API-PASSPHRASE"] == ENCRYPTED_PASSPHRASE
    assert request.headers["KC-API-KEY-VERSION"] == "2"
    assert request.headers["Content-Type"] == "application/json"


# -- signing, end to end ----------------------------------------------------------------


async def test_place_order_sends_and_signs_the_vector_body(
    client: KucoinRest, server: FakeKucoin, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_clock(monkeypatch, 1700000000000)
    server.reply("POST", "/api/v1/hf/orders", ok({"orderId": ORDER_ID, "clientOid": "tri-0001"}))
    ack = await client.place_order("BTC-USDT", "buy", funds=Decimal("100"), client_oid="tri-0001")
    assert (ack.order_id, ack.client_oid) == (ORDER_ID, "tri-0001")
    [request] = server.requests
    assert request.method == "POST" and request.raw_path == "/api/v1/hf/orders"
    assert request.body == b'{"clientOid":"tri-0001","side":"buy","symbol":"BTC-USDT","type":"market","funds":"100"}'
    assert request.headers["KC-API-SIGN"] == "XcEjpRu5r3slzferaOcg1sg+1GqWb/G9rSATqSQ1Me0="  # vector 1
    assert_signed(request)


async def test_query_signed_raw_and_order_parsed(
    client: KucoinRest, server: FakeKucoin, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_clock(monkeypatch, 1700000000123)
    server.reply("GET", "/api/v1/hf/orders/client-order/tri-0001", ok(FULL_ORDER))
    order = await client.get_order_by_client_oid("tri-0001", "BTC-USDT")
    [request] = server.requests
    assert request.raw_path == "/api/v1/hf/orders/client-order/tri-0001?symbol=BTC-USDT"
    assert request.body == b""
    assert request.headers["KC-API-SIGN"] == "L6rKnNmwpFA7l98hODsUJvLy/nTfTyKS2AlOFRZHD5Y="  # vector 2
    assert_signed(request)
    assert order.id == ORDER_ID and order.client_oid == "tri-0001" and order.symbol == "BTC-USDT"
    assert (order.type, order.side, order.fee_currency) == ("market", "buy", "USDT")
    assert order.deal_size == Decimal("0.00149") and order.deal_funds == Decimal("99.79")
    assert order.fee == Decimal("0.09979") and order.funds == Decimal(100)
    assert order.remain_funds == Decimal("0.21") and order.cancelled_funds == Decimal("0.21")
    assert order.price == 0 and order.size == 0 and order.remain_size == 0 and order.cancelled_size == 0
    assert order.active is False and order.in_order_book is False
    assert (order.created_at, order.last_updated_at) == (1729176273859, 1729176273861)


async def test_bullet_private_signs_empty_body(
    client: KucoinRest, server: FakeKucoin, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_clock(monkeypatch, 1700000000456)
    server.reply(
        "POST",
        "/api/v1/bullet-private",
        ok({
            "token": "tok-123",
            "instanceServers": [{
                "endpoint": "wss://ws-api-spot.kucoin.com/", "encrypt": True, "protocol": "websocket",
                "pingInterval": 18000, "pingTimeout": 10000,
            }],
        }),
    )  # fmt: skip
    token = await client.bullet_private()
    [request] = server.requests
    assert request.body == b""
    assert request.headers["KC-API-SIGN"] == "vV/RhMIytn5ePQ+35oBXueu2aXBn3wTxnXdwAx3zsUI="  # vector 3
    assert (token.token, token.endpoint) == ("tok-123", "wss://ws-api-spot.kucoin.com/")
    assert (token.ping_interval_ms, token.ping_timeout_ms, token.encrypt) == (18000, 10000, True)


async def test_public_calls_are_unsigned(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply("GET", "/api/v1/timestamp", {"code": "200000", "data": 1544657947759})
    assert await client.server_time() == 1544657947759
    [request] = server.requests
    assert not any(name.upper().startswith("KC-API-") for name in request.headers)


# -- order bodies -------------------------------------------------------------------------


async def test_amounts_never_use_exponent_form(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply("POST", "/api/v1/hf/orders/test", ok({"orderId": ORDER_ID, "clientOid": "t-1"}))
    await client.order_test("ETH-BTC", "sell", size=Decimal("1E-8"), client_oid="t-1")
    await client.order_test("ETH-BTC", "buy", funds=Decimal("1E+2"))
    first, second = server.requests
    assert first.body == b'{"clientOid":"t-1","side":"sell","symbol":"ETH-BTC","type":"market","size":"0.00000001"}'
    assert second.body == b'{"side":"buy","symbol":"ETH-BTC","type":"market","funds":"100"}'
    assert_signed(first)
    assert_signed(second)


async def test_limit_order_body(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply("POST", "/api/v1/hf/orders", ok({"orderId": ORDER_ID, "clientOid": "lim-1"}))
    await client.place_order(
        "BTC-USDT", "buy", order_type="limit", price=Decimal("66976.4"), size=Decimal("0.001"), client_oid="lim-1"
    )
    body = server.requests[0].body
    assert body == b'{"clientOid":"lim-1","side":"buy","symbol":"BTC-USDT","type":"limit","price":"66976.4","size":"0.001"}'


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"size": Decimal(1), "funds": Decimal(1)},
        {"size": Decimal(0)},
        {"funds": Decimal("-1")},
        {"size": Decimal("NaN")},
        {"size": Decimal(1), "price": Decimal(1)},
        {"size": Decimal(1), "order_type": "stop"},
        {"funds": Decimal(1), "order_type": "limit", "price": Decimal(1)},
        {"size": Decimal(1), "client_oid": "has/slash"},
        {"size": Decimal(1), "client_oid": "x" * 41},
    ],
)
async def test_invalid_orders_rejected_before_any_request(
    client: KucoinRest, server: FakeKucoin, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        await client.place_order("BTC-USDT", "buy", **{"client_oid": "ok-1", **kwargs})
    with pytest.raises(ValueError):
        await client.order_test("BTC-USDT", "buy", **kwargs)
    assert server.requests == []


async def test_float_amount_refused(client: KucoinRest, server: FakeKucoin) -> None:
    with pytest.raises(TypeError):
        await client.order_test("BTC-USDT", "buy", funds=0.1)  # type: ignore[arg-type]
    assert server.requests == []


async def test_place_requires_a_client_oid(client: KucoinRest, server: FakeKucoin) -> None:
    with pytest.raises(ValueError):
        await client.place_order_sync("BTC-USDT", "buy", size=Decimal(1), client_oid=None)  # type: ignore[arg-type]
    assert server.requests == []


async def test_private_call_without_credentials_raises_before_io(session: Any, fake: tuple[FakeKucoin, str]) -> None:
    anonymous = KucoinRest(session, fake[1])
    for call in (
        lambda: anonymous.place_order("BTC-USDT", "buy", size=Decimal(1), client_oid="a-1"),
        lambda: anonymous.accounts(),
        lambda: anonymous.bullet_private(),
    ):
        with pytest.raises(AuthError, match="no API credentials"):
            await call()
    assert fake[0].requests == []


# -- parsing each call --------------------------------------------------------------------


async def test_place_order_sync_parsed(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply(
        "POST",
        "/api/v1/hf/orders/sync",
        ok({
            "orderId": ORDER_ID, "clientOid": "s-1", "orderTime": 1729176273859, "originSize": "0.002",
            "dealSize": "0.0015", "remainSize": "0", "canceledSize": "0.0005", "status": "done",
            "matchTime": 1729176273860,
        }),
    )  # fmt: skip
    result = await client.place_order_sync("BTC-USDT", "sell", size=Decimal("0.002"), client_oid="s-1")
    assert result.order_id == ORDER_ID and result.client_oid == "s-1" and result.status == "done"
    assert (result.origin_size, result.deal_size) == (Decimal("0.002"), Decimal("0.0015"))
    assert (result.remain_size, result.canceled_size) == (Decimal(0), Decimal("0.0005"))
    assert (result.order_time, result.match_time) == (1729176273859, 1729176273860)
    assert_signed(server.requests[0])


async def test_get_order_and_empty_amounts_are_zero(client: KucoinRest, server: FakeKucoin) -> None:
    sparse = {**FULL_ORDER, "price": "", "funds": None, "fee": "", "active": True, "inOrderBook": True}
    server.reply("GET", f"/api/v1/hf/orders/{ORDER_ID}", ok(sparse))
    order = await client.get_order(ORDER_ID, "BTC-USDT")
    assert server.requests[0].raw_path == f"/api/v1/hf/orders/{ORDER_ID}?symbol=BTC-USDT"
    assert_signed(server.requests[0])
    assert order.price == Decimal(0) and order.funds == Decimal(0) and order.fee == Decimal(0)
    assert isinstance(order.funds, Decimal)
    assert order.active is True and order.in_order_book is True


async def test_cancel_order(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply("DELETE", f"/api/v1/hf/orders/{ORDER_ID}", ok({"orderId": ORDER_ID}))
    assert await client.cancel_order(ORDER_ID, "BTC-USDT") == ORDER_ID
    [request] = server.requests
    assert request.method == "DELETE" and request.raw_path == f"/api/v1/hf/orders/{ORDER_ID}?symbol=BTC-USDT"
    assert_signed(request)


async def test_symbols(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply("GET", "/api/v2/symbols", ok([BTC_USDT_SYMBOL, {**BTC_USDT_SYMBOL, "symbol": "ETH-BTC",
                                                               "enableTrading": False, "minFunds": None}]))  # fmt: skip
    btc, eth = await client.symbols()
    assert (btc.symbol, btc.base_currency, btc.quote_currency, btc.fee_currency) == ("BTC-USDT", "BTC", "USDT", "USDT")
    assert btc.base_min_size == Decimal("0.00001") and btc.quote_min_size == Decimal("0.1")
    assert btc.base_max_size == Decimal(10_000_000_000) and btc.quote_max_size == Decimal(99_999_999)
    assert btc.base_increment == Decimal("0.00000001") and btc.quote_increment == Decimal("0.000001")
    assert btc.price_increment == Decimal("0.1") and btc.min_funds == Decimal("0.1")
    assert btc.enable_trading is True and btc.taker_fee_coefficient == btc.maker_fee_coefficient == Decimal(1)
    assert eth.symbol == "ETH-BTC" and eth.enable_trading is False and eth.min_funds == 0
    assert "KC-API-SIGN" not in server.requests[0].headers


async def test_order_book(client: KucoinRest, server: FakeKucoin) -> None:
    book = {
        "time": 1729176273859, "sequence": "14610502970",
        "bids": [["66976.4", "0.69109872"], ["66976.3", "0.1"]], "asks": [["66976.5", "0.05408199"]],
    }  # fmt: skip
    server.reply("GET", "/api/v1/market/orderbook/level2_100", ok(book))
    parsed = await client.order_book("BTC-USDT", depth=100)
    assert server.requests[0].raw_path == "/api/v1/market/orderbook/level2_100?symbol=BTC-USDT"
    assert (parsed.time_ms, parsed.sequence) == (1729176273859, 14610502970)
    assert parsed.bids == ((Decimal("66976.4"), Decimal("0.69109872")), (Decimal("66976.3"), Decimal("0.1")))
    assert parsed.asks == ((Decimal("66976.5"), Decimal("0.05408199")),)
    with pytest.raises(ValueError):
        await client.order_book("BTC-USDT", depth=50)
    assert len(server.requests) == 1


async def test_trade_fees(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply(
        "GET",
        "/api/v1/trade-fees",
        ok([{"symbol": "BTC-USDT", "takerFeeRate": "0.001", "makerFeeRate": "0.0008"},
            {"symbol": "ETH-BTC", "takerFeeRate": "0.002", "makerFeeRate": "0.001"}]),
    )  # fmt: skip
    fees = await client.trade_fees(["BTC-USDT", "ETH-BTC"])
    [request] = server.requests
    assert request.raw_path == "/api/v1/trade-fees?symbols=BTC-USDT,ETH-BTC"  # comma unencoded, as signed
    assert_signed(request)
    assert [(f.symbol, f.taker_fee_rate, f.maker_fee_rate) for f in fees] == [
        ("BTC-USDT", Decimal("0.001"), Decimal("0.0008")),
        ("ETH-BTC", Decimal("0.002"), Decimal("0.001")),
    ]


@pytest.mark.parametrize("symbols", [[], [f"S{i}-USDT" for i in range(11)], "BTC-USDT", ["BTC-USDT", "A B"]])
async def test_trade_fees_refuses_bad_symbol_lists(client: KucoinRest, server: FakeKucoin, symbols: Any) -> None:
    with pytest.raises(ValueError):
        await client.trade_fees(symbols)
    assert server.requests == []


async def test_accounts(client: KucoinRest, server: FakeKucoin) -> None:
    rows = [{"id": "5bd6e9286d99522a52e458de", "currency": "USDT", "type": "trade", "balance": "1000.5",
             "available": "900.25", "holds": "100.25"}]  # fmt: skip
    server.reply("GET", "/api/v1/accounts", ok(rows))
    [account] = await client.accounts()
    await client.accounts(None)
    assert [r.raw_path for r in server.requests] == ["/api/v1/accounts?type=trade", "/api/v1/accounts"]
    for request in server.requests:
        assert_signed(request)
    assert (account.id, account.currency, account.type) == ("5bd6e9286d99522a52e458de", "USDT", "trade")
    assert (account.balance, account.available, account.holds) == (Decimal("1000.5"), Decimal("900.25"), Decimal("100.25"))


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "msg", "status", "expected"),
    [
        ("200004", "Insufficient balance.", 200, InsufficientBalance),
        ("400100", "Order size below the minimum requirement.", 200, InvalidOrder),
        ("600100", "Funds below the minimum requirement.", 200, InvalidOrder),
        ("300000", "Order funds invalid.", 200, InvalidOrder),
        ("400600", "validation.createOrder.symbolNotAvailable", 200, InvalidOrder),
        ("415000", "Unsupported Media Type", 415, InvalidOrder),
        ("126044", "duplicate client order id", 200, DuplicateClientOid),
        ("900001", "symbol not exists", 200, UnknownSymbol),
        ("400005", "Invalid KC-API-SIGN", 401, AuthError),
        ("400003", "KC-API-KEY does not exist.", 401, AuthError),
    ],
)
async def test_business_errors_on_place(
    client: KucoinRest, server: FakeKucoin, code: str, msg: str, status: int, expected: type[KucoinError]
) -> None:
    server.reply("POST", "/api/v1/hf/orders", {"code": code, "msg": msg}, status=status)
    with pytest.raises(expected) as caught:
        await client.place_order("BTC-USDT", "buy", funds=Decimal(5), client_oid="e-1")
    assert type(caught.value) is expected
    assert (caught.value.code, caught.value.msg, caught.value.http_status) == (code, msg, status)


async def test_rate_limited_carries_reset(client: KucoinRest, server: FakeKucoin) -> None:
    limit_headers = {"gw-ratelimit-limit": "4000", "gw-ratelimit-remaining": "0", "gw-ratelimit-reset": "2750"}
    server.reply("POST", "/api/v1/hf/orders", {"code": "429000", "msg": "Too Many Requests"},
                 status=429, headers=limit_headers)  # fmt: skip
    with pytest.raises(RateLimited) as caught:
        await client.place_order("BTC-USDT", "buy", funds=Decimal(5), client_oid="r-1")
    assert (caught.value.reset_ms, caught.value.limit, caught.value.remaining) == (2750, 4000, 0)
    assert client.last_rate_limit == RateLimitInfo(limit=4000, remaining=0, reset_ms=2750)


async def test_last_rate_limit_follows_every_response(client: KucoinRest, server: FakeKucoin) -> None:
    assert client.last_rate_limit is None
    headers = {"gw-ratelimit-limit": "2000", "gw-ratelimit-remaining": "1996", "gw-ratelimit-reset": "29000"}
    server.reply("GET", "/api/v1/timestamp", ok(1), headers=headers)
    await client.server_time()
    assert client.last_rate_limit == RateLimitInfo(limit=2000, remaining=1996, reset_ms=29000)


async def test_only_spot_pool_answers_feed_the_spot_rate_limit(client: KucoinRest, server: FakeKucoin) -> None:
    management = {"gw-ratelimit-limit": "2000", "gw-ratelimit-remaining": "1995", "gw-ratelimit-reset": "29000"}
    server.reply("GET", "/api/v1/accounts", ok([]), headers=management)
    await client.accounts()
    assert client.last_spot_rate_limit is None  # the Management pool's figures never reach the Spot budget
    assert client.last_rate_limit == RateLimitInfo(limit=2000, remaining=1995, reset_ms=29000)
    spot = {"gw-ratelimit-limit": "4000", "gw-ratelimit-remaining": "3990", "gw-ratelimit-reset": "28000"}
    server.reply("GET", f"/api/v1/hf/orders/{ORDER_ID}", ok(FULL_ORDER), headers=spot)
    await client.get_order(ORDER_ID, "BTC-USDT")
    assert client.last_spot_rate_limit == RateLimitInfo(limit=4000, remaining=3990, reset_ms=28000)
    await client.accounts()
    assert client.last_spot_rate_limit == RateLimitInfo(limit=4000, remaining=3990, reset_ms=28000)


async def test_http_200_with_error_code_is_not_success(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply("GET", "/api/v1/accounts", {"code": "400100", "msg": "account type invalid", "data": []})
    with pytest.raises(InvalidOrder):
        await client.accounts()


async def test_place_timeout_is_unknown_outcome_sent_once(session: Any, fake: tuple[FakeKucoin, str]) -> None:
    server, url = fake
    server.hang("POST", "/api/v1/hf/orders")
    impatient = KucoinRest(session, url, CREDS, timeout_s=0.2)
    with pytest.raises(UnknownOutcome) as caught:
        await impatient.place_order("BTC-USDT", "buy", funds=Decimal(5), client_oid="slow-1")
    assert caught.value.client_oid == "slow-1"
    assert len(server.requests) == 1


async def test_get_timeout_is_transport_error(session: Any, fake: tuple[FakeKucoin, str]) -> None:
    server, url = fake
    server.hang("GET", "/api/v1/timestamp")
    impatient = KucoinRest(session, url, CREDS, timeout_s=0.2)
    with pytest.raises(TransportError):
        await impatient.server_time()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_on_place_is_unknown_outcome(client: KucoinRest, server: FakeKucoin, status: int) -> None:
    server.reply("POST", "/api/v1/hf/orders", text="<html>Bad Gateway</html>", status=status)
    server.reply("POST", "/api/v1/hf/orders/sync", {"code": "500000", "msg": "Internal Server Error"}, status=status)
    with pytest.raises(UnknownOutcome) as caught:
        await client.place_order("BTC-USDT", "buy", funds=Decimal(5), client_oid="x-1")
    assert (caught.value.client_oid, caught.value.http_status) == ("x-1", status)
    with pytest.raises(UnknownOutcome) as caught_sync:
        await client.place_order_sync("BTC-USDT", "buy", funds=Decimal(5), client_oid="x-2")
    assert (caught_sync.value.client_oid, caught_sync.value.code) == ("x-2", "500000")
    assert len(server.requests) == 2


async def test_5xx_on_place_beats_a_business_code(client: KucoinRest, server: FakeKucoin) -> None:
    """A gateway 5xx says the request's fate is unknown, whatever body came with it."""
    server.reply("POST", "/api/v1/hf/orders", {"code": "200004", "msg": "Insufficient balance."}, status=503)
    with pytest.raises(UnknownOutcome) as caught:
        await client.place_order("BTC-USDT", "buy", funds=Decimal(5), client_oid="x-3")
    assert (caught.value.code, caught.value.http_status) == ("200004", 503)


async def test_5xx_on_order_test_and_reads_is_server_error(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply("POST", "/api/v1/hf/orders/test", text="upstream error", status=502)
    server.reply("GET", "/api/v2/symbols", {"code": "500000", "msg": "Internal Server Error"}, status=500)
    with pytest.raises(ServerError) as caught:
        await client.order_test("BTC-USDT", "buy", funds=Decimal(5), client_oid="t-1")
    assert not isinstance(caught.value, UnknownOutcome) and caught.value.http_status == 502
    with pytest.raises(ServerError):
        await client.symbols()


async def test_unparseable_200_on_place_is_unknown_outcome(client: KucoinRest, server: FakeKucoin) -> None:
    server.reply("POST", "/api/v1/hf/orders", text="not json", status=200)
    server.reply("POST", "/api/v1/hf/orders/sync", ok({"unexpected": True}))
    with pytest.raises(UnknownOutcome):
        await client.place_order("BTC-USDT", "buy", funds=Decimal(5), client_oid="g-1")
    with pytest.raises(UnknownOutcome):  # success code but no orderId: it probably was placed
        await client.place_order_sync("BTC-USDT", "buy", funds=Decimal(5), client_oid="g-2")


async def test_dropped_connection_place_is_unknown_outcome_sent_once(client: KucoinRest, server: FakeKucoin) -> None:
    server.drop_first("POST", "/api/v1/hf/orders", ok({"orderId": ORDER_ID, "clientOid": "d-1"}))
    with pytest.raises(UnknownOutcome) as caught:
        await client.place_order("BTC-USDT", "buy", funds=Decimal(5), client_oid="d-1")
    assert caught.value.client_oid == "d-1"
    assert len(server.requests) == 1


async def test_dropped_connection_on_bullet_is_transport_error(client: KucoinRest, server: FakeKucoin) -> None:
    server.drop_first("POST", "/api/v1/bullet-private", ok({}))
    with pytest.raises(TransportError):
        await client.bullet_private()
    assert len(server.requests) == 1


async def test_dropped_connection_on_get_is_retried_once(client: KucoinRest, server: FakeKucoin) -> None:
    server.drop_first("GET", "/api/v1/timestamp", ok(1544657947759))
    assert await client.server_time() == 1544657947759
    assert [r.raw_path for r in server.requests] == ["/api/v1/timestamp", "/api/v1/timestamp"]


async def test_refused_connection_on_place_is_transport_error(session: Any) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = KucoinRest(session, f"http://127.0.0.1:{port}", CREDS, timeout_s=2.0)
    with pytest.raises(TransportError) as caught:
        await nowhere.place_order("BTC-USDT", "buy", funds=Decimal(5), client_oid="n-1")
    assert not isinstance(caught.value, UnknownOutcome)


# -- session ----------------------------------------------------------------------------------


def test_make_session_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        make_session()


async def test_make_session_timeouts() -> None:
    async with make_session(timeout_s=3.0) as http:
        assert (http.timeout.total, http.timeout.sock_read, http.timeout.sock_connect) == (3.0, 3.0, 3.0)
    async with make_session(timeout_s=30.0) as http:
        assert http.timeout.sock_connect == 5.0  # connecting is capped: a slow connect is a broken route
