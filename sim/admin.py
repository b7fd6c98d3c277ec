"""The simulator's own admin API under `/_sim/`, for steering it from another process.

Unsigned, never rate-limited or faulted, plain JSON (not KuCoin's envelope):

- `GET /_sim/knobs` → the knobs; `POST /_sim/knobs` with a partial knobs object (see
  `sim.knobs`) → the knobs after the change (400 with `{"error": ...}` if invalid).
- `GET /_sim/orders` → the order log, oldest first (see `sim.orderlog`).
- `GET /_sim/balances` → `{"USDT": {"balance": "...", "available": "...", "holds": "..."}, ...}`;
  `POST /_sim/balances` with `{"USDT": "1000", ...}` sets those currencies' available balance.
- `POST /_sim/reset` → books, balances, orders, log, rate pools and knobs back to the start.
"""

from __future__ import annotations

import json
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
        changes = await _json_object(request)
        try:
            sim.update_knobs(changes)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return web.json_response(sim.knobs.to_dict())

    async def get_orders(_: web.Request) -> web.Response:
        return web.json_response([entry.to_dict() for entry in sim.order_log.entries()])

    async def get_balances(_: web.Request) -> web.Response:
        return web.json_response({item["currency"]: {k: item[k] for k in ("balance", "available", "holds")}
                                  for item in sim.exchange.accounts()})

    async def post_balances(request: web.Request) -> web.Response:
        amounts = await _json_object(request)
        try:
            sim.set_balances(amounts)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return await get_balances(request)

    async def post_reset(_: web.Request) -> web.Response:
        sim.reset()
        return web.json_response({"reset": True})

    app.router.add_get(f"{ADMIN_PREFIX}/knobs", get_knobs)
    app.router.add_post(f"{ADMIN_PREFIX}/knobs", post_knobs)
    app.router.add_get(f"{ADMIN_PREFIX}/orders", get_orders)
    app.router.add_get(f"{ADMIN_PREFIX}/balances", get_balances)
    app.router.add_post(f"{ADMIN_PREFIX}/balances", post_balances)
    app.router.add_post(f"{ADMIN_PREFIX}/reset", post_reset)


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
