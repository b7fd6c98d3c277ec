"""The simulator's own admin API under `/_sim/`, for steering it from another process.

Unsigned, never rate-limited or faulted, plain JSON (not KuCoin's envelope):

- `GET /_sim/knobs` → the knobs; `POST /_sim/knobs` with a partial knobs object (see
  `sim.knobs`) → the knobs after the change (400 with `{"error": ...}` if invalid).
- `GET /_sim/orders` → the order log, oldest first (see `sim.orderlog`).
- `GET /_sim/balances` → `{"USDT": {"balance": "...", "available": "...", "holds": "..."}, ...}`;
  `POST /_sim/balances` with `{"USDT": "1000", ...}` sets those currencies' available balance.
- `POST /_sim/reset` → books, balances, orders, log, rate pools and knobs back to the start.
- `GET /_sim/ws/knobs` / `POST /_sim/ws/knobs` → the private WebSocket's knobs (see
  `sim.knobs.WsKnobs`), like `/_sim/knobs`; `POST /_sim/ws/cut` → `{"cut": n}`, every
  WebSocket connection dropped at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sim.simulator import Simulator

__all__ = ["add_admin_routes", "ADMIN_PREFIX"]

ADMIN_PREFIX = "/_sim"


def add_admin_routes(app: web.Application, sim: Simulator) -> None:
    """Mount the admin endpoints on `app`."""

    async def get_knobs(_: web.Request) -> web.Response:
        return web.json_response(sim.knobs.to_dict())

    async def post_knobs(request: web.Request) -> web.Response:
        await _apply_json(request, sim.update_knobs)
        return web.json_response(sim.knobs.to_dict())

    async def get_orders(_: web.Request) -> web.Response:
        return web.json_response([entry.to_dict() for entry in sim.order_log.entries()])

    async def get_balances(_: web.Request) -> web.Response:
        return web.json_response({item["currency"]: {k: item[k] for k in ("balance", "available", "holds")}
                                  for item in sim.exchange.accounts()})

    async def post_balances(request: web.Request) -> web.Response:
        await _apply_json(request, sim.set_balances)
        return await get_balances(request)

    async def post_reset(_: web.Request) -> web.Response:
        sim.reset()
        return web.json_response({"reset": True})

    async def get_ws_knobs(_: web.Request) -> web.Response:
        return web.json_response(sim.ws_hub.knobs.to_dict())

    async def post_ws_knobs(request: web.Request) -> web.Response:
        await _apply_json(request, sim.ws_hub.update_knobs)
        return web.json_response(sim.ws_hub.knobs.to_dict())

    async def post_ws_cut(_: web.Request) -> web.Response:
        return web.json_response({"cut": sim.ws_hub.cut_connections()})

    app.router.add_get(f"{ADMIN_PREFIX}/knobs", get_knobs)
    app.router.add_post(f"{ADMIN_PREFIX}/knobs", post_knobs)
    app.router.add_get(f"{ADMIN_PREFIX}/orders", get_orders)
    app.router.add_get(f"{ADMIN_PREFIX}/balances", get_balances)
    app.router.add_post(f"{ADMIN_PREFIX}/balances", post_balances)
    app.router.add_post(f"{ADMIN_PREFIX}/reset", post_reset)
    app.router.add_get(f"{ADMIN_PREFIX}/ws/knobs", get_ws_knobs)
    app.router.add_post(f"{ADMIN_PREFIX}/ws/knobs", post_ws_knobs)
    app.router.add_post(f"{ADMIN_PREFIX}/ws/cut", post_ws_cut)


async def _apply_json(request: web.Request, apply: Callable[[dict[str, Any]], object]) -> None:
    """Hand the request's JSON object to `apply`; its ValueError becomes a 400 naming the reason."""
    changes = await _json_object(request)
    try:
        apply(changes)
    except ValueError as exc:
        raise _bad_request(str(exc)) from None


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        value = json.loads(await request.read())
    except ValueError:
        raise _bad_request("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise _bad_request("body must be a JSON object")
    return value


def _bad_request(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")
