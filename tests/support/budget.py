"""Test access to the rate budget's take and stored state.

Production takes a triangle's weight inside the acquire script (``budget.lua`` merged into
``acquire.lua``); these tests drive the same ``budget_take`` through `TAKE_LUA` (what
`RateBudget.take` runs) to see its full answer, and read the hash as `redis-cli HGETALL` would.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from shared.store import keys
from shared.store.ratebudget import TAKE_LUA, BudgetAnswer, RateBudget


async def take(client: aioredis.Redis, budget: RateBudget, weight: int) -> BudgetAnswer:
    """Reserve `weight` as acquire does (a refusal is noted locally, as admission does)."""
    granted, remaining, reset_ms = await client.register_script(TAKE_LUA)(
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
