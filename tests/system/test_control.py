"""Every redis-cli command of the README's operator cheat-sheet, typed as written, against a running Trident.

The commands run through bash with the real redis-cli binary (a wrapper on PATH only adds the
test Redis's socket), while a supervisor with a real worker process and the simulator run; each
test asserts the command's effect on what Trident then does.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.codec import encode_frame
from shared.store.registry import Grant, LeaseRequest, Registry
from sim.server import RunningSimulator
from supervisor.app import Supervisor
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
    wait_until,
)
from tools.embedded_redis import EmbeddedRedis
from tools.send import send_frames
from tools.synthetic import restamped

README = Path(__file__).resolve().parents[2] / "README.md"
# Triangles of the simulator's markets (find_triangles order): 0 = ADA-USDT/ADA-BTC/BTC-USDT,
# 2 = BTC-USDT/ETH-BTC/ETH-USDT (shares BTC-USDT with 0), 8 = ETH-USDT/KCS-ETH/KCS-USDT
# (shares no pair with 0), 4 = BTC-USDT/LTC-BTC/LTC-USDT. All are USDT-quoted, 100 USDT each.
ADA, ETH_BTC, KCS_ETH, LTC = 0, 2, 8, 4


def cheatsheet_commands() -> list[str]:
    """The redis-cli lines of the README's cheat-sheet code block, comments stripped."""
    section = README.read_text().split("## Operator cheat-sheet", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line.split(" #", 1)[0].rstrip() for line in block.splitlines() if line.startswith("redis-cli ")]


CHEATSHEET = cheatsheet_commands()
STEER = {
    "pause": "redis-cli HSET 'trident:{reg}:config' paused 1",
    "resume": "redis-cli HSET 'trident:{reg}:config' paused 0 halt 0",
    "slots": "redis-cli HSET 'trident:{reg}:config' slots 2",
    "same_quote_on": "redis-cli HSET 'trident:{reg}:config' enforce_same_quote 1",
    "same_quote_off": "redis-cli HSET 'trident:{reg}:config' enforce_same_quote 0",
    "pair_off": "redis-cli HSET 'trident:{reg}:config' enforce_pair 0",
    "pair_on": "redis-cli HSET 'trident:{reg}:config' enforce_pair 1",
    "cap": "redis-cli HSET 'trident:{reg}:config' cap:USDT 150",
    "uncap": "redis-cli HDEL 'trident:{reg}:config' cap:USDT",
    "parallel": "redis-cli HSET 'trident:{reg}:config' live_strategy parallel",
    "target": "redis-cli HSET 'trident:{reg}:config' target:BTC 0.5",
    "untarget": "redis-cli HDEL 'trident:{reg}:config' target:BTC",
    "halt": "redis-cli HSET 'trident:{reg}:config' paused 1 halt 1",
    "cancel": "redis-cli HSET 'trident:{reg}:cancel' <correlation_id> 1",
}
LOOK = {
    "config": "redis-cli HGETALL 'trident:{reg}:config'",
    "lease_data": "redis-cli HGETALL 'trident:{reg}:lease_data'",
    "leases": "redis-cli ZRANGE 'trident:{reg}:leases' 0 -1 WITHSCORES",
    "capital": "redis-cli HGETALL 'trident:{reg}:capital'",
    "inventory_claimed": "redis-cli HGETALL 'trident:{reg}:inventory_claimed'",
    "inventory": "redis-cli HGETALL 'trident:{reg}:inventory'",
    "cancels": "redis-cli HGETALL 'trident:{reg}:cancel'",
    "reports": "redis-cli XREVRANGE trident:reports + - COUNT 10",
    "xlen": "redis-cli XLEN trident:reports",
    "refusals": "redis-cli HGETALL trident:refusals",
    "refusals_log": "redis-cli XREVRANGE trident:refusals:log + - COUNT 10",
    "fleet": "redis-cli ZRANGE trident:fleet 0 -1 WITHSCORES",
    "status": "redis-cli HGETALL trident:status:<host>:<pid>",
    "health_scan": "redis-cli --scan --pattern 'trident:health:*'",
    "health": "redis-cli GET trident:health:<host>:<pid>:w0",
    "rollup": "redis-cli XREVRANGE trident:reports:1m + - COUNT 5",
    "rollup_leader": "redis-cli GET trident:rollup:leader",
}

