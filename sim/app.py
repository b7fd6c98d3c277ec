"""The KuCoin-compatible HTTP surface: the gateway (auth, limits, faults, log) and the endpoints.

Every KuCoin route goes through one middleware, in this order: arrival time taken; body read;
Content-Type (415000); signature (private routes, HTTP 401); forced 429; rate-limit charge
(429000); injected 5xx; hang; injected rejection (order calls); the endpoint; order-log entry;
latency. Endpoints return the `data` of the `{"code":"200000","data":...}` envelope, or raise
`KucoinError`. Routes under `/_sim/` are the simulator's own admin API and skip all of this.

Routes, pools, weights and codes come from `shared.kucoin.constants`, the same table the client
reads. The private WebSocket (`sim/ws_hub.py`, held as `Simulator.ws_hub`) is mounted at
`WS_PRIVATE_PATH`; `bullet-private` hands out its tokens (kept in `Simulator.ws_tokens`), that
endpoint and the hub's ping timing, and every accepted or cancelled order is pushed to it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.kucoin import constants as kc
from shared.kucoin.constants import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    MAX_TRADE_FEE_SYMBOLS,
    METHOD_NOT_ALLOWED,
    PARAMETER_ERROR,
    PUBLIC_POOL,
    SUCCESS,
    TOO_MANY_REQUESTS,
    UNKNOWN_SYMBOL,
    UNSUPPORTED_MEDIA_TYPE,
    URL_NOT_FOUND,
    Route,
)
from shared.money import fmt_decimal
from sim.admin import add_admin_routes
from sim.errors import KucoinError
from sim.orderlog import OrderLogEntry
from sim.orders import OrderRequest, parse_order_request
from sim.ratelimit import PoolState
from sim.simulator import Simulator
from sim.ws_hub import PrivateWsHub

__all__ = ["create_app", "SIMULATOR_KEY", "WS_PRIVATE_PATH"]

SIMULATOR_KEY = web.AppKey("simulator", Simulator)
WS_PRIVATE_PATH = "/ws/private"
_INVALID_JSON = object()
_ORDER_BODY = web.RequestKey("order_body", object)
_HANG_AFTER_MATCH = web.RequestKey("hang_after_match", bool)

Endpoint = Callable[[web.Request], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """How the gateway treats one KuCoin route: the route (pool, weight, auth) and order-log kind."""

    route: Route
    order_kind: str | None = None


def create_app(sim: Simulator) -> web.Application:
    """The aiohttp application serving `sim`."""
    specs: dict[web.AbstractRoute, RouteSpec] = {}
    app = web.Application(middlewares=[_gateway(sim, specs)])
    app[SIMULATOR_KEY] = sim
    hub = sim.ws_hub
    endpoints = _Endpoints(sim, hub)

    def add(route: Route, handler: Endpoint, order_kind: str | None = None) -> None:
        specs[app.router.add_route(route.method, route.path, handler)] = RouteSpec(route, order_kind)

    add(kc.PLACE_ORDER, endpoints.place, "place")
    add(kc.PLACE_ORDER_TEST, endpoints.test, "test")
    add(kc.PLACE_ORDER_SYNC, endpoints.place_sync, "sync")
    add(kc.GET_ORDER_BY_CLIENT_OID, endpoints.get_by_client_oid)
    add(kc.GET_ORDER, endpoints.get_order)
    add(kc.CANCEL_ORDER, endpoints.cancel)
    add(kc.TRADE_FEES, endpoints.trade_fees)
    add(kc.ACCOUNTS, endpoints.accounts)
    add(kc.BULLET_PRIVATE, endpoints.bullet_private)
    add(kc.SYMBOLS, endpoints.symbols)
    add(kc.ORDER_BOOK_20, endpoints.level2_20)
    add(kc.ORDER_BOOK_100, endpoints.level2_100)
    add(kc.SERVER_TIME, endpoints.timestamp)
    add_admin_routes(app, sim)
    app.router.add_get(WS_PRIVATE_PATH, hub.handle)
    return app


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json_response(status: int, payload: dict[str, Any], headers: dict[str, str]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode(),
        content_type="application/json",
        headers=headers,
    )


@dataclass(slots=True)
class _Reply:
    status: int
    payload: dict[str, Any] | None  # None: the call hangs before an answer exists
    pool: PoolState
    hang: bool = False


def _gateway(sim: Simulator, specs: dict[web.AbstractRoute, RouteSpec]) -> Middleware:
    limiter = sim.rate_limiter

    @web.middleware
    async def gateway(request: web.Request, handler: Endpoint) -> web.StreamResponse:
        arrival_ns = time.monotonic_ns()
        match_info = request.match_info
        spec = specs.get(match_info.route)
        if spec is None:
            if match_info.http_exception is None:
                return await handler(request)  # the /_sim/ admin API
            code = METHOD_NOT_ALLOWED if match_info.http_exception.status == 405 else URL_NOT_FOUND
            error = KucoinError(code)
            return _json_response(error.http_status, {"code": error.code, "msg": error.msg},
                                  limiter.peek(PUBLIC_POOL).headers())
        body = await request.read()
        order_body: Any = None
        if spec.order_kind is not None:
            try:
                order_body = json.loads(body, parse_float=Decimal)
            except ValueError:
                order_body = _INVALID_JSON
            request[_ORDER_BODY] = order_body
        reply = await _answer(sim, request, handler, spec, body)
        if spec.order_kind is not None:
            _log_order_call(sim, arrival_ns, spec.order_kind, order_body, reply)
        if reply.hang:
            await sim.wait_until_stopping()
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)  # written to a closed socket: never arrives
        knobs = sim.knobs
        delay_ms = knobs.latency_ms + (sim.rng.uniform(0.0, knobs.jitter_ms) if knobs.jitter_ms else 0.0)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        assert reply.payload is not None
        return _json_response(reply.status, reply.payload, reply.pool.headers())

    return gateway


async def _answer(sim: Simulator, request: web.Request, handler: Endpoint, spec: RouteSpec, body: bytes) -> _Reply:
    pool: PoolState | None = None
    try:
        if body and request.method == "POST" and request.content_type != "application/json":
            raise KucoinError(UNSUPPORTED_MEDIA_TYPE)
        if spec.route.private:
            sim.verifier.verify(request.headers, request.method, request.raw_path, body, _now_ms())
        knobs, path, rng = sim.knobs, request.path, sim.rng
        oid = _client_oid_of(request.get(_ORDER_BODY))
        if knobs.force_429.fires(path, rng, oid):
            raise KucoinError(TOO_MANY_REQUESTS)
        pool = sim.rate_limiter.charge(spec.route.pool, spec.route.weight)
        if not pool.allowed:
            raise KucoinError(TOO_MANY_REQUESTS)
        if knobs.fail_5xx.fires(path, rng, oid):
            raise KucoinError(INTERNAL_ERROR)
        if knobs.hang.fires(path, rng, oid):
            return _Reply(0, None, pool, hang=True)
        if spec.order_kind is not None and knobs.reject.fires(path, rng, oid):
            raise KucoinError(knobs.reject.code, knobs.reject.msg)
        data = await handler(request)
        return _Reply(200, {"code": SUCCESS, "data": data}, pool, hang=request.get(_HANG_AFTER_MATCH, False))
    except KucoinError as exc:
        return _Reply(exc.http_status, {"code": exc.code, "msg": exc.msg},
                      pool if pool is not None else sim.rate_limiter.peek(spec.route.pool))


def _client_oid_of(body: object) -> str | None:
    """An order call's clientOid, for faults aimed at one order."""
    if isinstance(body, dict):
        value = body.get("clientOid")
        return value if isinstance(value, str) else None
    return None


