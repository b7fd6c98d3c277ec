"""KuCoin spot REST client: HF orders, the public data Trident needs, and safe failure semantics.

What is signed is exactly what is sent. A body is serialised once (compact JSON, amounts as plain
decimal strings) and those bytes are both signed and passed as `data=`; a path with its raw,
unencoded query is signed and sent as a pre-encoded URL so aiohttp cannot re-quote it.

Failures are classified by what the caller may do next:
- a placement (`place_order`, `place_order_sync`) that timed out, lost its connection or got a
  5xx may have created an order, so it raises `UnknownOutcome(client_oid)` and is never
  retried — the caller queries by clientOid;
- a placement whose connection could not even be opened sent nothing: `TransportError`;
- any other call failing below HTTP raises `TransportError`; a 5xx or non-envelope body
  raises `ServerError`; business codes map through `error_from_response`.

Retries: aiohttp itself re-sends an idempotent request (GET, DELETE) once when the connection
drops before a response arrives — the stale keep-alive case, where the server closed an idle
socket just as we reused it. That is safe for the GETs here (reads have no effect) and for
cancel (cancelling twice cannot create or fill anything; the repeat can only report the order
as already gone). aiohttp never does this for POST, and neither does this client.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from shared.credentials import Credentials
from shared.kucoin.auth import Signer
from shared.kucoin.constants import (
    ACCOUNTS,
    BULLET_PRIVATE,
    CANCEL_ORDER,
    GET_ORDER,
    GET_ORDER_BY_CLIENT_OID,
    MAX_TRADE_FEE_SYMBOLS,
    ORDER_BOOKS,
    PLACE_ORDER,
    PLACE_ORDER_SYNC,
    PLACE_ORDER_TEST,
    RATE_LIMIT_REMAINING_HEADER,
    SERVER_TIME,
    SPOT_POOL,
    SUCCESS,
    SYMBOLS,
    TRADE_FEES,
    Route,
)
from shared.kucoin.errors import (
    AuthError,
    ServerError,
    TransportError,
    UnknownOutcome,
    error_from_response,
)
from shared.kucoin.models import (
    Account,
    BulletToken,
    Order,
    OrderAck,
    OrderBook,
    RateLimitInfo,
    SymbolInfo,
    SyncOrder,
    TradeFee,
)

__all__ = ["KucoinRest"]

_CONNECT_TIMEOUT_CAP_S = 5.0
_JSON_SEPARATORS = (",", ":")

# KuCoin's clientOid rule; also keeps a clientOid safe to splice into a URL path.
_CLIENT_OID = re.compile(r"[A-Za-z0-9_-]{1,40}")
# Order ids, symbols and account types go into paths and raw (unencoded) queries unescaped.
_URL_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# Connection could not be opened: the request provably never left this host.
_NOT_SENT_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
_TRANSPORT_ERRORS = (asyncio.TimeoutError, aiohttp.ClientError)
_MALFORMED_DATA_ERRORS = (KeyError, IndexError, TypeError, ValueError, InvalidOperation)

_Model = TypeVar("_Model")


def _plain(amount: Decimal, name: str) -> str:
    """`amount` as KuCoin wants it: positive, finite, never exponent form (1E-8 → 0.00000001)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(amount).__name__}")
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"{name} must be a positive finite amount, got {amount}")
    return format(amount, "f")


def _url_token(value: str, name: str) -> str:
    if not isinstance(value, str) or not _URL_TOKEN.fullmatch(value):
        raise ValueError(f"{name} {value!r} is not a plain KuCoin identifier")
    return value


def _order_path(route: Route, order_id: str) -> str:
    return route.path.format(orderId=_url_token(order_id, "orderId"))


def _client_oid(value: str) -> str:
    if not isinstance(value, str) or not _CLIENT_OID.fullmatch(value):
        raise ValueError(f"clientOid {value!r} must be 1-40 characters of [A-Za-z0-9_-]")
    return value


def _order_body(
    symbol: str,
    side: str,
    order_type: str,
    size: Decimal | None,
    funds: Decimal | None,
    price: Decimal | None,
    client_oid: str | None,
) -> bytes:
    """The exact JSON bytes to sign and send; key order matches KuCoin's documented examples."""
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if order_type == "market":
        if (size is None) == (funds is None):
            raise ValueError("a market order needs exactly one of size or funds")
        if price is not None:
            raise ValueError("a market order takes no price")
    elif order_type == "limit":
        if price is None or size is None or funds is not None:
            raise ValueError("a limit order needs price and size, and no funds")
    else:
        raise ValueError(f"order_type must be 'market' or 'limit', got {order_type!r}")
    body: dict[str, str] = {}
    if client_oid is not None:
        body["clientOid"] = _client_oid(client_oid)
    body["side"] = side
    body["symbol"] = symbol
    body["type"] = order_type
    if price is not None:
        body["price"] = _plain(price, "price")
    if size is not None:
        body["size"] = _plain(size, "size")
    else:
        body["funds"] = _plain(funds, "funds")  # type: ignore[arg-type]  # checked above
    return json.dumps(body, separators=_JSON_SEPARATORS).encode()


