"""The exchange rate budget, shared by every supervisor and worker of the fleet, in Redis.

KuCoin meters an account's private trading calls in one resource pool (Spot: 4000 weight per
30 s window at VIP0; an HF order place or test weighs 1), whichever process or host makes them,
so a per-process limiter would let N workers spend N times the pool. The budget is one hash in
the registry's hash tag, changed only by Lua:

- the take (``lua/budget.lua``, merged into the registry's acquire script) — the supervisor
  reserves a triangle's weight in the same EVALSHA that grants its lease (after the isolation
  checks, so their refusals cost no weight); when the window cannot cover it the signal is
  refused with reason ``rate_budget`` instead of provoking 429s.
- ``observe(limit, remaining, reset_ms)`` — workers report the ``gw-ratelimit-*`` headers of
  their latest answer, so the budget follows the exchange's own count: calls made outside
  Trident, a smaller VIP pool, or a window that opened at another moment than ours.

The bucket is refilled whole when its window ends (KuCoin's pools are fixed windows; see
lua/budget.lua for why not a continuous refill). ``rate_budget_limit`` caps what the
fleet may spend per window even when the exchange would allow more (room for other clients of
the same account). Hash ``trident:{reg}:rate_budget``: ``limit``, ``remaining``,
``window_end_ms`` (Redis server clock), readable with ``redis-cli HGETALL``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from shared.kucoin.constants import GET_ORDER, GET_ORDER_BY_CLIENT_OID, PLACE_ORDER_SYNC
from shared.store import keys

__all__ = ["ORDER_WEIGHT", "TAKE_LUA", "TRIANGLE_WEIGHT", "LIVE_TRIANGLE_WEIGHT", "BudgetAnswer", "RateBudget"]

ORDER_WEIGHT = 1  # POST /api/v1/hf/orders, /hf/orders/test and /hf/orders/sync
TRIANGLE_WEIGHT = 3 * ORDER_WEIGHT  # paper: one order test per leg
# Live: what one triangle may spend, reserved whole at admission whatever the strategy — per leg
# the place and the order query, plus headroom for one unknown placement resolved by clientOid,
# one leg retried after a balance wait, and two unwinds (each a place and a query).
_LIVE_LEG_WEIGHT = PLACE_ORDER_SYNC.weight + GET_ORDER.weight
LIVE_TRIANGLE_WEIGHT = 3 * _LIVE_LEG_WEIGHT + GET_ORDER_BY_CLIENT_OID.weight + PLACE_ORDER_SYNC.weight \
    + 2 * _LIVE_LEG_WEIGHT

_LUA_DIR = Path(__file__).with_name("lua")
BUDGET_LUA = (_LUA_DIR / "budget.lua").read_text()  # the take, merged into acquire.lua
_OBSERVE_LUA = (_LUA_DIR / "ratebudget_observe.lua").read_text()
# The same take on its own, on Redis's clock, for calls no acquire pays for (reconciliation).
TAKE_LUA = BUDGET_LUA + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local granted, remaining, reset_ms = budget_take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), now)
return {granted, remaining, reset_ms}
"""

# KEYS[1]: the budget hash; ARGV[1]: the configured limit. {limit, remaining or false once the
# window is over (or never began)}, on Redis's clock.
_REMAINING_LUA = """
local state = redis.call('HMGET', KEYS[1], 'limit', 'remaining', 'window_end_ms')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = state[1] or ARGV[1]
if not state[2] or not state[3] or tonumber(state[3]) <= now then return {limit, false} end
return {limit, state[2]}
"""


@dataclass(frozen=True, slots=True)
class BudgetAnswer:
    """What a take (inside acquire) or an observation left: weight still available, and ms until the refill.

    `granted`: the take was covered; for an observation, that it was applied (False: a late
    header from an earlier window, ignored).
    """

    granted: bool
    remaining: int
    reset_ms: int


class RateBudget:
    """Async client of the budget scripts; one per process.

    A refused take also remembers locally until when the window is spent, so a supervisor
    flooded with signals refuses them without a Redis round trip each (`exhausted()`); the
    window can only end later than that, never earlier, so the shortcut never admits wrongly.
    """

    __slots__ = ("_redis", "_limit", "_window_ms", "_observe", "_take", "_remaining", "_exhausted_until_ns")

    def __init__(self, redis: aioredis.Redis, *, limit: int, window_ms: int) -> None:
        if limit < 1 or window_ms < 1:
            raise ValueError(f"limit and window_ms must be >= 1, got {limit}, {window_ms}")
        self._redis = redis
        self._limit = limit
        self._window_ms = window_ms
        self._observe = redis.register_script(_OBSERVE_LUA)
        self._take = redis.register_script(TAKE_LUA)
        self._remaining = redis.register_script(_REMAINING_LUA)
        self._exhausted_until_ns = 0

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def window_ms(self) -> int:
        return self._window_ms

    def note_refused(self, reset_ms: int) -> None:
        """A take was refused (here or inside the acquire script): skip Redis until the refill."""
        self._exhausted_until_ns = time.monotonic_ns() + int(reset_ms) * 1_000_000

    def exhausted(self) -> bool:
        """True while a take was refused and its window has not ended (no Redis call)."""
        return time.monotonic_ns() < self._exhausted_until_ns

    async def remaining_now(self) -> int:
        """Weight left in the current window, fleet-wide (the whole limit once the window ended).

        One script on the budget's own key, so the window's end is compared with the clock of
        the Redis that wrote it (also on a cluster, where a pipelined TIME has no node to go to).
        """
        limit, remaining = await self._remaining([keys.RATE_BUDGET], (self._limit,))
        return int(remaining) if remaining is not None else int(limit)

    async def take(self, weight: int) -> bool:
        """Take `weight` outside an acquire (reconciliation's order queries); False: the window is spent."""
        granted, _, reset_ms = await self._take([keys.RATE_BUDGET], (weight, self._limit, self._window_ms))
        if not granted:
            self.note_refused(int(reset_ms))
        return granted == 1

    async def observe(self, limit: int, remaining: int, reset_ms: int) -> BudgetAnswer:
        """Correct the budget with the exchange's `gw-ratelimit-*` values (reset_ms relative to now)."""
        args = (max(limit, 0), max(remaining, 0), max(reset_ms, 0), self._limit, self._window_ms)
        applied, remaining_after, reset_after = await self._observe([keys.RATE_BUDGET], args)
        return BudgetAnswer(applied == 1, int(remaining_after), int(reset_after))
