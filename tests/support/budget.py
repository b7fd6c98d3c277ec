"""Test access to the rate budget's take and stored state.

Production takes a triangle's weight inside the acquire script (``budget.lua`` merged into
``acquire.lua``), so `RateBudget` has no take of its own; these tests drive the same
``budget_take`` function through a one-line script to check its arithmetic and read the hash
as `redis-cli HGETALL` would.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from shared.store import keys
from shared.store.ratebudget import BUDGET_LUA, BudgetAnswer, RateBudget

_TAKE = BUDGET_LUA + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local granted, remaining, reset_ms = budget_take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), now)
return {granted, remaining, reset_ms}
"""


async def take(client: aioredis.Redis, budget: RateBudget, weight: int) -> BudgetAnswer:
    """Reserve `weight` as acquire does (a refusal is noted locally, as admission does)."""
    granted, remaining, reset_ms = await client.register_script(_TAKE)(
        [keys.RATE_BUDGET], (weight, budget.limit, budget.window_ms))
    if not granted:
        budget.note_refused(int(reset_ms))
    return BudgetAnswer(granted == 1, int(remaining), int(reset_ms))


@dataclass(frozen=True, slots=True)
class StoredBudget:
    limit: int
    remaining: int
    window_end_ms: int


async def stored(client: aioredis.Redis, budget: RateBudget) -> StoredBudget:
    """The stored budget (an absent hash reads as a full window that has not begun)."""
    raw = await client.hmget(keys.RATE_BUDGET, "limit", "remaining", "window_end_ms")
    limit = int(raw[0]) if raw[0] is not None else budget.limit
    remaining = int(raw[1]) if raw[1] is not None else limit
    return StoredBudget(limit, remaining, int(raw[2]) if raw[2] is not None else 0)
