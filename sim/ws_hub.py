"""The simulator's private WebSocket: KuCoin's welcome/ping/subscribe protocol and order/balance pushes.

A client connects to the endpoint `bullet-private` returned, with `?token=...&connectId=...`.
An unknown token gets `{"type":"error","code":401}` and the connection is closed; otherwise the
server says `welcome` (id = connectId), answers every JSON `ping` with a `pong`, acks each
`subscribe`/`unsubscribe` that asks for a response, and refuses unknown topics (404) and
unreadable messages (400). A connection silent for `ping_interval_ms + ping_timeout_ms` is
closed, as KuCoin drops clients that stop pinging.

For every accepted order the exchange calls `PrivateWsHub.order_placed`, which pushes KuCoin's
sequence on `/spotMarket/tradeOrdersV2`: `received` (status new), one `match` per book level
taken, then `filled` (done), `update` (done: part filled, the rest cancelled — KuCoin's spec) or
`canceled` (done: nothing filled) — or `open` for a limit order left resting, `canceled` later
if it is cancelled. Then the `/account/balance` events, each message with its own top-level
`id`: for an order that does not rest, `trade.hold` of what it spends, then one `trade.setted`
per currency it moved (the hold spent; the proceeds credited), each carrying the balance at that
point. Like KuCoin's, the events carry no fee and no dealFunds.

Its faults and ping timing are `WsKnobs` (see `sim.knobs`), steered with `hub.update_knobs(...)`
or `POST /_sim/ws/knobs`; `POST /_sim/ws/cut` drops every connection at once. The hub of a
simulator is `sim.ws_hub`; it outlives `sim.reset()` (which leaves these knobs alone).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from shared.kucoin.constants import BALANCE_TOPIC, ORDER_TOPIC, TOPIC_SUBJECTS
from shared.money import fmt_decimal
from sim.knobs import WsKnobs
from sim.matching import Fill
from sim.orders import Order

if TYPE_CHECKING:
    from sim.simulator import Simulator

__all__ = ["PrivateWsHub", "USER_ID"]

USER_ID = "sim-user-0001"
_ZERO = Decimal(0)
_CUT = object()  # queued after the last push a cut connection still delivers


class _Connection:
    """One client: its subscriptions and an outbound queue of (due monotonic s, frame)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.topics: set[str] = set()
        self.queue: asyncio.Queue[tuple[float, object]] = asyncio.Queue()

    async def deliver(self) -> None:
        """Send queued pushes when due; a cut closes the socket abruptly, as a dropped network would."""
        while True:
            due, frame = await self.queue.get()
            wait_s = due - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            if frame is _CUT:
                if self.request.transport is not None:
                    self.request.transport.close()
                return
            await self.ws.send_str(frame)  # type: ignore[arg-type]


