"""A supervisor's stop ends every background loop, even one whose cancel a Redis call swallowed.

redis-py 8.1 can return normally from a call a cancel landed in (see shared.stopping): before the
stop flag, the status loop then ran on for ever, `asyncio.run`'s clean-up waited on it and the
whole test suite hung in CI. Here the status publish swallows every cancel, deterministically.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog

import supervisor.app
from supervisor.app import Supervisor
from tests.support.e2e import e2e_settings


async def test_stop_ends_a_loop_whose_redis_call_swallowed_the_cancel(
    redis_url: str, simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publishing = asyncio.Event()
    real_publish = supervisor.app.publish_status

    async def publish_swallowing_cancels(*args: object, **kwargs: object) -> object:
        published = await real_publish(*args, **kwargs)
        publishing.set()
        try:
            await asyncio.sleep(3600)  # the call a cancel lands in
        except asyncio.CancelledError:
            return published  # ... and is lost, as redis-py sometimes loses it
        return published

    monkeypatch.setattr(supervisor.app, "publish_status", publish_swallowing_cancels)
    settings = e2e_settings(redis_url, simulator.url, tmp_path, workers=0, metrics_port=0)
    service = Supervisor(settings)
    await service.start()
    async with asyncio.timeout(10):
        await publishing.wait()
    with structlog.testing.capture_logs() as logs:
        async with asyncio.timeout(10):
            await service.stop()
    assert all(task.done() and not task.cancelled() and task.exception() is None for task in service._background
               if task.get_coro().__qualname__ == "Supervisor._status_loop")
    assert all(task.done() for task in service._background)
    assert not [entry for entry in logs if entry["event"] == "background_tasks_ignored_cancel"]
    assert not [entry for entry in logs if entry["event"] == "redis_unreachable"]
