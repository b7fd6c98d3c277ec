"""This process's wall clock, and its estimate of the Redis server's clock.

Why: supervisors and workers run on several hosts whose clocks disagree. Wherever a time written
on one host is compared with a time taken on another, the comparison runs on Redis's clock:
inside the Lua scripts (``redis.call('TIME')``: lease expiry, a triangle's last trade, the rate
budget window) or, where Python compares, against `redis_ms()`: this host's clock corrected by
the offset to Redis ``TIME`` that the status loop measures every second.

`set_skew` is a test hook (setting ``clock_skew_ms``): it shifts this process's wall clock, as
on a host whose clock is off, so a test can prove nothing that matters reads it.
"""

from __future__ import annotations

import time

__all__ = ["set_skew", "wall_ms", "learn_redis_offset", "redis_ms"]

_skew_ms = 0
_offset_ms = 0  # Redis TIME minus this process's wall clock, as last measured


def set_skew(skew_ms: int) -> None:
    global _skew_ms
    _skew_ms = skew_ms


def wall_ms() -> int:
    """This host's clock in epoch ms (shifted by the test hook): for times people read, never compared across hosts."""
    return int(time.time() * 1000) + _skew_ms


def learn_redis_offset(redis_now_ms: int, sent_ms: int, answered_ms: int) -> None:
    """Record Redis's clock as read between `sent_ms` and `answered_ms` of this clock (the midpoint)."""
    global _offset_ms
    _offset_ms = redis_now_ms - (sent_ms + answered_ms) // 2


def redis_ms() -> int:
    """Redis's clock as this process estimates it (within a round trip of the last measure)."""
    return wall_ms() + _offset_ms
