"""KuCoin's resource-pool rate limits: a quota per pool, refilled every window.

Each call deducts its weight from its pool; a call the pool cannot cover is refused (HTTP 429,
code 429000) and deducts nothing. Every answer carries the pool's state in the
`gw-ratelimit-limit`, `gw-ratelimit-remaining` and `gw-ratelimit-reset` (ms until the window
resets) headers. A window opens on the first call after the previous one ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.kucoin.constants import (
    RATE_LIMIT_LIMIT_HEADER,
    RATE_LIMIT_REMAINING_HEADER,
    RATE_LIMIT_RESET_HEADER,
)

__all__ = ["PoolState", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class PoolState:
    """A pool after (or without) a charge; `allowed` is False when the charge was refused."""

    limit: int
    remaining: int
    reset_ms: int
    allowed: bool = True

    def headers(self) -> dict[str, str]:
        return {
            RATE_LIMIT_LIMIT_HEADER: str(self.limit),
            RATE_LIMIT_REMAINING_HEADER: str(self.remaining),
            RATE_LIMIT_RESET_HEADER: str(self.reset_ms),
        }


class _Pool:
    __slots__ = ("limit", "remaining", "window_end_ns")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.remaining = limit
        self.window_end_ns = 0


class RateLimiter:
    """Fixed-window pools keyed by name (the `*_POOL` names of `shared.kucoin.constants`)."""

    __slots__ = ("_pools", "_window_ns")

    def __init__(self, limits: dict[str, int], window_ms: int) -> None:
        self._pools = {name: _Pool(limit) for name, limit in limits.items()}
        self._window_ns = window_ms * 1_000_000

    def charge(self, pool_name: str, weight: int) -> PoolState:
        """Deduct `weight` if the pool can cover it."""
        pool, now = self._current(pool_name)
        allowed = weight <= pool.remaining
        if allowed:
            pool.remaining -= weight
        return self._state(pool, now, allowed)

    def peek(self, pool_name: str) -> PoolState:
        """The pool's state without charging (for refusals decided before the charge)."""
        pool, now = self._current(pool_name)
        return self._state(pool, now, True)

    def reset(self) -> None:
        for pool in self._pools.values():
            pool.remaining = pool.limit
            pool.window_end_ns = 0

    def _current(self, pool_name: str) -> tuple[_Pool, int]:
        pool = self._pools[pool_name]
        now = time.monotonic_ns()
        if now >= pool.window_end_ns:
            pool.remaining = pool.limit
            pool.window_end_ns = now + self._window_ns
        return pool, now

    @staticmethod
    def _state(pool: _Pool, now_ns: int, allowed: bool) -> PoolState:
        reset_ms = -(-(pool.window_end_ns - now_ns) // 1_000_000)
        return PoolState(pool.limit, pool.remaining, reset_ms, allowed)
