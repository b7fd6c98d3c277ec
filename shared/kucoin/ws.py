"""KuCoin private WebSocket client: order terminal states by clientOid, and a live balance view.

One connection per worker, kept up for the worker's life: `bullet-private` token, connect with a
fresh connectId, `welcome` within `welcome_timeout_s`, subscribe to `/spotMarket/tradeOrdersV2`
and `/account/balance` (each acknowledged), then a JSON `ping` every `pingInterval` — a `pong`
missing after `pingTimeout` means the connection is dead even if TCP has not noticed. Any failure
reconnects with jittered exponential backoff and a new token, and resubscribes.

Events pushed while the socket was down are gone for good, so every (re)connect reconciles: each
watched order that has not reached a terminal state is queried by clientOid, and one that is done
is resolved from the query. Waiters therefore learn a fill whether its event arrived or not.

Order events carry no fee and no dealFunds: a waiter learns *that* an order is done (and its
filled size), and the caller queries the order for the money.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import structlog
from yarl import URL

from shared.kucoin.constants import BALANCE_TOPIC, ORDER_TOPIC
from shared.kucoin.errors import KucoinError
from shared.kucoin.models import Order
from shared.kucoin.rest import KucoinRest

__all__ = ["WsError", "OrderDone", "Balance", "PrivateWs"]

log = structlog.get_logger(__name__)

_TOPICS = (ORDER_TOPIC, BALANCE_TOPIC)
_TERMINAL_TYPES = frozenset({"filled", "canceled"})
_ZERO = Decimal(0)


class WsError(Exception):
    """The server refused something (bad token 401, unknown topic 404, ...) or broke the protocol."""

    def __init__(self, code: int | str, data: str) -> None:
        super().__init__(code, data)
        self.code = code
        self.data = data

    def __str__(self) -> str:
        return f"KuCoin WebSocket error {self.code}: {self.data}"


@dataclass(frozen=True, slots=True)
class OrderDone:
    """An order reached a terminal state: `filled`, or `canceled` (an unfilled remainder was cancelled).

    `source` says how it was learned: "ws" (its event) or "query" (reconciliation after a reconnect).
    """

    client_oid: str
    order_id: str
    symbol: str
    status: str
    filled_size: Decimal
    source: str

    @classmethod
    def from_order(cls, order: Order) -> OrderDone:
        cancelled = order.cancelled_size > 0 or order.cancelled_funds > 0 or order.deal_size == 0
        return cls(order.client_oid, order.id, order.symbol, "canceled" if cancelled else "filled",
                   order.deal_size, "query")


@dataclass(frozen=True, slots=True)
class Balance:
    """One currency of the trade account as the latest event (or snapshot) said; `time_ms` orders them."""

    currency: str
    total: Decimal
    available: Decimal
    hold: Decimal
    time_ms: int


@dataclass(slots=True)
class _Watch:
    symbol: str
    done: asyncio.Future[OrderDone]


class PrivateWs:
    """Call `start()` once; `watch()` an order before placing it, then `wait_done()` for it."""

    def __init__(
        self,
        rest: KucoinRest,
        session: aiohttp.ClientSession,
        *,
        welcome_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 5.0,
    ) -> None:
        self._rest = rest
        self._session = session
        self._welcome_timeout_s = welcome_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._watches: dict[str, _Watch] = {}
        self._balances: dict[str, Balance] = {}
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._connected = asyncio.Event()
        self._balance_pushed = asyncio.Event()  # set (and replaced) on every balance change
        self._runner: asyncio.Task[None] | None = None
        self.connects = 0  # successful connections (welcomed and subscribed)
        self.resolved_by_query = 0  # watched orders whose end was learned by reconciliation

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background, and keep reconnecting until `close()`."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="private-ws")

    async def wait_connected(self, timeout_s: float) -> bool:
        """Whether the socket is (or becomes within `timeout_s`) connected, subscribed and caught up
        (watched orders reconciled, balances snapshot)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        self._connected.clear()

    # -- orders -------------------------------------------------------------------------

    def watch(self, client_oid: str, symbol: str) -> None:
        """Start listening for this order's end; call before placing so no event is missed."""
        if client_oid not in self._watches:
            self._watches[client_oid] = _Watch(symbol, asyncio.get_running_loop().create_future())

    def forget(self, client_oid: str) -> None:
        self._watches.pop(client_oid, None)

    async def wait_done(self, client_oid: str, timeout_s: float) -> OrderDone | None:
        """The watched order's terminal state, or None if it was not learned within `timeout_s`."""
        watch = self._watches.get(client_oid)
        if watch is None:
            raise KeyError(f"clientOid {client_oid} is not watched")
        try:
            return await asyncio.wait_for(asyncio.shield(watch.done), timeout_s)
        except TimeoutError:
            return None

    # -- balances -----------------------------------------------------------------------

    def balance(self, currency: str) -> Balance | None:
        return self._balances.get(currency)

    @property
    def balances(self) -> dict[str, Balance]:
        return dict(self._balances)

    async def wait_available(self, currency: str, amount: Decimal, timeout_s: float) -> bool:
        """Whether the view shows at least `amount` of `currency` available, now or after a push
        within `timeout_s` (a delivered amount the exchange had not yet credited when it refused)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            balance = self._balances.get(currency)
            if balance is not None and balance.available >= amount:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._balance_pushed.wait(), remaining)
            except TimeoutError:
                return False

    # -- the connection -----------------------------------------------------------------

    async def _run(self) -> None:
        backoff_s = self._backoff_initial_s
        while True:
            connects = self.connects
            try:
                await self._connect_once()
            except Exception as exc:  # whatever broke, this loop must live: it is how fills get learned
                log.warning("private_ws_failed", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._connected.clear()
                self._fail_replies(ConnectionError("private WebSocket closed"))
            if self.connects > connects:
                backoff_s = self._backoff_initial_s  # it worked for a while: start over
            await asyncio.sleep(backoff_s * random.uniform(0.5, 1.0))
            backoff_s = min(backoff_s * 2, self._backoff_max_s)

    async def _connect_once(self) -> None:
        token = await self._rest.bullet_private()
        url = URL(token.endpoint).update_query(token=token.token, connectId=uuid.uuid4().hex)
        async with asyncio.timeout(self._welcome_timeout_s):
            ws = await self._session.ws_connect(url, autoping=True, heartbeat=None)
        async with ws:
            async with asyncio.timeout(self._welcome_timeout_s):
                welcome = _json(await ws.receive())
            if welcome.get("type") != "welcome":
                raise WsError(welcome.get("code", 0), str(welcome.get("data") or welcome))
            reader = asyncio.create_task(self._read(ws))
            pinger: asyncio.Task[None] | None = None
            try:
                async with asyncio.timeout(self._welcome_timeout_s):
                    await asyncio.gather(*(self._request(ws, "subscribe", topic) for topic in _TOPICS))
                pinger = asyncio.create_task(self._ping(ws, token.ping_interval_ms / 1000, token.ping_timeout_ms / 1000))
                # subscribed, so nothing from now on is missed: catch up on what was, then say so
                await asyncio.gather(self._reconcile(), self._snapshot_balances())
                self.connects += 1
                self._connected.set()
                log.info("private_ws_connected", connects=self.connects)
                await reader
            finally:
                for task in (reader, pinger):
                    if task is not None:
                        task.cancel()

    async def _request(self, ws: aiohttp.ClientWebSocketResponse, kind: str, topic: str | None = None) -> None:
        """Send a ping or subscribe and wait for its pong/ack (an error reply raises WsError)."""
        msg_id = str(next(self._ids))
        reply = asyncio.get_running_loop().create_future()
        self._replies[msg_id] = reply
        message: dict[str, Any] = {"id": msg_id, "type": kind}
        if topic is not None:
            message.update(topic=topic, privateChannel=True, response=True)
        try:
            await ws.send_str(orjson.dumps(message).decode())
            answer = await reply
        finally:
            self._replies.pop(msg_id, None)
        if answer.get("type") == "error":
            raise WsError(answer.get("code", 0), str(answer.get("data", "")))

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse, interval_s: float, timeout_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                async with asyncio.timeout(timeout_s):
                    await self._request(ws, "ping")
            except (TimeoutError, ConnectionError, WsError):
                log.warning("private_ws_ping_timeout")
                await ws.close()
                return

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                self._dispatch(orjson.loads(message.data))
            except (ValueError, KeyError, TypeError, ArithmeticError) as exc:  # one bad frame is not fatal
                log.warning("private_ws_bad_message", error=str(exc), message=str(message.data)[:200])

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "message":
            data = message["data"]
            if message.get("topic") == ORDER_TOPIC:
                self._on_order_event(data)
            elif message.get("topic") == BALANCE_TOPIC:
                self._on_balance(data)
            return
        reply = self._replies.get(str(message.get("id", "")))
        if reply is not None and not reply.done():
            reply.set_result(message)
        elif kind == "error":
            log.warning("private_ws_error", code=message.get("code"), data=message.get("data"))

    def _on_order_event(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        # `status: done` ends an order whatever the type (`update` + `done`: part filled, the rest
        # cancelled, or self-trade prevention); `filled`/`canceled` are done by definition
        if kind not in _TERMINAL_TYPES and data.get("status") != "done":
            return
        watch = self._watches.get(str(data.get("clientOid")))
        if watch is not None and not watch.done.done():
            watch.done.set_result(OrderDone(
                client_oid=str(data["clientOid"]), order_id=str(data["orderId"]), symbol=str(data["symbol"]),
                status="filled" if kind == "filled" else "canceled", filled_size=_amount(data.get("filledSize")),
                source="ws",
            ))

    def _on_balance(self, data: dict[str, Any]) -> None:
        balance = Balance(
            currency=str(data["currency"]), total=_amount(data.get("total")), available=_amount(data.get("available")),
            hold=_amount(data.get("hold")), time_ms=int(data.get("time") or 0),
        )
        current = self._balances.get(balance.currency)
        if current is None or balance.time_ms >= current.time_ms:  # pushes may arrive out of order
            self._balances[balance.currency] = balance
            pushed, self._balance_pushed = self._balance_pushed, asyncio.Event()
            pushed.set()

    async def _reconcile(self) -> None:
        """Resolve, by query, watched orders whose terminal event may have been pushed while we were away."""
        async def check(client_oid: str, watch: _Watch) -> None:
            try:
                order = await self._rest.get_order_by_client_oid(client_oid, watch.symbol)
            except KucoinError:
                return  # not at the exchange (yet), or unreachable: the waiter's own query decides
            if not order.active and not watch.done.done():
                watch.done.set_result(OrderDone.from_order(order))
                self.resolved_by_query += 1

        pending = [(oid, w) for oid, w in self._watches.items() if not w.done.done()]
        await asyncio.gather(*(check(oid, w) for oid, w in pending))

    async def _snapshot_balances(self) -> None:
        """Seed the balance view from REST; events newer than the snapshot keep precedence."""
        taken_ms = int(time.time() * 1000) - 1
        try:
            accounts = await self._rest.accounts()
        except KucoinError as exc:
            log.warning("private_ws_balance_snapshot_failed", error=str(exc))
            return
        for account in accounts:
            current = self._balances.get(account.currency)
            if current is None or current.time_ms <= taken_ms:
                self._balances[account.currency] = Balance(
                    account.currency, account.balance, account.available, account.holds, taken_ms)

    def _fail_replies(self, exc: Exception) -> None:
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(exc)


def _json(message: aiohttp.WSMessage) -> dict[str, Any]:
    if message.type != aiohttp.WSMsgType.TEXT:
        raise WsError(0, f"connection closed before welcome ({message.type.name})")
    value = orjson.loads(message.data)
    if not isinstance(value, dict):
        raise WsError(0, "welcome is not a JSON object")
    return value


def _amount(value: Any) -> Decimal:
    return _ZERO if value in (None, "") else Decimal(str(value))
