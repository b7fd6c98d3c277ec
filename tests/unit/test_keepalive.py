"""The keep-alive pings, against the simulator: paper warms the signed order-test POST, live the time GET."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.kucoin.constants import PUBLIC_POOL, SPOT_POOL
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.settings import Settings
from shared.stopping import Stopping
from sim import DEMO_CREDENTIALS, SimConfig, start_simulator
from tests.support.sim import write_markets
from worker.executor import KEEPALIVE_SYMBOL, keepalive


async def _ping_for(mode: str, tmp_path: Path) -> tuple[list[tuple[str, str | None, str | None]], int, int]:
    """Run `mode`'s keep-alive until it has spent 9 weight (9 order tests, 3 time GETs); returns the order log and both pools' spending."""
    simulator = await start_simulator(port=0, config=SimConfig(markets_path=write_markets(tmp_path)))
    session = make_session(timeout_s=2.0)
    try:
        credentials = DEMO_CREDENTIALS if mode == "paper" else None
        client = KucoinRest(session, simulator.url, credentials, timeout_s=2.0)
        settings = Settings(mode=mode, keepalive_s=0.01)
        limiter = simulator.sim.rate_limiter
        spot0, public0 = limiter.peek(SPOT_POOL).remaining, limiter.peek(PUBLIC_POOL).remaining
        task = asyncio.create_task(keepalive(client, settings, Stopping()))
        async with asyncio.timeout(5):
            while (spot0 - limiter.peek(SPOT_POOL).remaining) + (public0 - limiter.peek(PUBLIC_POOL).remaining) < 9:
                await asyncio.sleep(0.005)
        task.cancel()
        log = [(e.kind, e.symbol, e.code) for e in simulator.sim.order_log.entries()]
        return log, spot0 - limiter.peek(SPOT_POOL).remaining, public0 - limiter.peek(PUBLIC_POOL).remaining
    finally:
        await session.close()
        await simulator.stop()


async def test_paper_keepalive_pings_the_signed_order_test_path(tmp_path: Path) -> None:
    log, spot, public = await _ping_for("paper", tmp_path)
    assert len(log) >= 9 and set(log) == {("test", KEEPALIVE_SYMBOL, "200000")}  # signed, accepted
    assert spot >= 9 and public == 0


async def test_live_keepalive_keeps_the_server_time_get(tmp_path: Path) -> None:
    log, spot, public = await _ping_for("live", tmp_path)
    assert log == [] and spot == 0 and public >= 9  # three GETs of weight 3, no order call
