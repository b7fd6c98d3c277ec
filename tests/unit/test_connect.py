"""`connect(settings, role)`: the service's clients are bounded on every command, a tool's only on connect."""

from __future__ import annotations

import pytest

from shared.settings import load_settings
from shared.store.connect import connect


@pytest.mark.parametrize(("role", "reply_timeout"), [("supervisor", 1.5), ("worker", 1.5), ("tool", None)])
async def test_each_role_gets_its_timeouts(role: str, reply_timeout: float | None) -> None:
    settings = load_settings(env={}, redis_url="redis://127.0.0.1:6390/3", redis_timeout_s=1.5)
    client = connect(settings, role)  # type: ignore[arg-type]
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1.5, reply_timeout)
        assert (kwargs["port"], kwargs["db"]) == (6390, 3)
    finally:
        await client.aclose()


def test_an_unknown_role_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown Redis client role 'admin'"):
        connect(load_settings(env={}), "admin")  # type: ignore[arg-type]