def _decode(raw: bytes) -> object:
    """The JSON body with every non-integer number as Decimal; the raw bytes if it is not JSON."""
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        return raw


def _parse(parser: Callable[[Any], _Model], data: Any, *, placing: str | None = None) -> _Model:
    """Apply `parser` to a success envelope's `data`. A malformed success for a placement
    still means the order was probably accepted, so it is an UnknownOutcome too."""
    try:
        return parser(data)
    except _MALFORMED_DATA_ERRORS as exc:
        msg = f"malformed success data: {data!r:.200}"
        if placing is not None:
            raise UnknownOutcome(placing, msg) from exc
        raise ServerError("", msg) from exc


class KucoinRest:
    """One account's REST client over a shared keep-alive session (see `session.make_session`).

    `last_rate_limit` is the pool as the gateway reported it on the latest response that carried
    `gw-ratelimit-*` headers (None until one did), whichever pool that call drew on;
    `last_spot_rate_limit` the same for Spot-pool calls only, the one the fleet's budget follows.
    """

    __slots__ = ("_session", "_base_url", "_signer", "_timeout", "_urls", "last_rate_limit", "last_spot_rate_limit")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str = "https://api.kucoin.com",
        credentials: Credentials | None = None,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._signer = Signer(credentials) if credentials is not None else None
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=min(timeout_s, _CONNECT_TIMEOUT_CAP_S)
        )
        self._urls: dict[str, URL] = {}  # query-less paths (the order routes): one URL object each
        self.last_rate_limit: RateLimitInfo | None = None
        self.last_spot_rate_limit: RateLimitInfo | None = None

    # -- orders -------------------------------------------------------------------------

    async def order_test(
        self,
        symbol: str,
        side: str,
        *,
        size: Decimal | None = None,
        funds: Decimal | None = None,
        client_oid: str | None = None,
        order_type: str = "market",
        price: Decimal | None = None,
    ) -> OrderAck:
        """Validate an order without it entering matching; success does not prove a live order
        would pass (balance and increment checks are undocumented). Not a placement: transport
        failures raise TransportError, never UnknownOutcome."""
        return await self._submit(PLACE_ORDER_TEST, OrderAck.from_api, symbol, side, order_type,
                                  size, funds, price, client_oid, places=False)

    async def place_order(
        self,
        symbol: str,
        side: str,
        *,
        size: Decimal | None = None,
        funds: Decimal | None = None,
        client_oid: str,
        order_type: str = "market",
        price: Decimal | None = None,
    ) -> OrderAck:
        """Place an HF order. `client_oid` is the caller's deterministic id: it is how an
        `UnknownOutcome` gets resolved, and what makes an accidental resend a rejected duplicate."""
        return await self._submit(PLACE_ORDER, OrderAck.from_api, symbol, side, order_type,
                                  size, funds, price, client_oid, places=True)

    async def place_order_sync(
        self,
        symbol: str,
        side: str,
        *,
        size: Decimal | None = None,
        funds: Decimal | None = None,
        client_oid: str,
        order_type: str = "market",
        price: Decimal | None = None,
    ) -> SyncOrder:
        """Place an HF order and wait for its match result (no dealFunds, no fee: query the
        order for those). Same failure rules as `place_order`."""
        return await self._submit(PLACE_ORDER_SYNC, SyncOrder.from_api, symbol, side, order_type,
                                  size, funds, price, client_oid, places=True)

    async def _submit(
        self,
        route: Route,
        parser: Callable[[Any], _Model],
        symbol: str,
        side: str,
        order_type: str,
        size: Decimal | None,
        funds: Decimal | None,
        price: Decimal | None,
        client_oid: str | None,
        *,
        places: bool,
    ) -> _Model:
        """Send one order body to `route`. When the call `places` an order, its clientOid is
        required (checked first) and every unknown result is an `UnknownOutcome` for it — the
        request is sent once and never retried."""
        if places:
            _client_oid(client_oid)  # type: ignore[arg-type]  # a placement's clientOid is required
        placing = client_oid if places else None
        body = _order_body(symbol, side, order_type, size, funds, price, client_oid)
        data = await self._call(route, route.path, body, placing=placing)
        return _parse(parser, data, placing=placing)

    async def get_order(self, order_id: str, symbol: str) -> Order:
        path = f"{_order_path(GET_ORDER, order_id)}?symbol={_url_token(symbol, 'symbol')}"
        return _parse(Order.from_api, await self._call(GET_ORDER, path))

    async def get_order_by_client_oid(self, client_oid: str, symbol: str) -> Order:
        """The way to resolve an `UnknownOutcome`; an order that never arrived is a KucoinError."""
        route = GET_ORDER_BY_CLIENT_OID
        path = f"{route.path.format(clientOid=_client_oid(client_oid))}?symbol={_url_token(symbol, 'symbol')}"
        return _parse(Order.from_api, await self._call(route, path))

    async def cancel_order(self, order_id: str, symbol: str) -> str:
        """Cancel by exchange id; returns the cancelled order's id."""
        path = f"{_order_path(CANCEL_ORDER, order_id)}?symbol={_url_token(symbol, 'symbol')}"
        data = await self._call(CANCEL_ORDER, path)
        return _parse(lambda d: str(d["orderId"]), data)

    # -- reference data -----------------------------------------------------------------

    async def symbols(self) -> list[SymbolInfo]:
        data = await self._call(SYMBOLS, SYMBOLS.path)
        return _parse(lambda items: [SymbolInfo.from_api(item) for item in items], data)

    async def order_book(self, symbol: str, depth: int = 20) -> OrderBook:
        """Public level-2 snapshot, 20 or 100 levels a side."""
        route = ORDER_BOOKS.get(depth)
        if route is None:
            raise ValueError(f"depth must be 20 or 100, got {depth}")
        data = await self._call(route, f"{route.path}?symbol={_url_token(symbol, 'symbol')}")
        return _parse(OrderBook.from_api, data)

    async def trade_fees(self, symbols: Sequence[str]) -> list[TradeFee]:
        """The account's real fee rates; KuCoin accepts at most 10 symbols per call."""
        if isinstance(symbols, str) or not 1 <= len(symbols) <= MAX_TRADE_FEE_SYMBOLS:
            raise ValueError(f"trade_fees takes a sequence of 1-{MAX_TRADE_FEE_SYMBOLS} symbols, got {symbols!r}")
        query = ",".join(_url_token(symbol, "symbol") for symbol in symbols)
        data = await self._call(TRADE_FEES, f"{TRADE_FEES.path}?symbols={query}")
        return _parse(lambda items: [TradeFee.from_api(item) for item in items], data)

    async def accounts(self, type: str | None = "trade") -> list[Account]:  # noqa: A002  # KuCoin's name
        """Balances, by default of the TRADE account orders draw on; None lists every type."""
        path = ACCOUNTS.path if type is None else f"{ACCOUNTS.path}?type={_url_token(type, 'type')}"
        data = await self._call(ACCOUNTS, path)
        return _parse(lambda items: [Account.from_api(item) for item in items], data)

    async def server_time(self) -> int:
        """Exchange time in epoch ms, to measure clock skew (signed calls fail beyond 5 s)."""
        return _parse(int, await self._call(SERVER_TIME, SERVER_TIME.path))

    async def bullet_private(self) -> BulletToken:
        """A token for the private WebSocket (valid about 24 h)."""
        data = await self._call(BULLET_PRIVATE, BULLET_PRIVATE.path)
        return _parse(BulletToken.from_api, data)

    # -- transport ----------------------------------------------------------------------

    async def _call(
        self,
        route: Route,
        path_with_query: str,
        body: bytes = b"",
        *,
        placing: str | None = None,
    ) -> Any:
        """One request to `route` (its method, and signed if it is private) at `path_with_query`;
        returns the envelope's `data`. `placing` is the clientOid when this request may create
        an order, which turns every unknown result into UnknownOutcome."""
        method = route.method
        if route.private:
            if self._signer is None:
                raise AuthError("", f"{method} {path_with_query} is private and no API credentials are configured")
            headers: Mapping[str, str] | None = self._signer.headers(method, path_with_query, body)
        else:
            headers = None
        url = self._urls.get(path_with_query)
        if url is None:
            url = URL(self._base_url + path_with_query, encoded=True)
            if "?" not in path_with_query and len(self._urls) < 64:
                self._urls[path_with_query] = url
        try:
            async with self._session.request(
                method, url, data=body or None, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                status = response.status
                response_headers = response.headers
        except _NOT_SENT_ERRORS as exc:
            raise TransportError("", f"{method} {path_with_query}: could not connect, nothing sent: {exc!r}") from exc
        except _TRANSPORT_ERRORS as exc:
            reason = f"{method} {path_with_query}: {type(exc).__name__} {exc}".rstrip()
            if placing is not None:
                raise UnknownOutcome(placing, reason) from exc
            raise TransportError("", reason) from exc

        if RATE_LIMIT_REMAINING_HEADER in response_headers:
            try:
                self.last_rate_limit = RateLimitInfo.from_api(response_headers)
            except (KeyError, ValueError):
                pass  # a partial or garbled header set says nothing reliable; keep the last one
            else:
                # a Management (accounts) or Public answer carries its own pool's figures
                if route.pool == SPOT_POOL:
                    self.last_spot_rate_limit = self.last_rate_limit
        payload = _decode(raw)
        if isinstance(payload, dict) and payload.get("code") == SUCCESS:
            return payload.get("data")
        error = error_from_response(status, payload, response_headers)
        if placing is not None and (status >= 500 or isinstance(error, ServerError)):
            reason = f"{method} {path_with_query}: {error.msg or 'no message'}"
            raise UnknownOutcome(placing, reason, status, error.code) from error
        raise error
