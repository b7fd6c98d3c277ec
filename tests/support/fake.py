"""fakeredis for the unit layer: code that needs Redis' data types, not its Lua, streams under
load, crashes or failover (those stay in tests/system against a real redis-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest

__all__ = ["fake_redis", "fake_server"]


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    """One in-memory server per test; every client made on it sees the same data."""
    return fakeredis.FakeServer()


@pytest.fixture
async def fake_redis(fake_server: fakeredis.FakeServer) -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis(server=fake_server)
    yield client
    await client.aclose()