def _log_order_call(sim: Simulator, arrival_ns: int, kind: str, body: Any, reply: _Reply) -> None:
    fields = body if isinstance(body, dict) else {}

    def text(key: str) -> str | None:
        value = fields.get(key)
        return None if value is None else str(value)

    payload = reply.payload
    data = payload.get("data") if payload is not None else None
    sim.order_log.append(OrderLogEntry(
        arrival_ns=arrival_ns,
        kind=kind,
        client_oid=text("clientOid"),
        symbol=text("symbol"),
        side=text("side"),
        type=text("type"),
        size=text("size"),
        funds=text("funds"),
        code=payload["code"] if payload is not None else None,
        http_status=reply.status if payload is not None else None,
        order_id=data.get("orderId") if isinstance(data, dict) else None,
    ))


class _Endpoints:
    """The KuCoin endpoints; each returns the envelope's `data`."""

    def __init__(self, sim: Simulator, hub: PrivateWsHub) -> None:
        self._sim = sim
        self._hub = hub

    def _order_request(self, request: web.Request) -> OrderRequest:
        body = request[_ORDER_BODY]
        if body is _INVALID_JSON:
            raise KucoinError(BAD_REQUEST, "Request body is not valid JSON.")
        return parse_order_request(body, self._sim.exchange.symbols)

    async def place(self, request: web.Request) -> dict[str, str]:
        order = self._sim.exchange.place(self._order_request(request), self._sim.knobs, self._hub.order_placed)
        self._maybe_hang_after_match(request)
        return {"orderId": order.id, "clientOid": order.client_oid}

    async def place_sync(self, request: web.Request) -> dict[str, Any]:
        order = self._sim.exchange.place(self._order_request(request), self._sim.knobs, self._hub.order_placed)
        self._maybe_hang_after_match(request)
        return order.to_sync_wire()

    def _maybe_hang_after_match(self, request: web.Request) -> None:
        oid = _client_oid_of(request.get(_ORDER_BODY))
        if self._sim.knobs.hang_after_match.fires(request.path, self._sim.rng, oid):
            request[_HANG_AFTER_MATCH] = True

    async def test(self, request: web.Request) -> dict[str, str]:
        return self._sim.exchange.test(self._order_request(request), self._sim.knobs)

    async def get_order(self, request: web.Request) -> dict[str, Any]:
        hf_code = self._sim.knobs.order_not_exist_126043
        return self._sim.exchange.find(request.match_info["orderId"], _symbol_param(request), hf_code).to_wire()

    async def get_by_client_oid(self, request: web.Request) -> dict[str, Any]:
        exchange = self._sim.exchange
        hf_code = self._sim.knobs.order_not_exist_126043
        return exchange.find_by_client_oid(request.match_info["clientOid"], _symbol_param(request), hf_code).to_wire()

    async def cancel(self, request: web.Request) -> dict[str, str]:
        order_id, symbol = request.match_info["orderId"], _symbol_param(request)
        return {"orderId": self._sim.exchange.cancel(order_id, symbol, self._hub.order_cancelled).id}

    async def symbols(self, request: web.Request) -> list[dict[str, Any]]:
        market = request.query.get("market")
        return [s.to_wire() for s in self._sim.exchange.symbols.values() if market is None or s.market == market]

    async def level2_20(self, request: web.Request) -> dict[str, Any]:
        return self._book(request, 20)

    async def level2_100(self, request: web.Request) -> dict[str, Any]:
        return self._book(request, 100)

    def _book(self, request: web.Request, depth: int) -> dict[str, Any]:
        book = self._sim.exchange.books.get(_symbol_param(request))
        if book is None:
            raise KucoinError(UNKNOWN_SYMBOL)
        return book.snapshot(depth, _now_ms())

    async def trade_fees(self, request: web.Request) -> list[dict[str, str]]:
        names = [name for name in request.query.get("symbols", "").split(",") if name]
        if not names or len(names) > MAX_TRADE_FEE_SYMBOLS:
            raise KucoinError(PARAMETER_ERROR, f"symbols must list 1 to {MAX_TRADE_FEE_SYMBOLS} symbols.")
        symbols = self._sim.exchange.symbols
        if any(name not in symbols for name in names):
            raise KucoinError(UNKNOWN_SYMBOL)
        return [
            {"symbol": name, "takerFeeRate": fmt_decimal(symbols[name].taker_fee_rate),
             "makerFeeRate": fmt_decimal(symbols[name].maker_fee_rate)}
            for name in names
        ]

    async def accounts(self, request: web.Request) -> list[dict[str, str]]:
        if request.query.get("type", "trade") != "trade":
            return []  # only the trade account exists here
        return self._sim.exchange.accounts(request.query.get("currency"))

    async def timestamp(self, request: web.Request) -> int:
        return _now_ms()

    async def bullet_private(self, request: web.Request) -> dict[str, Any]:
        return {
            "token": self._sim.issue_ws_token(),
            "instanceServers": [{
                "endpoint": f"ws://{request.host}{WS_PRIVATE_PATH}",
                "encrypt": False,
                "protocol": "websocket",
                "pingInterval": self._hub.knobs.ping_interval_ms,
                "pingTimeout": self._hub.knobs.ping_timeout_ms,
            }],
        }


def _symbol_param(request: web.Request) -> str:
    symbol = request.query.get("symbol")
    if not symbol:
        raise KucoinError(PARAMETER_ERROR, "symbol is required.")
    return symbol
