"""Every field of `trident:{reg}:config` that Trident reads, set to a value it cannot read as
meant, refuses signals `bad_config` with an ERROR naming the field and the value; fixing the
field admits again. A real supervisor (inline executor) on a real Redis and the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
import structlog

from shared.codec import encode_frame
from shared.store import keys
from shared.store.registry import Registry, config_problem
from sim.server import RunningSimulator
from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor, wait_until
from tools.send import send_frames

# (field, bad value): every flag, and the numeric fields of the acquire script
BAD = [
    ("paused", "yes"), ("halt", "true"), ("enforce_same_quote", "on"), ("enforce_pair", "2"),
    ("slots", "abc"), ("slots", "-1"), ("slots", "2.5"), ("slots", ""),
    ("cap:USDT", "1e3"), ("cap:USDT", "lots"), ("cap:USDT", "-5"), ("cap:usdt", "100"),
]


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v or 'empty'}" for f, v in BAD])
async def test_an_invalid_setting_refuses_bad_config_and_an_error_names_it(
    field: str, value: str, redis_url: str, simulator: RunningSimulator, redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    await redis_client.hset(keys.CONFIG, field, value)
    markets = await markets_of(simulator)
    settings = e2e_settings(redis_url, simulator.url, tmp_path, workers=0, metrics_port=0)
    with structlog.testing.capture_logs() as logs:
        async with running_supervisor(settings) as supervisor:
            frames = [encode_frame(fresh_signal(markets, i, f"cfg-{i}")) for i in range(2)]
            await send_frames(settings.socket_path, frames, progress=False)
            await supervisor.wait_frames(2, 10)
            assert supervisor.admission.refusals["bad_config"] == 2 and supervisor.admission.admitted == 0
            # fixed (a halt also left `paused 1` behind): the next signal is admitted
            await redis_client.hdel(keys.CONFIG, field, "paused")
            await wait_until(lambda: supervisor.admission.bad_config is None, 5)
            await send_frames(settings.socket_path, [encode_frame(fresh_signal(markets, 2, "cfg-ok"))],
                              progress=False)
            await supervisor.wait_frames(3, 10)
            assert supervisor.admission.admitted == 1
            await supervisor.wait_idle(10)
    invalid = [e for e in logs if e["event"] == "registry_config_invalid"]
    assert len(invalid) == 1 and invalid[0]["log_level"] == "error"
    assert (invalid[0]["field"], invalid[0]["value"]) == (field, value)
    alarms = [e for e in logs if e["event"] == "fleet_refusing_signals"]
    assert len(alarms) == 1 and alarms[0]["log_level"] == "error" and alarms[0]["reason"] == "bad_config"
    assert f'field {field} ' in alarms[0]["detail"] and f'"{value}"' in alarms[0]["detail"]
    assert any(e["event"] == "registry_config_valid" for e in logs)


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v or 'empty'}" for f, v in BAD])
async def test_ctl_config_names_the_invalid_field_too(field: str, value: str, redis_client: aioredis.Redis) -> None:
    await redis_client.hset(keys.CONFIG, field, value)
    with pytest.raises(ValueError, match=f'field {field} .*"{value}"'):
        await Registry(redis_client, owner="test").config()


def test_what_ctl_and_the_defaults_write_is_valid() -> None:
    assert config_problem({}) is None
    assert config_problem({"paused": "1", "halt": "0", "enforce_same_quote": "", "enforce_pair": "1",
                           "slots": "0", "cap:USDT": "150.5", "cap:BTC": "0.001"}) is None
