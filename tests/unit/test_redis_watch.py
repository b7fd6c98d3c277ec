"""An unreachable Redis is an ERROR at the first failed ping and then once per 10 s, never per ping;
its return is logged once; the URL is logged without its password."""

from __future__ import annotations

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError

from supervisor import redis_watch
from supervisor.redis_watch import RedisWatch, safe_url


class _Redis:
    def __init__(self) -> None:
        self.up = False

    async def ping(self) -> bool:
        if not self.up:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        return True


async def test_errors_at_start_then_every_ten_seconds_then_says_it_is_back(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(redis_watch.time, "monotonic", lambda: clock[0])
    client = _Redis()
    watch = RedisWatch(client, "redis://user:hunter2@127.0.0.1:1/0")  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        for _ in range(25):  # 25 pings, one a second
            assert await watch.check() is False
            clock[0] += 1.0
        client.up = True
        assert await watch.check() is True
        assert await watch.check() is True
    errors = [entry for entry in logs if entry["event"] == "redis_unreachable"]
    assert len(errors) == 3 and all(entry["log_level"] == "error" for entry in errors)  # t=0, 10, 20
    assert errors[0]["redis_url"] == "redis://user:***@127.0.0.1:1/0" and "refused" in errors[0]["error"]
    assert [entry["event"] for entry in logs].count("redis_reachable") == 1


def test_safe_url_masks_only_the_password() -> None:
    assert safe_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert safe_url("rediss://:pw@host:6380/0") == "rediss://:***@host:6380/0"
