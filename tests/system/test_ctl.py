"""`trident ctl`, run as the operator runs it (a separate process), against a running supervisor."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.codec import encode_frame
from sim.server import RunningSimulator
from supervisor.app import Supervisor
from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor
from tools.send import send_frames
from tools.synthetic import restamped


async def ctl(redis_url: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.cli", "ctl", "--redis-url", redis_url, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


@pytest.fixture
async def trident(redis_url: str, simulator: RunningSimulator) -> AsyncIterator[Supervisor]:
    settings = e2e_settings(redis_url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-ctl-")), workers=1,
                            metrics_port=0)
    async with running_supervisor(settings) as supervisor:
        yield supervisor


async def send(supervisor: Supervisor, markets: dict, *signals: tuple[int, str]) -> None:
    before = supervisor.frames
    frames = [encode_frame(restamped(fresh_signal(markets, index, cid))) for index, cid in signals]
    await send_frames(supervisor.settings.socket_path, frames, progress=False)
    await supervisor.wait_frames(before + len(signals), 10)


async def test_status_and_check_show_the_fleet_and_the_settings_commands_write_the_config(
    trident: Supervisor, redis_url: str, redis_client
) -> None:
    async with asyncio.timeout(5):  # the worker's first health line comes with its first second
        while not await redis_client.exists(f"trident:health:{trident.name}:w0"):
            await asyncio.sleep(0.05)
    code, out = await ctl(redis_url, "status")
    assert code == 0 and f"{trident.name}" in out and "1/1" in out and "w0: " in out and "pid=" in out, out
    code, out = await ctl(redis_url, "status", "--json")
    fleet = json.loads(out)
    assert [m["name"] for m in fleet["supervisors"]] == [trident.name] and fleet["in_flight"] == 0
    assert fleet["supervisors"][0]["status"]["workers_alive"] == "1"
    assert await ctl(redis_url, "check") == (0, "OK: 1 supervisor(s), 1 worker(s) alive\n")
    code, out = await ctl(redis_url, "check", "--min-supervisors", "2")
    assert code == 1 and out.startswith("CRITICAL: 1 live supervisor(s)")
    assert (await ctl(redis_url, "check", "--host", "no-such-host"))[0] == 1

    for args in (["slots", "3"], ["same-quote", "on"], ["pair-isolation", "off"], ["cap", "USDT", "150.5"]):
        assert (await ctl(redis_url, *args))[0] == 0
    config = {k.decode(): v.decode() for k, v in (await redis_client.hgetall("trident:{reg}:config")).items()}
    assert config == {"slots": "3", "enforce_same_quote": "1", "enforce_pair": "0", "cap:USDT": "150.5"}
    code, out = await ctl(redis_url, "cap", "USDT", "none")
    assert code == 0 and "caps: none" in out and "slots=3 same-quote=on pair-isolation=off" in out
    for bad in (["slots", "-1"], ["cap", "USDT", "lots"], ["same-quote", "maybe"]):
        assert (await ctl(redis_url, *bad))[0] == 2, bad
    assert await redis_client.hget("trident:{reg}:config", "slots") == b"3"  # unchanged by the refused ones

    code, out = await ctl(redis_url, "pause")
    assert code == 0 and "paused=yes" in out
    await trident.control.refresh()
    assert trident.admission.paused
    code, out = await ctl(redis_url, "resume")
    assert code == 0 and "paused=no halted=no" in out


async def test_cancel_inflight_reports_and_halt(
    trident: Supervisor, simulator: RunningSimulator, redis_url: str
) -> None:
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=2500)  # a paper execution checks for cancel once its order tests answer
    await send(trident, markets, (0, "c-1"), (8, "c-2"))
    code, out = await ctl(redis_url, "inflight")
    assert code == 0 and "c-1" in out and "c-2" in out and trident.name in out, out
    code, out = await ctl(redis_url, "cancel", "c-1")
    assert (code, out.strip()) == (0, "cancel of c-1 delivered; it ended aborted (cancelled)")
    not_in_flight = "c-ghost is not in flight (finished already, or never admitted)\n"
    assert await ctl(redis_url, "cancel", "c-ghost") == (1, not_in_flight)
    await trident.wait_idle(5)
    await send(trident, markets, (0, "c-3"), (8, "c-4"))
    code, out = await ctl(redis_url, "halt")
    assert code == 0 and out.strip().endswith("halted: nothing in flight"), out
    await trident.wait_idle(5)
    code, out = await ctl(redis_url, "reports", "-n", "5")
    rows = {tuple(row.split()[1:3]) for row in out.splitlines()[1:]}
    assert code == 0 and rows == {("c-1", "aborted"), ("c-2", "filled"), ("c-3", "aborted"), ("c-4", "aborted")}, out
    assert (await ctl(redis_url, "inflight")) == (0, "nothing in flight\n")


async def test_reports_and_cancel_read_the_configured_report_stream(
    redis_url: str, simulator: RunningSimulator, redis_client, tmp_path: Path
) -> None:
    stream = "ops:trident-reports"
    config = tmp_path / "trident.toml"
    config.write_text(f'report_stream = "{stream}"\n')
    settings = e2e_settings(redis_url, simulator.url, tmp_path, workers=1, report_stream=stream)
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=2500)  # keeps the execution in flight until the cancel lands
    async with running_supervisor(settings) as supervisor:
        await send(supervisor, markets, (0, "s-1"))
        code, out = await ctl(redis_url, "--config", str(config), "cancel", "s-1")
        assert (code, out.strip()) == (0, "cancel of s-1 delivered; it ended aborted (cancelled)"), out
        await supervisor.wait_idle(5)
    code, out = await ctl(redis_url, "--config", str(config), "reports")
    assert code == 0 and [tuple(row.split()[1:3]) for row in out.splitlines()[1:]] == [("s-1", "aborted")], out
    assert await redis_client.exists("trident:reports") == 0  # nothing went to the default stream
    assert await ctl(redis_url, "reports") == (0, "no reports yet\n")


async def test_check_fails_without_supervisors_or_without_redis(redis_url: str, tmp_path: Path) -> None:
    code, out = await ctl(redis_url, "check")
    assert (code, out) == (1, "CRITICAL: 0 live supervisor(s), expected at least 1\n")
    nowhere = f"unix://{tmp_path}/no-redis.sock"
    assert (await ctl(nowhere, "check"))[0] == 1
    assert (await ctl(nowhere, "status"))[0] == 2
