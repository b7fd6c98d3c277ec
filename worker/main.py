"""Worker process entry: one warm aiohttp session, many concurrent executions, one channel.

aiomultiprocess starts this coroutine in a fresh (spawned) process. Logging is configured here,
after the process exists, because structlog's cached loggers cannot cross a process boundary.
The worker takes jobs until its channel closes, then finishes what it holds and exits: a
supervisor that goes away never strands an execution without its report.
"""

from __future__ import annotations

import asyncio
import os
import signal as signals
import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import redis.asyncio as aioredis
import structlog

from shared.channel import Cancel, Channel, Done, Hello, Job
from shared.logs import configure_logging
from shared.report import ExecutionReport, Status
from shared.settings import Settings
from shared.signal import SignalError, parse_signal
from worker.execute import ExecutionContext, execute_paper
from worker.kucoin.rest import KucoinRest
from worker.kucoin.session import make_session
from worker.publish import ReportPublisher

__all__ = ["WorkerSpec", "worker_main", "spool_path"]

log = structlog.get_logger(__name__)
_D0 = Decimal(0)


class WorkerSpec(NamedTuple):
    """Everything a worker needs, picklable so it crosses the spawn boundary."""

    index: int
    settings: Settings
    host: str


def spool_path(settings: Settings, index: int) -> Path:
    """Per worker slot, so a replacement worker replays what its predecessor spooled."""
    return Path(settings.spool_dir) / f"worker-{index}.spool"


class _Worker:
    def __init__(self, spec: WorkerSpec, channel: Channel, client: KucoinRest, publisher: ReportPublisher) -> None:
        self.spec = spec
        self.name = f"{spec.host}/w{spec.index}"
        self.channel = channel
        self.client = client
        self.publisher = publisher
        self.context = ExecutionContext(
            worker=self.name, host=spec.host, mode=spec.settings.mode, fill_model=spec.settings.fill_model
        )
        self.running: set[asyncio.Task[None]] = set()
        self.cancelled: set[str] = set()

    async def serve(self) -> None:
        self.channel.send(Hello(self.spec.index, os.getpid()))
        while (message := await self.channel.recv()) is not None:
            if isinstance(message, Job):
                task = asyncio.create_task(self.run(message))
                self.running.add(task)
                task.add_done_callback(self.running.discard)
            elif isinstance(message, Cancel):
                self.cancelled.add(message.correlation_id)
        if self.running:
            log.info("worker_draining", executions=len(self.running))
            await asyncio.gather(*self.running, return_exceptions=True)

    async def run(self, job: Job) -> None:
        cid = job.correlation_id
        try:
            report = await self.execute(job)
        except Exception as exc:  # a bug must still end in a report, never a silent drop
            log.exception("execution_crashed", correlation_id=cid)
            report = _failure(job, self.context, f"internal error: {type(exc).__name__}: {exc}")
        await self.publisher.publish(report)
        self.cancelled.discard(cid)
        self.channel.send(Done(cid, str(report.status), report.ts_ms))

    async def execute(self, job: Job) -> ExecutionReport:
        try:
            signal = parse_signal(job.signal)
        except SignalError as exc:
            return _failure(job, self.context, str(exc))
        if signal.live:
            # Live execution arrives with the live-mode issue; the supervisor refuses live signals
            # before they get here, this is the second lock on the door.
            return _failure(job, self.context, "live execution is not available in this build")
        return await execute_paper(
            signal,
            self.client,
            self.context,
            received_ms=job.received_ms,
            received_ns=job.received_ns,
            cancelled=lambda: job.correlation_id in self.cancelled,
        )


def _failure(job: Job, context: ExecutionContext, error: str) -> ExecutionReport:
    """A report for an execution that could not even start (or crashed): failed, with why."""
    triangle = job.signal.get("triangle_key") if isinstance(job.signal, dict) else None
    return ExecutionReport(
        correlation_id=job.correlation_id, status=Status.FAILED, mode=context.mode, fill_model=context.fill_model,
        triangle=tuple(str(p) for p in triangle) if isinstance(triangle, list) else (),
        primary_quote="", predicted_bps=0.0, effective_bps=0.0, profit=_D0, spent=_D0, returned=_D0,
        ts_ms=int(time.time() * 1000), book_ts_ms=0, signal_ts_ms=0, received_ts_ms=job.received_ms,
        first_order_ms=0.0, total_ms=0.0, error=error, worker=context.worker, host=context.host,
    )


async def _keepalive(client: KucoinRest, settings: Settings) -> None:
    """Keep the connection to the exchange warm, as the seed did: an idle socket costs a handshake."""
    while True:
        await asyncio.sleep(settings.keepalive_s)
        try:
            await client.server_time()
        except Exception as exc:  # a failed ping is not fatal; the next order reconnects
            log.debug("keepalive_failed", error=str(exc))


async def worker_main(spec: WorkerSpec, sock: socket.socket) -> None:
    """Process entry point (run by aiomultiprocess)."""
    settings = spec.settings
    secrets = settings.credentials.secrets() if settings.credentials else ()
    configure_logging(f"worker-{spec.index}", settings.log_level, settings.log_file, secrets)
    loop = asyncio.get_running_loop()
    signals.signal(signals.SIGINT, signals.SIG_IGN)  # Ctrl-C reaches the whole group; the supervisor leads shutdown
    channel = await Channel.open(sock)
    loop.add_signal_handler(signals.SIGTERM, channel.close)
    session = make_session(settings.http_timeout_s)
    redis = aioredis.Redis.from_url(settings.redis_url)
    client = KucoinRest(session, settings.exchange_url, settings.credentials, timeout_s=settings.http_timeout_s)
    publisher = ReportPublisher(redis, settings.report_stream, settings.report_maxlen, spool_path(settings, spec.index))
    background = [
        asyncio.create_task(_keepalive(client, settings)),
        asyncio.create_task(publisher.run_replayer()),
    ]
    try:
        try:
            await client.server_time()  # warm the connection before the first order needs it
        except Exception as exc:
            log.warning("exchange_unreachable_at_start", error=str(exc))
        await _Worker(spec, channel, client, publisher).serve()
        await publisher.replay()
    finally:
        for task in background:
            task.cancel()
        await session.close()
        await redis.aclose()
        log.info("worker_stopped", index=spec.index)