class PrivateWsHub:
    """Every private-WebSocket connection of one simulator, and the pushes for its orders."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self.knobs = WsKnobs()
        self._connections: set[_Connection] = set()
        self._trade_ids = itertools.count(int(time.time()) << 20)
        self.connections_served = 0

    @property
    def connections(self) -> int:
        return len(self._connections)

    def update_knobs(self, changes: dict[str, Any] | None = None, **more: Any) -> WsKnobs:
        self.knobs.update({**(changes or {}), **more})
        return self.knobs

    def cut_connections(self) -> int:
        """Drop every connection now (pushes already queued are lost); returns how many."""
        dropped = list(self._connections)
        self._connections.clear()
        for conn in dropped:
            if conn.request.transport is not None:
                conn.request.transport.close()
        return len(dropped)

    # -- the endpoint ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connect_id = request.query.get("connectId") or uuid.uuid4().hex
        if request.query.get("token") not in self._sim.ws_tokens:
            await ws.send_json({"id": connect_id, "type": "error", "code": 401, "data": "token is invalid"})
            await ws.close()
            return ws
        self.connections_served += 1
        conn = _Connection(ws, request)
        if self.knobs.withhold_welcome > 0:
            self.knobs.withhold_welcome -= 1
        else:
            await ws.send_json({"id": connect_id, "type": "welcome"})
        self._connections.add(conn)
        sender = asyncio.create_task(conn.deliver())
        idle_s = (self.knobs.ping_interval_ms + self.knobs.ping_timeout_ms) / 1000
        try:
            while not sender.done():
                try:
                    message = await ws.receive(timeout=idle_s)
                except asyncio.TimeoutError:
                    break  # the client stopped pinging
                if message.type != WSMsgType.TEXT:
                    break
                reply = self._answer(conn, message.data)
                if reply is not None:
                    await ws.send_json(reply)
        finally:
            self._connections.discard(conn)
            sender.cancel()
            if not ws.closed:
                await ws.close()
        return ws

    def _answer(self, conn: _Connection, text: str) -> dict[str, Any] | None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            return {"id": "", "type": "error", "code": 400, "data": "invalid message"}
        msg_id = str(message.get("id", ""))
        kind = message.get("type")
        if kind == "ping":
            return {"id": msg_id, "type": "pong", "timestamp": time.time_ns() // 1000}
        if kind in ("subscribe", "unsubscribe"):
            topics = str(message.get("topic", "")).split(",")
            unknown = [topic for topic in topics if topic not in TOPIC_SUBJECTS]
            if unknown:
                return {"id": msg_id, "type": "error", "code": 404, "data": f"topic {unknown[0]} is not found"}
            if kind == "subscribe":
                conn.topics.update(topics)
            else:
                conn.topics.difference_update(topics)
            return {"id": msg_id, "type": "ack"} if message.get("response") else None
        return {"id": msg_id, "type": "error", "code": 400, "data": f"unsupported message type {kind!r}"}

    # -- pushes -----------------------------------------------------------------------------

    def order_placed(self, order: Order, fill: Fill) -> None:
        """The exchange accepted and matched `order`: push its events, then the balances it moved."""
        pushes = self._order_events(order, fill)
        pushes.extend(self._balance_events(order, fill))
        if self.knobs.reorder > 0:
            self.knobs.reorder -= 1
            pushes.reverse()
        self._publish(pushes)

    def order_cancelled(self, order: Order, released: Decimal) -> None:
        """A resting order was cancelled: its `canceled` event and the `released` hold."""
        data = self._order_base(order)
        data.update(type="canceled", status="done", filledSize=fmt_decimal(order.deal_size), remainSize="0",
                    canceledSize=fmt_decimal(order.cancelled_size))
        pushes = [("canceled", ORDER_TOPIC, data)]
        if released:
            pushes.append(self._balance_push(order, order.hold_currency, released, -released))
        self._publish(pushes)

    def _publish(self, pushes: list[tuple[str, str, dict[str, Any]]]) -> None:
        due = time.monotonic() + self.knobs.delay_ms / 1000
        for event_type, topic, data in pushes:
            if self.knobs.drop.fires(event_type):
                continue
            if self.knobs.cut.fires(event_type):
                for conn in self._connections:
                    conn.queue.put_nowait((due, _CUT))
                self._connections.clear()
                return
            envelope = {"topic": topic, "type": "message", "subject": TOPIC_SUBJECTS[topic],
                        "userId": USER_ID, "channelType": "private", "data": data}
            if topic == BALANCE_TOPIC:  # balance messages carry their own top-level id
                envelope = {"id": uuid.uuid4().hex[:24], **envelope}
            frame = json.dumps(envelope, separators=(",", ":"))
            for conn in self._connections:
                if topic in conn.topics:
                    conn.queue.put_nowait((due, frame))

    def _order_base(self, order: Order) -> dict[str, Any]:
        data: dict[str, Any] = {
            "orderId": order.id, "clientOid": order.client_oid, "symbol": order.symbol, "side": order.side,
            "orderType": order.type, "orderTime": order.created_at, "ts": time.time_ns(),
            "originSize": fmt_decimal(order.size),
        }
        if order.size:
            data["size"] = fmt_decimal(order.size)
        if order.funds:
            data["funds"] = data["originFunds"] = fmt_decimal(order.funds)
        if order.price:
            data["price"] = fmt_decimal(order.price)
        return data

    def _order_events(self, order: Order, fill: Fill) -> list[tuple[str, str, dict[str, Any]]]:
        by_size = bool(order.size)
        received = self._order_base(order)
        received.update(type="received", status="new")
        if by_size:
            received["remainSize"] = fmt_decimal(order.size)
        events = [("received", ORDER_TOPIC, received)]
        filled_size = filled_funds = _ZERO
        for price, qty in fill.takes:
            filled_size += qty
            filled_funds += price * qty
            match = self._order_base(order)
            match.update(type="match", status="match", matchPrice=fmt_decimal(price), matchSize=fmt_decimal(qty),
                         filledSize=fmt_decimal(filled_size), tradeId=str(next(self._trade_ids)),
                         liquidity="taker", feeType="takerFee")
            if by_size:
                match["remainSize"] = fmt_decimal(order.size - filled_size)
            else:
                match["remainFunds"] = fmt_decimal(order.funds - filled_funds)
            events.append(("match", ORDER_TOPIC, match))
        last = self._order_base(order)
        last.update(filledSize=fmt_decimal(order.deal_size))
        if order.active:
            last.update(type="open", status="open", remainSize=fmt_decimal(order.remain_size))
        elif order.cancelled_size > 0 or order.cancelled_funds > 0 or not fill.takes:
            # KuCoin's spec: `update` + `done` when part filled and the rest was cancelled;
            # `canceled` + `done` when nothing filled
            last.update(type="update" if fill.takes else "canceled", status="done", remainSize="0",
                        canceledSize=fmt_decimal(order.cancelled_size))
            if order.cancelled_funds > 0:
                last["canceledFunds"] = fmt_decimal(order.cancelled_funds)
        else:
            last.update(type="filled", status="done", remainSize="0")
        events.append((last["type"], ORDER_TOPIC, last))
        return events

    def _balance_events(self, order: Order, fill: Fill) -> list[tuple[str, str, dict[str, Any]]]:
        symbol = self._sim.exchange.symbols[order.symbol]
        base, quote = symbol.base_currency, symbol.quote_currency
        if order.side == "buy":
            changes = {base: fill.deal_size, quote: -(fill.deal_funds + order.fee)}
        else:
            changes = {base: -fill.deal_size, quote: fill.deal_funds - order.fee}
        pushes = []
        if not order.active:  # a market order (or one that did not rest): `trade.hold` first
            for currency, change in changes.items():
                if change < 0:  # held at acceptance: what the order spends, released by `trade.setted`
                    pushes.append(self._balance_push(order, currency, change, -change, "trade.hold", settled=False))
        for currency, change in changes.items():
            hold = order.hold_amount if currency == order.hold_currency else _ZERO
            if not order.active and change < 0:
                pushes.append(self._balance_push(order, currency, _ZERO, change))  # the hold, spent
            elif change or hold:
                pushes.append(self._balance_push(order, currency, change - hold, hold))
        return pushes

    def _balance_push(self, order: Order, currency: str, available_change: Decimal, hold_change: Decimal,
                      relation_event: str = "trade.setted", *, settled: bool = True
                      ) -> tuple[str, str, dict[str, Any]]:
        """One `/account/balance` push; `settled` False shows the account between hold and settlement
        (the ledger has already moved: the order's spending is shown as held, not yet gone)."""
        ledger = self._sim.exchange.ledger
        available, hold = ledger.available(currency), ledger.holds(currency)
        if not settled:
            hold += hold_change
        data = {
            "accountId": uuid.uuid5(uuid.NAMESPACE_OID, f"trade:{currency}").hex[:24],
            "currency": currency,
            "total": fmt_decimal(available + hold),
            "available": fmt_decimal(available),
            "hold": fmt_decimal(hold),
            "availableChange": fmt_decimal(available_change),
            "holdChange": fmt_decimal(hold_change),
            "relationContext": {"symbol": order.symbol, "orderId": order.id},
            "relationEvent": relation_event,
            "relationEventId": uuid.uuid4().hex[:24],
            "time": str(time.time_ns() // 1_000_000),
        }
        return ("balance", BALANCE_TOPIC, data)
