"""Helpers for end-to-end tests: a simulator, a supervisor with real worker processes, signals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis

from shared.credentials import Credentials
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.report import ExecutionReport, report_from_fields
from shared.settings import Settings, load_settings
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from sim.server import RunningSimulator
from supervisor.app import Supervisor
from tools.synthetic import Market, fetch_markets, find_triangles, make_signal


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll a condition owned by another process (no event to wait on) until it holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


def run_values(redis_url: str, exchange_url: str, workdir: Path, **overrides: object) -> dict[str, object]:
    """The one configuration of a test's Trident (in-process or as a process): the simulator's demo
    account, a private socket and spool under `workdir`, two workers, plus the test's overrides."""
    values: dict[str, object] = dict(
        redis_url=redis_url, socket_path=str(workdir / "signals.sock"), workers=2, exchange_url=exchange_url,
        spool_dir=str(workdir / "spool"), log_level="warning", lease_ttl_ms=5000,
    )
    values.update(overrides)
    return values


def e2e_settings(redis_url: str, exchange_url: str, workdir: Path, **overrides: object) -> Settings:
    """`run_values` as Settings, for a supervisor started in the test's own process."""
    return load_settings(env={}, credentials=Credentials(DEMO_API_KEY, DEMO_API_SECRET, DEMO_API_PASSPHRASE),
                         **run_values(redis_url, exchange_url, workdir, **overrides))


@asynccontextmanager
async def running_supervisor(settings: Settings) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor(settings)
    await supervisor.start()
    try:
        yield supervisor
    finally:
        await supervisor.stop()


async def markets_of(simulator: RunningSimulator) -> dict[str, Market]:
    async with make_session() as session:
        return await fetch_markets(KucoinRest(session, simulator.url))


def fresh_signal(markets: dict[str, Market], triangle_index: int, cid: str, volume: str = "100") -> dict:
    """A valid signal for one triangle, stamped as if its book was sampled just now."""
    triangle = find_triangles(markets)[triangle_index]
    return make_signal(triangle, markets, Decimal(volume), correlation_id=cid, now_ms=int(time.time() * 1000))


async def stream_reports(redis_url: str, stream: str = "trident:reports") -> list[ExecutionReport]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        return [report_from_fields(fields) for _, fields in await client.xrange(stream)]
    finally:
        await client.aclose()
