"""The executor: many concurrent executions on one warm client, each ending in one report and one `Done`.

A worker process (`worker.entry`) and the inline pool (`worker.inline`) both run this very class,
so there is one execution path whichever shape the supervisor runs in.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import structlog
from redis.exceptions import RedisError

from shared import clock
from shared.channel import Cancel, Channel, Done, Hello, Job, Message
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.money import fmt_decimal
from shared.report import ExecutionReport, Status
from shared.settings import Settings
from shared.signal import Signal, SignalError, parse_signal
from shared.stopping import Stopping
from shared.store.connect import connect
from shared.store.ratebudget import RateBudget
from shared.store.reports import ReportPublisher
from worker.context import ExecutionContext, exchange_error_code
from worker.execution_log import log_execution
from worker.live import LiveRuntime, execute_live
from worker.live_parallel import execute_parallel
from worker.paper import execute_paper

__all__ = ["WorkerSpec", "Worker", "ExecutorResources", "keepalive", "ping"]

log = structlog.get_logger(__name__)
_D0 = Decimal(0)


class WorkerSpec(NamedTuple):
    """Everything a worker needs, picklable so it crosses the spawn boundary."""

    index: int
    settings: Settings
    host: str


_OBSERVE_INTERVAL_NS = 100_000_000


class Worker:
    """The executor of one worker process (or of the supervisor itself, inline): many jobs at once.

    It owns nothing the process does not: the warm client, the report publisher; `send` carries
    its messages to the supervisor (the channel's `send` in a worker process, a call back into
    the pool inline). Every job it takes ends in exactly one report and one `Done`.
    """

    def __init__(
        self, spec: WorkerSpec, send: Callable[[Message], None], client: KucoinRest, publisher: ReportPublisher,
        budget: RateBudget,
    ) -> None:
        self.spec = spec
        self.name = f"{spec.host}/w{spec.index}"
        self.send = send
        self.client = client
        self.publisher = publisher
        self.budget = budget
        self.observed: object = None  # the client's rate-limit info last passed to the budget
        self.next_observe_ns = 0
        self.context = ExecutionContext(
            worker=self.name, host=spec.host, mode=spec.settings.mode, fill_model=spec.settings.fill_model
        )
        self.running: set[asyncio.Task[None]] = set()
        self.cancelled: set[str] = set()
        self.outcomes: Counter[str] = Counter()
        self.live: LiveRuntime | None = None  # set by worker_main in live mode only

    async def serve(self, channel: Channel) -> None:
        """Say hello, then take jobs and cancels from `channel` until it closes; finish what runs."""
        self.send(Hello(self.spec.index, os.getpid()))
        while (message := await channel.recv()) is not None:
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
            report = _failure(job, self.context, f"internal error: {type(exc).__name__}: {exc}",
                              exchange_error_code(exc))
        await self.publisher.publish(report)
        self.cancelled.discard(cid)
        self.outcomes[str(report.status)] += 1
        self.send(_done_message(report))
        log_execution(report, report.error_code)  # after Done: logging never delays the supervisor
        await self.observe_rate_limit()

    async def observe_rate_limit(self) -> None:
        """Hand the exchange's latest gw-ratelimit-* headers to the fleet's budget (after Done:
        the correction matters to the next admissions, not to this execution's latency)."""
        info = self.client.last_spot_rate_limit  # never the accounts (Management) call's figures
        if info is None or info is self.observed:
            return
        now_ns = time.monotonic_ns()
        # One EVALSHA per execution would be the worker's costliest Redis call; the admissions
        # already count Trident's own spending, the headers only add what others spent. So
        # correct at most every _OBSERVE_INTERVAL_NS, and at once when the pool runs low.
        if now_ns < self.next_observe_ns and info.remaining > info.limit // 10:
            return
        self.next_observe_ns = now_ns + _OBSERVE_INTERVAL_NS
        self.observed = info
        try:
            await self.budget.observe(info.limit, info.remaining, info.reset_ms)
        except (RedisError, OSError) as exc:  # Redis down: the next answer's headers correct it then
            log.debug("rate_budget_observe_failed", error=str(exc))

    async def execute(self, job: Job) -> ExecutionReport:
        signal = job.signal
        if not isinstance(signal, Signal):  # a contract mapping, not the supervisor's validated form
            try:
                signal = parse_signal(signal)
            except SignalError as exc:
                return _failure(job, self.context, str(exc))
        if signal.live:
            if self.live is None:  # the supervisor refuses these in paper mode; this is the second lock
                return _failure(job, self.context, "live signal refused: this service runs in paper mode")
            # the registry claimed the legs' inventory only for a parallel grant: never run parallel otherwise
            run = execute_parallel if job.strategy == "parallel" else execute_live
            return await run(
                signal, self.live, self.context, received_ms=job.received_ms, received_ns=job.received_ns,
                cancelled=lambda: job.correlation_id in self.cancelled,
            )
        return await execute_paper(
            signal,
            self.client,
            self.context,
            received_ms=job.received_ms,
            received_ns=job.received_ns,
            cancelled=lambda: job.correlation_id in self.cancelled,
        )


    def health_line(self) -> str:
        """One line for `redis-cli GET`, like arq's: when, who, what it holds and has done."""
        done = " ".join(f"{status}={count}" for status, count in sorted(self.outcomes.items()))
        return (
            f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} pid={os.getpid()} ongoing={len(self.running)} "
            f"done={self.outcomes.total()}{' ' + done if done else ''} spooled={self.publisher.spooled}"
        )