Cli = Callable[..., Awaitable[str]]


def find_redis_cli() -> str:
    from tools.embedded_redis import find_redis_server

    found = shutil.which("redis-cli") or str(Path(find_redis_server()).with_name("redis-cli"))
    assert Path(found).exists(), "no redis-cli binary"
    return found


@pytest.fixture
def cli(redis_url: str, redis_server: EmbeddedRedis, tmp_path: Path) -> Cli:
    """Run one cheat-sheet line, exactly as typed, with placeholders filled in; returns stdout."""
    wrapper = tmp_path / "bin" / "redis-cli"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{find_redis_cli()}" -s "{redis_server.socket_path}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{wrapper.parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    async def run(line: str, **placeholders: str) -> str:
        assert line in CHEATSHEET, f"not in the README cheat-sheet: {line}"
        for name, value in placeholders.items():
            line = line.replace(f"<{name}>", value)
        assert "<" not in line, line
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", line, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0 and not err, (line, err)
        return out.decode()

    return run


@pytest.fixture
async def trident(redis_url: str, simulator: RunningSimulator) -> AsyncIterator[Supervisor]:
    workdir = Path(tempfile.mkdtemp(prefix="tri-ctl-"))
    settings = e2e_settings(redis_url, simulator.url, workdir, workers=1, metrics_port=0)
    async with running_supervisor(settings) as supervisor:
        yield supervisor
    shutil.rmtree(workdir, ignore_errors=True)


async def send(supervisor: Supervisor, markets: dict, *signals: tuple[int, str]) -> None:
    """Send fresh signals (triangle index, correlation id) and wait until each is admitted or refused."""
    before = supervisor.frames
    frames = [encode_frame(restamped(fresh_signal(markets, index, cid))) for index, cid in signals]
    await send_frames(supervisor.settings.socket_path, frames, progress=False)
    await supervisor.wait_frames(before + len(signals), 10)


def pairs(output: str) -> dict[str, str]:
    """redis-cli's piped output of HGETALL (or ZRANGE … WITHSCORES): alternate lines."""
    lines = output.splitlines()
    return dict(zip(lines[::2], lines[1::2]))


def test_the_cheatsheet_is_fully_exercised() -> None:
    assert sorted(CHEATSHEET) == sorted([*STEER.values(), *LOOK.values()])


async def test_parallel_strategy_and_targets_from_redis_cli_bind_the_registry(redis_client: Any, cli: Cli) -> None:
    registry = Registry(redis_client, owner="test")
    want = LeaseRequest(lease_id="inv-1", triangle_id="T", quote="USDT", pairs=("BTC-USDT", "ETH-BTC", "ETH-USDT"),
                        notional=Decimal("100"), book_ts_ms=0, spends=(("BTC", Decimal("0.4")),))
    await cli(STEER["parallel"])
    refused = await registry.acquire(want)
    assert refused.reason == "no_inventory"  # parallel, and no BTC target: nothing may be spent
    await cli(STEER["target"])
    assert (await registry.config()).targets == {"BTC": Decimal("0.5")}
    grant = await registry.acquire(want)
    assert isinstance(grant, Grant) and grant.strategy == "parallel"
    assert pairs(await cli(LOOK["inventory_claimed"])) == {"BTC": "0.4"}
    assert pairs(await cli(LOOK["inventory"])) == {}  # no live worker has published its view
    assert await registry.release("inv-1", grant.token, outcome="filled")
    assert pairs(await cli(LOOK["inventory_claimed"])) == {}
    await cli(STEER["untarget"])
    assert (await registry.config()).targets == {}


async def test_pause_admits_nothing_then_resume_and_a_new_slot_limit_hold(
    trident: Supervisor, simulator: RunningSimulator, cli: Cli
) -> None:
    markets = await markets_of(simulator)
    await cli(STEER["pause"])
    await wait_until(lambda: trident.admission.paused, 2)  # the control loop picks it up by itself
    await send(trident, markets, (ADA, "p-1"), (KCS_ETH, "p-2"))
    assert (trident.admission.admitted, trident.admission.refusals["paused"]) == (0, 2)
    assert await cli(LOOK["xlen"]) == "0\n"
    async with asyncio.timeout(3):  # each supervisor adds its refusals to the fleet's tally every second
        while pairs(await cli(LOOK["refusals"])) != {"paused": "2"}:
            await asyncio.sleep(0.05)
    async with asyncio.timeout(3):  # the refusal trail is written off the admission path, in batches
        while not {"p-1", "p-2"} <= set((await cli(LOOK["refusals_log"])).split()):
            await asyncio.sleep(0.05)

    await cli(STEER["resume"])
    await cli(STEER["pair_off"])  # so that slots, not shared pairs, are what refuses below
    await cli(STEER["slots"])
    assert pairs(await cli(LOOK["config"])) == {"paused": "0", "halt": "0", "enforce_pair": "0", "slots": "2"}
    await wait_until(lambda: not trident.admission.paused, 2)
    simulator.sim.update_knobs(latency_ms=400)  # executions overlap
    # three distinct triangles sharing BTC-USDT: the default of 4 slots would take all three
    await send(trident, markets, (ADA, "s-1"), (ETH_BTC, "s-2"), (LTC, "s-3"))
    assert (trident.admission.admitted, trident.admission.refusals["no_slot"]) == (2, 1)
    assert sorted(pairs(await cli(LOOK["leases"]))) == ["s-1", "s-2"]
    await trident.wait_idle(10)
    statuses = {r.correlation_id: r.status for r in await stream_reports(trident.settings.redis_url)}
    assert statuses == {"s-1": "filled", "s-2": "filled"}
    assert await cli(LOOK["xlen"]) == "2\n"


async def test_isolation_toggles_and_capital_cap_hold(
    trident: Supervisor, simulator: RunningSimulator, cli: Cli
) -> None:
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=300)

    async def pair_of_signals(first: int, second: int, tag: str) -> dict[str, int]:
        before = dict(trident.admission.refusals)
        admitted = trident.admission.admitted
        await send(trident, markets, (first, f"{tag}-a"), (second, f"{tag}-b"))
        in_flight = pairs(await cli(LOOK["capital"]))
        await trident.wait_idle(10)
        refused = {k: v - before.get(k, 0) for k, v in trident.admission.refusals.items() if v != before.get(k, 0)}
        return {"admitted": trident.admission.admitted - admitted, **refused, "capital": in_flight}

    # ADA and KCS-ETH share no pair, only the USDT quote
    await cli(STEER["same_quote_on"])
    assert await pair_of_signals(ADA, KCS_ETH, "q1") == {"admitted": 1, "quote_busy": 1, "capital": {"USDT": "100"}}
    await cli(STEER["same_quote_off"])
    assert await pair_of_signals(ADA, KCS_ETH, "q0") == {"admitted": 2, "capital": {"USDT": "200"}}
    # ADA and ETH-BTC share BTC-USDT
    await cli(STEER["pair_on"])
    assert await pair_of_signals(ADA, ETH_BTC, "p1") == {"admitted": 1, "pair_busy": 1, "capital": {"USDT": "100"}}
    await cli(STEER["pair_off"])
    assert await pair_of_signals(ADA, ETH_BTC, "p0") == {"admitted": 2, "capital": {"USDT": "200"}}
    # 100 + 100 > 150
    await cli(STEER["cap"])
    assert pairs(await cli(LOOK["config"]))["cap:USDT"] == "150"
    assert await pair_of_signals(ADA, KCS_ETH, "c1") == {"admitted": 1, "capital_cap": 1, "capital": {"USDT": "100"}}
    await cli(STEER["uncap"])
    assert "cap:USDT" not in pairs(await cli(LOOK["config"]))
    assert await pair_of_signals(ADA, KCS_ETH, "c0") == {"admitted": 2, "capital": {"USDT": "200"}}
    assert pairs(await cli(LOOK["capital"])) == {}  # everything released


