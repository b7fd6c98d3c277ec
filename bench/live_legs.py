"""One live leg, two ways to learn its fill: sync endpoint + query, or place + WebSocket event + query.

Both end with the same `GET` order, because only the query carries the fee and dealFunds; what
differs is how the leg learns the order is done:
- `sync+query`: `POST /hf/orders/sync` (answers once matched) → `GET /hf/orders/{id}`;
- `ws+query`: `POST /hf/orders` → the order's terminal private-WebSocket event → `GET`.
The simulator runs in its own process (`python -m sim`), as the exchange would; each sample is
one market order (buys and sells alternate, so balances stay put), timed with
`time.monotonic_ns()` from the placement call to the settled order. Variants are interleaved so
both see the same machine. `--latency-ms` adds that much before every REST answer and delays
every WebSocket push by the same amount (a network one-way to the exchange and back).

    python -m bench.live_legs [--orders 300] [--latency-ms 0 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

from bench.common import LatencySummary, host_info, markdown_table, write_json
from bench.stack import free_port, wait_http
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.kucoin.ws import PrivateWs
from sim.config import DEMO_CREDENTIALS

__all__ = ["main"]

_SYMBOL = "BTC-USDT"
_BUY_FUNDS = Decimal("20")
_SELL_SIZE = Decimal("0.0002")


def _amount(index: int) -> dict[str, Decimal]:
    return {"funds": _BUY_FUNDS} if index % 2 == 0 else {"size": _SELL_SIZE}


async def _sync_leg(rest: KucoinRest, oid: str, index: int) -> int:
    started = time.monotonic_ns()
    answer = await rest.place_order_sync(_SYMBOL, "buy" if index % 2 == 0 else "sell", client_oid=oid,
                                         **_amount(index))
    order = await rest.get_order(answer.order_id, _SYMBOL)
    assert not order.active and order.fee > 0
    return time.monotonic_ns() - started


async def _ws_leg(rest: KucoinRest, ws: PrivateWs, oid: str, index: int) -> int:
    started = time.monotonic_ns()
    ws.watch(oid, _SYMBOL)
    ack = await rest.place_order(_SYMBOL, "buy" if index % 2 == 0 else "sell", client_oid=oid, **_amount(index))
    done = await ws.wait_done(oid, 5.0)
    order = await rest.get_order(ack.order_id, _SYMBOL)
    ws.forget(oid)
    assert done is not None and done.source == "ws" and not order.active and order.fee > 0
    return time.monotonic_ns() - started


async def _measure(orders: int, latency_ms: float) -> list[LatencySummary]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen([sys.executable, "-m", "sim", "--port", str(port), "--latency-ms", str(latency_ms),
                            "--spot-limit", "1000000000"], stdout=subprocess.DEVNULL)
    try:
        session = make_session(10.0)
        async with session:
            await wait_http(url)
            async with session.post(url + "/_sim/ws/knobs", json={"delay_ms": latency_ms}) as response:
                response.raise_for_status()
            rest = KucoinRest(session, url, DEMO_CREDENTIALS)
            ws = PrivateWs(rest, session)
            await ws.start()
            if not await ws.wait_connected(10):
                raise RuntimeError("the private WebSocket did not connect")
            samples: dict[str, list[int]] = {"sync+query": [], "ws+query": []}
            for index in range(orders):
                # warm-up order first, then alternate which variant goes first
                first_sync = index % 4 < 2
                for variant in (("sync+query", "ws+query") if first_sync else ("ws+query", "sync+query")):
                    oid = f"bench-{variant[:2]}-{latency_ms:g}-{index}".replace(".", "_")
                    if variant == "sync+query":
                        elapsed = await _sync_leg(rest, oid, index)
                    else:
                        elapsed = await _ws_leg(rest, ws, oid, index)
                    if index >= 4:
                        samples[variant].append(elapsed)
            await ws.close()
    finally:
        sim.terminate()
        sim.wait(10)
    label = f"{latency_ms:g} ms each way"
    return [LatencySummary.from_ns(name, f"leg, {label}", values) for name, values in samples.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_legs", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="orders per variant and latency")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 5.0])
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    rows: list[LatencySummary] = []
    for latency_ms in args.latency_ms:
        rows.extend(asyncio.run(_measure(args.orders, latency_ms)))
    print(markdown_table(rows))
    if args.json:
        document: dict[str, Any] = {"host": host_info(), "orders": args.orders,
                                    "results": [row.to_dict() for row in rows]}
        write_json(args.json, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
