"""The registry's config reader and writer and its request checks, on fakeredis (no Lua runs).

What acquire does with that config is the scripts' business: tests/system/test_registry.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.store import keys
from shared.store.registry import LeaseRequest, Registry, RegistryConfig

TRI_A = ("BTC-USDT", "ETH-BTC", "ETH-USDT")


@pytest.fixture
def registry(fake_redis) -> Registry:
    return Registry(fake_redis, owner="host-1:42", ttl_ms=10_000)


def request(lease_id: str, pairs: tuple[str, ...] = TRI_A) -> LeaseRequest:
    return LeaseRequest(lease_id=lease_id, triangle_id="/".join(pairs), quote="USDT", pairs=pairs,
                        notional=Decimal("10"), book_ts_ms=0)


async def test_config_defaults_round_trip_and_cap_removal(registry: Registry) -> None:
    assert await registry.config() == RegistryConfig(paused=False, slots=4, enforce_same_quote=False,
                                                     enforce_pair=True, caps={})
    await registry.set_config(paused=True, slots=3, enforce_same_quote=True, enforce_pair=False,
                              caps={"USDT": Decimal("1000.25"), "BTC": Decimal("2")})
    assert await registry.config() == RegistryConfig(paused=True, slots=3, enforce_same_quote=True, enforce_pair=False,
                                                     caps={"USDT": Decimal("1000.25"), "BTC": Decimal("2")})
    await registry.set_config(caps={"BTC": None})
    assert (await registry.config()).caps == {"USDT": Decimal("1000.25")}


async def test_flags_written_by_hand_read_as_the_scripts_read_them(registry: Registry, fake_redis) -> None:
    await fake_redis.hset(keys.CONFIG, mapping={"paused": "1", "enforce_pair": "0", "enforce_same_quote": ""})
    config = await registry.config()
    assert (config.paused, config.enforce_pair, config.enforce_same_quote) == (True, False, False)
    await fake_redis.hset(keys.CONFIG, "paused", "yes")  # not a flag: a mistake, named (bad_config)
    with pytest.raises(ValueError, match='field paused .*"yes"'):
        await registry.config()


@pytest.mark.parametrize(("field", "value"), [("slots", "lots"), ("cap:USDT", "1e3"), ("cap:USDT", "-1")])
async def test_malformed_config_is_a_named_error(registry: Registry, fake_redis, field: str, value: str) -> None:
    await fake_redis.hset(keys.CONFIG, field, value)
    with pytest.raises(ValueError, match=field):
        await registry.config()


async def test_set_config_rejects_bad_fields(registry: Registry) -> None:
    with pytest.raises(TypeError):
        await registry.set_config(slot=3)
    with pytest.raises(TypeError):
        await registry.set_config(paused=1)
    with pytest.raises(ValueError):
        await registry.set_config(slots=-1)
    with pytest.raises(ValueError):
        await registry.set_config(caps={"USDT": Decimal("-1")})
    assert await registry.config() == RegistryConfig(False, 4, False, True, {})


def test_lease_request_rejects_values_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError):
        request("a,b")
    with pytest.raises(ValueError):
        request("a", ("BTC-USDT", "ETH,BTC", "ETH-USDT"))
    with pytest.raises(ValueError):
        request("")