async def test_halt_cancels_everything_in_flight_and_stays_paused(
    trident: Supervisor, simulator: RunningSimulator, cli: Cli
) -> None:
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=600)
    await send(trident, markets, (ADA, "h-1"), (KCS_ETH, "h-2"))
    held = pairs(await cli(LOOK["lease_data"]))
    assert sorted(held) == ["h-1", "h-2"] and all(f'"owner":"{trident.name}"' in v for v in held.values())
    await cli(STEER["halt"])
    await trident.wait_idle(5)  # the executions end at their next step boundary, not after the latency
    reports = {r.correlation_id: (r.status, r.error) for r in await stream_reports(trident.settings.redis_url)}
    assert reports == {"h-1": ("aborted", "cancelled"), "h-2": ("aborted", "cancelled")}
    await send(trident, markets, (LTC, "h-3"))
    assert trident.admission.refusals["paused"] == 1
    assert pairs(await cli(LOOK["config"])) == {"paused": "1", "halt": "1"}
    await cli(STEER["resume"])
    await wait_until(lambda: not trident.admission.paused, 2)
    simulator.sim.update_knobs(latency_ms=0)
    await send(trident, markets, (LTC, "h-4"))
    await trident.wait_idle(5)
    assert {r.correlation_id: r.status for r in await stream_reports(trident.settings.redis_url)}["h-4"] == "filled"


