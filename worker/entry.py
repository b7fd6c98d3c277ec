"""Worker process entry: what aiomultiprocess starts in a fresh (spawned) process.

Logging is configured here, after the process exists, because structlog's cached loggers cannot
cross a process boundary. The worker takes jobs until its channel closes, then finishes what it
holds and exits: a supervisor that goes away never strands an execution without its report.
This module is the only part of `worker/` a supervisor starts (besides the in-process
`worker.inline` pool); everything it runs lives in `worker.executor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as signals
import socket
from pathlib import Path

import structlog
from redis.exceptions import RedisError

from shared import clock
from shared.channel import Channel
from shared.logs import configure_logging
from shared.settings import Settings
from shared.store import keys
from shared.store.fleet import write_health_forever
from worker.executor import ExecutorResources, Worker, WorkerSpec
from worker.live import LiveRuntime, open_live_runtime

__all__ = ["WorkerSpec", "worker_main", "spool_path"]

log = structlog.get_logger(__name__)


def spool_path(settings: Settings, index: int) -> Path:
    """Per worker slot, so a replacement worker replays what its predecessor spooled."""
    return Path(settings.spool_dir) / f"worker-{index}.spool"


async def worker_main(spec: WorkerSpec, sock: socket.socket) -> None:
    """Process entry point (run by aiomultiprocess)."""
    settings = spec.settings
    clock.set_skew(settings.clock_skew_ms)  # a worker runs on its supervisor's host, with its clock
    secrets = settings.secrets()
    configure_logging(f"worker-{spec.index}", settings.log_level, settings.log_file, secrets, cache_loggers=True)
    loop = asyncio.get_running_loop()
    signals.signal(signals.SIGINT, signals.SIG_IGN)  # Ctrl-C reaches the whole group; the supervisor leads shutdown
    channel = await Channel.open(sock)
    loop.add_signal_handler(signals.SIGTERM, channel.close)
    resources = ExecutorResources(settings, spool_path(settings, spec.index))
    redis, publisher = resources.redis, resources.publisher
    background = resources.background()
    live: LiveRuntime | None = None
    try:
        await resources.warm()
        worker = Worker(spec, channel.send, resources.client, publisher, resources.budget)
        if settings.mode == "live":  # the private WebSocket opens before the worker says Hello
            live = worker.live = await open_live_runtime(resources.client, resources.session, redis, settings)
        # the supervisor is this process's parent (aiomultiprocess spawns it), named host:pid
        health_key = keys.worker_health_key(f"{spec.host}:{os.getppid()}", spec.index)
        background.append(asyncio.create_task(write_health_forever(redis, health_key, worker.health_line,
                                                                   resources.stopping)))
        await worker.serve(channel)
        await publisher.replay()
        with contextlib.suppress(RedisError, OSError):
            await redis.delete(health_key)
    finally:
        resources.stopping.set()
        if live is not None:
            await live.close()
        for task in background:
            task.cancel()
        await resources.close()
        log.info("worker_stopped", index=spec.index)
