"""A loop that waits through `Stopping.pause()` ends once the stop is set, even when the cancel
meant to end it is swallowed by what it awaited (as redis-py 8.1 sometimes does)."""

from __future__ import annotations

import asyncio

from shared.stopping import Stopping


async def _swallowing_call() -> None:
    """A call that eats a cancel and returns normally, like the Redis client's lost cancel."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        return


async def test_a_loop_that_lost_its_cancel_ends_at_its_next_pause() -> None:
    stopping = Stopping()
    steps = 0
    in_call = asyncio.Event()

    async def loop() -> None:
        nonlocal steps
        while await stopping.pause(0.001):
            steps += 1
            in_call.set()
            await _swallowing_call()

    task = asyncio.create_task(loop())
    async with asyncio.timeout(5):
        await in_call.wait()
    stopping.set()
    task.cancel()  # lands inside the call, which swallows it
    async with asyncio.timeout(5):
        await task  # ends by the flag, not by the cancel
    assert task.done() and not task.cancelled() and steps == 1


async def test_pause_waits_out_its_time_while_running_and_returns_at_once_when_stopped() -> None:
    stopping = Stopping()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await stopping.pause(0.05) is True
    assert loop.time() - started >= 0.04
    waiter = asyncio.create_task(stopping.pause(3600))
    await asyncio.sleep(0)
    stopping.set()
    async with asyncio.timeout(5):
        assert await waiter is False
    assert await stopping.pause(3600) is False and stopping.is_set()
