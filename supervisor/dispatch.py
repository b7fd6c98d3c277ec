"""Worker pool: starts worker processes with aiomultiprocess, routes jobs, notices exits, respawns.

aiomultiprocess starts and runs each process (uvloop via its loop_initializer); jobs travel on a
socketpair per worker, not on the library's 5 ms-polling queue. A worker's death shows up at once
as EOF on its channel; its in-flight executions are handed to `on_lost` and a replacement starts.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

import aiomultiprocess
import structlog

from shared.channel import Cancel, Channel, Done, Hello, Job
from shared.pool import Member, OnDone, OnLost
from shared.settings import Settings
from supervisor.routing import shard_choice
from worker.entry import WorkerSpec, worker_main

__all__ = ["WorkerHandle", "WorkerPool"]

log = structlog.get_logger(__name__)


def _loop_initializer() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up, absent on some platforms
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass(eq=False, kw_only=True)
class WorkerHandle(Member):
    """The supervisor's view of one worker process."""

    process: aiomultiprocess.Process
    channel: Channel
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class WorkerPool:
    """`count` worker processes (a `shared.pool.Pool`); `pick` routes by the `routing` setting."""

    def __init__(self, settings: Settings, count: int, host: str, on_done: OnDone, on_lost: OnLost) -> None:
        self._settings = settings
        self._count = count
        self._host = host
        self._on_done = on_done
        self._on_lost = on_lost
        self._workers: dict[int, WorkerHandle] = {}
        self._readers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._changed = asyncio.Event()  # set whenever a worker becomes ready or exits
        self.respawns = 0
        self._last_pick = -1  # index of the worker pick() chose last: ties rotate past it

    @property
    def workers(self) -> list[WorkerHandle]:
        return list(self._workers.values())

    @property
    def alive(self) -> int:
        return sum(1 for w in self._workers.values() if w.ready.is_set())

    async def start(self, ready_timeout_s: float = 60.0) -> None:
        """Start every worker and wait until each has said hello (its session is warm)."""
        for index in range(self._count):
            await self._spawn(index)
        await self.wait_alive(self._count, ready_timeout_s)

    async def _spawn(self, index: int) -> WorkerHandle:
        parent_end, child_end = socket.socketpair()
        process = aiomultiprocess.Process(
            target=worker_main,
            args=(WorkerSpec(index, self._settings, self._host), child_end),
            name=f"trident-worker-{index}",
            loop_initializer=_loop_initializer,
        )
        process.start()
        child_end.close()
        handle = WorkerHandle(index=index, process=process, channel=await Channel.open(parent_end))
        self._workers[index] = handle
        task = asyncio.create_task(self._read(handle))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)
        return handle

    async def wait_alive(self, count: int, timeout_s: float) -> None:
        """Wait until `count` workers are ready (start-up, and tests of respawning)."""
        async with asyncio.timeout(timeout_s):
            while self.alive < count:
                self._changed.clear()
                await self._changed.wait()

    def pick(self, triangle_id: str | None = None) -> WorkerHandle | None:
        """A ready worker: the triangle's shard under `routing = shard` (`supervisor.routing`), else
        the least-loaded one, ties rotating from the worker picked last.

        Breaking ties toward the lowest index left worker 1 nearly idle at 200/s (each job was
        done before the next arrived, so every tie went to worker 0). Rotating the ties spreads
        the work, and the CPU, over every idle worker.
        """
        ready = sorted((w for w in self._workers.values() if w.ready.is_set()), key=lambda w: w.index)
        if not ready:
            return None
        if self._settings.routing == "shard" and triangle_id is not None:
            home = shard_choice(ready, triangle_id, self._settings.shard_spill)
            if home is not None:
                return home
        least = min(w.load for w in ready)
        tied = [w for w in ready if w.load == least]
        chosen = next((w for w in tied if w.index > self._last_pick), tied[0])
        self._last_pick = chosen.index
        return chosen

    def dispatch(self, worker: WorkerHandle, job: Job) -> None:
        worker.in_flight[job.correlation_id] = None
        worker.channel.send(job)

    def cancel(self, correlation_id: str) -> bool:
        for worker in self._workers.values():
            if correlation_id in worker.in_flight:
                worker.channel.send(Cancel(correlation_id))
                return True
        return False

    async def _read(self, worker: WorkerHandle) -> None:
        while True:
            try:
                message = await worker.channel.recv()
            except ValueError as exc:  # a corrupt message from a worker is a bug; log it, keep reading
                log.error("bad_worker_message", worker=worker.index, error=str(exc))
                continue
            if message is None:
                break
            if isinstance(message, Done):
                worker.in_flight.pop(message.correlation_id, None)
                self._on_done(message)
            elif isinstance(message, Hello):
                worker.pid = message.pid
                worker.ready.set()
                self._changed.set()
                log.info("worker_ready", worker=worker.index, pid=message.pid)
        await self._handle_exit(worker)

    async def _handle_exit(self, worker: WorkerHandle) -> None:
        worker.ready.clear()
        self._changed.set()
        worker.channel.close()
        await asyncio.get_running_loop().run_in_executor(None, worker.process.aio_process.join, 5)
        lost = list(worker.in_flight)
        worker.in_flight.clear()
        reason = f"worker {worker.index} (pid {worker.pid}) exited with code {worker.process.exitcode}"
        if self._workers.get(worker.index) is worker:
            del self._workers[worker.index]
        if self._stopping:
            if lost:
                await self._on_lost(worker.index, lost, reason)
            return
        log.error("worker_exited", worker=worker.index, pid=worker.pid, exitcode=worker.process.exitcode, lost=len(lost))
        if lost:
            await self._on_lost(worker.index, lost, reason)
        self.respawns += 1
        await self._spawn(worker.index)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Close every channel (workers drain and exit), then wait; kill what outlives the timeout."""
        self._stopping = True
        for worker in list(self._workers.values()):
            worker.channel.close()
        if self._readers:
            _, pending = await asyncio.wait(set(self._readers), timeout=timeout_s)
            for task in pending:
                task.cancel()
        for worker in list(self._workers.values()):
            if worker.process.is_alive():
                worker.process.kill()

