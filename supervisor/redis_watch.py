"""Says out loud when the supervisor cannot reach Redis: an ERROR at start, then every 10 s.

Admission already fails closed without Redis (`registry_unavailable`), but a refusal is logged at
debug, so a supervisor started against a wrong or down Redis would otherwise look healthy in its
log. This loop pings Redis once a second; while pings fail it logs `redis_unreachable` at ERROR
(first failure, then at most once per `repeat_s`), and `redis_reachable` once when they succeed
again. The URL is logged without its password.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from shared.stopping import Stopping

__all__ = ["RedisWatch", "safe_url"]

log = structlog.get_logger(__name__)


def safe_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedisWatch:
    """`await check()` once at start, then `run()` as a background task."""

    def __init__(self, redis: aioredis.Redis, url: str, *, interval_s: float = 1.0, repeat_s: float = 10.0) -> None:
        self._redis = redis
        self._url = safe_url(url)
        self._interval_s = interval_s
        self._repeat_s = repeat_s
        self.reachable: bool | None = None  # None: not checked yet
        self._last_error_at = float("-inf")

    async def check(self) -> bool:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            now = time.monotonic()
            if self.reachable is not False or now - self._last_error_at >= self._repeat_s:
                self._last_error_at = now
                log.error("redis_unreachable", redis_url=self._url, error=str(exc) or type(exc).__name__,
                          effect="every signal is refused registry_unavailable until Redis answers")
            self.reachable = False
            return False
        if self.reachable is False:
            log.info("redis_reachable", redis_url=self._url)
        self.reachable = True
        return True

    async def run(self, stopping: Stopping) -> None:
        while await stopping.pause(self._interval_s):
            await self.check()