def _done_message(report: ExecutionReport) -> Done:
    """Done with the report's timings and money, so the supervisor's metrics cover every worker."""
    legs = [fill.latency_ms for fill in report.fills[:3]]
    legs += [0.0] * (3 - len(legs))
    fees: dict[str, Decimal] = {}
    for charge in (*report.fills, *report.unwinds):
        if charge.fee and charge.fee_currency:
            fees[charge.fee_currency] = fees.get(charge.fee_currency, _D0) + charge.fee
    return Done(report.correlation_id, str(report.status), report.ts_ms, report.first_order_ms, report.total_ms,
                *legs, report.error_code, report.primary_quote, fmt_decimal(report.spent),
                fmt_decimal(report.returned), tuple((currency, fmt_decimal(fee)) for currency, fee in sorted(fees.items())))


def _failure(job: Job, context: ExecutionContext, error: str, error_code: str = "") -> ExecutionReport:
    """A report for an execution that could not even start (or crashed): failed, with why."""
    if isinstance(job.signal, Signal):
        triangle: object = list(job.signal.triangle_key)
    else:
        triangle = job.signal.get("triangle_key") if isinstance(job.signal, dict) else None
    return ExecutionReport(
        correlation_id=job.correlation_id, status=Status.FAILED, mode=context.mode, fill_model=context.fill_model,
        triangle=tuple(str(p) for p in triangle) if isinstance(triangle, list) else (),
        primary_quote="", predicted_bps=0.0, effective_bps=0.0, profit=_D0, spent=_D0, returned=_D0,
        ts_ms=clock.wall_ms(), book_ts_ms=0, signal_ts_ms=0, received_ts_ms=job.received_ms,
        first_order_ms=0.0, total_ms=0.0, error=error, worker=context.worker, host=context.host,
        error_code=error_code,
    )


# What the paper keep-alive validates, as the seed did: a 1 USDT market buy of BTC-USDT (an
# order test never enters matching). An answer refusing it still went through the signed path.
KEEPALIVE_SYMBOL = "BTC-USDT"
KEEPALIVE_FUNDS = Decimal(1)


async def ping(client: KucoinRest, mode: str) -> None:
    """One keep-alive call: paper keeps the signed order-test POST warm (the path every paper
    triangle takes), live the public server-time GET (its orders keep the signed path busy, and
    the order-test path must never spend the live account's weight idly)."""
    if mode == "paper":
        await client.order_test(KEEPALIVE_SYMBOL, "buy", funds=KEEPALIVE_FUNDS)
    else:
        await client.server_time()


async def keepalive(client: KucoinRest, settings: Settings, stopping: Stopping) -> None:
    """Keep the connection to the exchange warm, as the seed did: an idle socket costs a handshake."""
    while await stopping.pause(settings.keepalive_s):
        try:
            await ping(client, settings.mode)
        except Exception as exc:  # a failed ping is not fatal; the next order reconnects
            log.debug("keepalive_failed", error=str(exc))


class ExecutorResources:
    """What one executor holds open: a warm session, the trading client, a separate ping client,
    Redis, the report publisher and the rate budget. Worker processes and the inline pool open
    them the same way, here."""

    def __init__(self, settings: Settings, spool: Path) -> None:
        self.settings = settings
        self.session = make_session(settings.http_timeout_s)
        self.redis = connect(settings, "worker")
        self.client = KucoinRest(self.session, settings.exchange_url, settings.credentials,
                                 timeout_s=settings.http_timeout_s)
        # Pings go through their own client on the same warm session, so their gw-ratelimit-*
        # headers (the public pool's in live mode) never reach the fleet's Spot budget through
        # `client.last_rate_limit`; paper pings are signed (order test), so it holds the keys.
        self.pinger = KucoinRest(self.session, settings.exchange_url,
                                 settings.credentials if settings.mode == "paper" else None,
                                 timeout_s=settings.http_timeout_s)
        self.publisher = ReportPublisher(self.redis, settings.report_stream, settings.report_maxlen, spool,
                                         settings.correlation_retention_s * 1000)
        self.budget = RateBudget(self.redis, limit=settings.rate_budget_limit,
                                 window_ms=settings.rate_budget_window_ms)
        self.stopping = Stopping()  # set by close(), and first by an owner that stops its loops

    async def warm(self, timeout_s: float | None = None) -> None:
        """Open the exchange connection before the first order needs it; a failure is not fatal."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.pinger.server_time()
        except Exception as exc:  # start anyway: the first order reconnects
            log.warning("exchange_unreachable_at_start", error=str(exc))

    def background(self) -> list[asyncio.Task[None]]:
        """The keep-alive pings and the spool replayer, started."""
        return [
            asyncio.create_task(keepalive(self.pinger, self.settings, self.stopping)),
            asyncio.create_task(self.publisher.run_replayer(self.stopping)),
        ]

    async def close(self) -> None:
        self.stopping.set()
        await self.session.close()
        await self.redis.aclose()
