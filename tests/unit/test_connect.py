"""`connect(settings, role)`: the service's clients are bounded on every command, a tool's only on connect."""

from __future__ import annotations

import pytest

from shared.settings import load_settings
from shared.store.connect import SentinelAddress, connect, parse_sentinel_url


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


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_db() -> None:
    address = parse_sentinel_url("redis+sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380/trident/2?sentinel_password=x")
    assert address == SentinelAddress(sentinels=(("10.0.0.1", 26379), ("::1", 26380)), master="trident", db=2,
                                      password="s@cret", sentinel_password="x")
    assert parse_sentinel_url("redis+sentinel://h:1/m").db == 0
    settings = load_settings(env={}, redis_url="redis+sentinel://:pw@h:1/m?sentinel_password=spw")
    assert set(settings.secrets()) == {"pw", "spw"}  # both scrubbed from logs


@pytest.mark.parametrize("url", ["redis+sentinel://h/m", "redis+sentinel://h:1", "redis+sentinel://h:1/m/x",
                                 "redis+sentinel://h:99999/m"])
def test_a_bad_sentinel_url_is_one_clear_error(url: str) -> None:
    with pytest.raises(ValueError, match="redis_url"):  # settings refuse it, or connect() does
        connect(load_settings(env={}, redis_url=url), "tool")


async def test_a_sentinel_client_asks_for_the_primary_with_the_role_timeouts() -> None:
    settings = load_settings(env={}, redis_url="redis+sentinel://127.0.0.1:26379/trident/3", redis_timeout_s=1.5)
    client = connect(settings, "worker")
    try:
        pool = client.connection_pool
        assert (pool.service_name, pool.connection_kwargs["db"], pool.connection_kwargs["socket_timeout"]) == (
            "trident", 3, 1.5)
    finally:
        await client.aclose()
