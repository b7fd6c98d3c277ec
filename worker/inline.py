"""Inline execution (`--workers 0`): triangles run in the supervisor's own event loop.

This is the seed's single-process shape, kept as a pool so the supervisor needs no second code
path: `InlinePool` is a `shared.pool.Pool`, as `WorkerPool` is, and runs jobs with the very
executor a worker process runs (`worker.executor`'s `Worker`), whose messages here are a plain
call back into the pool instead of a write to a socket.
It saves the supervisor→worker hop and a process wake-up per signal, at the price of sharing
one core between intake and execution: `bench/` measures both shapes side by side.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from shared.channel import Done, Job, Message
from shared.pool import Member, OnDone, OnLost
from shared.settings import Settings
from worker.executor import (  # the worker's own executor, not a copy
    ExecutorResources,
    Worker,
    WorkerSpec,
)
from worker.live import LiveRuntime, open_live_runtime

__all__ = ["InlinePool"]

log = structlog.get_logger(__name__)


class InlinePool:
    """Zero worker processes: one in-process executor with its own warm session and Redis client.

    `count` must be 0 (it is `settings.workers`); `on_lost` is never called, since there is no
    process that could die without taking the supervisor with it.
    """

    def __init__(self, settings: Settings, count: int, host: str, on_done: OnDone, on_lost: OnLost) -> None:
        if count != 0:
            raise ValueError(f"an inline pool has no worker processes, got count={count}")
        self._settings = settings
        self._host = host
        self._on_done = on_done
        self._executor = Member(index=0, pid=os.getpid())
        self._worker: Worker | None = None
        self._live: LiveRuntime | None = None
        self._background: list[asyncio.Task[None]] = []
        self._resources: ExecutorResources | None = None
        self.respawns = 0

    @property
    def workers(self) -> list[Member]:
        return [self._executor] if self._worker is not None else []

    @property
    def alive(self) -> int:
        return 1 if self._worker is not None else 0

    async def start(self, ready_timeout_s: float = 60.0) -> None:
        """Open what `worker.entry.worker_main` opens (session, clients, Redis, live runtime in live
        mode) and warm the exchange connection."""
        settings = self._settings
        resources = ExecutorResources(settings, Path(settings.spool_dir) / "inline.spool")
        self._resources = resources
        await resources.warm(ready_timeout_s)
        spec = WorkerSpec(self._executor.index, settings, self._host)
        worker = Worker(spec, self._deliver, resources.client, resources.publisher, resources.budget)
        if settings.mode == "live":
            self._live = worker.live = await open_live_runtime(resources.client, resources.session, resources.redis,
                                                               settings)
        self._worker = worker
        self._background = resources.background()
        log.info("inline_executor_ready", pid=self._executor.pid)

    async def wait_alive(self, count: int, timeout_s: float) -> None:
        """Ready as soon as `start` returned; there is nothing to respawn."""
        if self.alive < count:
            raise TimeoutError(f"inline pool has {self.alive} executor, {count} wanted")

    def pick(self, triangle_id: str | None = None) -> Member | None:
        return self._executor if self._worker is not None else None

    def dispatch(self, member: Member, job: Job) -> None:
        if self._worker is None:
            raise RuntimeError("dispatch to an inline pool that is not running")
        member.in_flight[job.correlation_id] = None
        task = asyncio.create_task(self._worker.run(job))
        self._worker.running.add(task)
        task.add_done_callback(self._worker.running.discard)

    def cancel(self, correlation_id: str) -> bool:
        if self._worker is None or correlation_id not in self._executor.in_flight:
            return False
        self._worker.cancelled.add(correlation_id)
        return True

    def _deliver(self, message: Message) -> None:
        if isinstance(message, Done):
            self._executor.in_flight.pop(message.correlation_id, None)
            self._on_done(message)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Let running executions finish and report (cancelled past the timeout), then close."""
        worker, self._worker = self._worker, None
        if worker is not None and worker.running:
            _, pending = await asyncio.wait(set(worker.running), timeout=timeout_s)
            for task in pending:
                task.cancel()
            if pending:  # bounded too: an execution whose cancel a Redis call swallowed (shared.stopping)
                _, stuck = await asyncio.wait(pending, timeout=timeout_s)
                if stuck:
                    log.error("executions_ignored_cancel", correlation_ids=sorted(self._executor.in_flight))
        if self._resources is not None:
            self._resources.stopping.set()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if worker is not None:
            await worker.publisher.replay()
        if self._live is not None:
            await self._live.close()
        if self._resources is not None:
            await self._resources.close()
