"""Inline mode (`workers = 0`): the supervisor executes in its own event loop, end to end."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from shared.codec import encode_frame
from shared.settings import load_settings
from shared.store.registry import Registry
from sim.server import RunningSimulator
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tools.send import send_frames
from tools.synthetic import restamped
from worker.context import client_oid
from worker.inline import InlinePool


def test_zero_workers_is_a_valid_setting() -> None:
    assert load_settings({"TRIDENT_WORKERS": "0"}).workers == 0


async def test_inline_reports_match_the_order_log_one_for_one(
    redis_url: str, simulator: RunningSimulator, workdir: Path, redis_client: object
) -> None:
    await Registry(redis_client, owner="test").set_config(slots=50, enforce_pair=False)  # type: ignore[arg-type]
    markets = await markets_of(simulator)
    signals = [fresh_signal(markets, i % 6, f"in-{i:03d}") for i in range(24)]
    settings = e2e_settings(redis_url, simulator.url, workdir, workers=0)
    async with running_supervisor(settings) as supervisor:
        assert isinstance(supervisor.pool, InlinePool)
        assert supervisor.status()["workers_alive"] == "1"
        assert [w.pid for w in supervisor.pool.workers] == [os.getpid()]  # no worker process
        await send_frames(settings.socket_path, (encode_frame(restamped(s)) for s in signals), progress=False)
        await supervisor.wait_frames(len(signals), 20)
        await supervisor.wait_idle(20)
        refusals = Counter(supervisor.admission.refusals)
        admitted = supervisor.admission.admitted
        assert await supervisor.registry.leases() == []  # every lease released on Done

    reports = {r.correlation_id: r for r in await stream_reports(redis_url)}
    assert admitted == len(reports) == len(signals) - refusals["triangle_busy"] - refusals["stale"]
    assert admitted >= 3
    assert all(r.status == "filled" for r in reports.values()), {r.error for r in reports.values()}
    assert all(r.edge.gross != 0 and r.edge.fees > 0 for r in reports.values())
    log = simulator.sim.order_log.entries()
    assert {e.kind for e in log} == {"test"}
    assert Counter(e.client_oid for e in log) == Counter(client_oid(cid, leg) for cid in reports for leg in range(3))


async def test_inline_cancel_ends_aborted(redis_url: str, simulator: RunningSimulator, workdir: Path) -> None:
    markets = await markets_of(simulator)
    simulator.sim.update_knobs(latency_ms=400)
    settings = e2e_settings(redis_url, simulator.url, workdir, workers=0)
    async with running_supervisor(settings) as supervisor:
        await send_frames(settings.socket_path, [encode_frame(fresh_signal(markets, 1, "icx-1"))], progress=False)
        await supervisor.wait_frames(1, 10)
        assert supervisor.cancel("icx-1")
        assert not supervisor.cancel("not-running")
        await supervisor.wait_idle(10)
    (report,) = await stream_reports(redis_url)
    assert (report.correlation_id, report.status, report.error) == ("icx-1", "aborted", "cancelled")


def test_an_inline_pool_refuses_worker_processes() -> None:
    settings = load_settings({}, workers=0)
    with pytest.raises(ValueError, match="count=2"):
        InlinePool(settings, 2, "host", lambda done: None, None)  # type: ignore[arg-type]