async def test_halt_alone_still_pauses_the_fleet(trident: Supervisor, redis_client, cli: Cli) -> None:
    await redis_client.hset("trident:{reg}:config", "halt", "1")  # an operator forgot "paused 1"
    await trident.control.refresh()
    assert pairs(await cli(LOOK["config"])) == {"halt": "1", "paused": "1"}
    assert trident.admission.paused


async def test_cancel_one_execution_by_correlation_id(
    trident: Supervisor, simulator: RunningSimulator, cli: Cli
) -> None:
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=600)
    await send(trident, markets, (ADA, "x-keep"), (KCS_ETH, "x-cancel"))
    await cli(STEER["cancel"], correlation_id="x-cancel")
    await cli(STEER["cancel"], correlation_id="x-nobody")  # not in flight anywhere: dropped, no effect
    await trident.wait_idle(5)
    reports = {r.correlation_id: (r.status, r.error) for r in await stream_reports(trident.settings.redis_url)}
    assert reports == {"x-keep": ("filled", ""), "x-cancel": ("aborted", "cancelled")}
    await trident.control.refresh()
    assert (await cli(LOOK["cancels"])).strip() == ""  # both requests consumed
    recent = (await cli(LOOK["reports"])).splitlines()
    assert recent[0].count("-") == 1 and "x-keep" in recent and "x-cancel" in recent  # newest entry id first


async def test_fleet_status_and_worker_health_are_listable(
    trident: Supervisor, simulator: RunningSimulator, redis_client, cli: Cli
) -> None:
    markets = await markets_of(simulator)
    await send(trident, markets, (ADA, "st-1"))
    await trident.wait_idle(5)
    host, pid = trident.name.rsplit(":", 1)
    health_key = f"trident:health:{trident.name}:w0"

    async def health_counts_the_fill() -> bool:
        return b"filled=1" in (await redis_client.get(health_key) or b"")

    async with asyncio.timeout(5):  # the worker rewrites its line every second
        while not await health_counts_the_fill():
            await asyncio.sleep(0.05)
    async with asyncio.timeout(5):  # and the supervisor its status hash
        while b"1" != await redis_client.hget(f"trident:status:{trident.name}", "outcome:filled"):
            await asyncio.sleep(0.05)
    assert trident.name in pairs(await cli(LOOK["fleet"]))
    status = pairs(await cli(LOOK["status"], host=host, pid=pid))
    assert (status["pid"], status["mode"], status["workers_alive"], status["in_flight"]) == (pid, "paper", "1", "0")
    assert status["outcome:filled"] == "1" and float(status["uptime_s"]) > 0 and status["paused"] == "0"
    assert (await cli(LOOK["health_scan"])).split() == [health_key]
    line = await cli(LOOK["health"], host=host, pid=pid)
    assert re.search(r"pid=\d+ ongoing=0 done=1 filled=1 spooled=0", line), line
    ttl_ms = await redis_client.pttl(health_key)
    assert 0 < ttl_ms <= 3000
    # the fleet's only supervisor leads the roll-up and, at its first step, rolls the past hour
    async with asyncio.timeout(5):
        while await cli(LOOK["rollup_leader"]) != f"{trident.name}\n":
            await asyncio.sleep(0.05)
    rolled = (await cli(LOOK["rollup"])).split("\n")
    assert rolled.count("minute_ms") == 5 and rolled.count("count_filled") == 5, rolled
