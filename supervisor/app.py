"""The supervisor process: socket intake, admission, leases, the worker pool and its bookkeeping.

It owns every lease it grants: it renews them while executions run, releases them (fenced) when
a worker says done, and reports executions of a worker that died as `lost` before releasing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import Counter
from dataclasses import replace
from importlib.metadata import version as package_version
from pathlib import Path

import structlog
from redis.exceptions import RedisError

from shared import clock
from shared.channel import Done
from shared.pool import PoolFactory
from shared.report import Status
from shared.settings import Settings
from shared.signal_typed import decode_frame
from shared.stopping import Stopping
from shared.store.connect import connect
from shared.store.fleet import RefusalTally, publish_status, withdraw_status
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.store.journal import Journal, journal_summary, unresolved_slots
from shared.store.ratebudget import RateBudget
from shared.store.registry import Registry
from shared.store.reports import ReportPublisher, count_spooled
from shared.store.rollup import RollupWriter
from supervisor.admission import Admission
from supervisor.control import ControlWatcher
from supervisor.dispatch import WorkerPool
from supervisor.metrics import MetricsServer, StatusValue, SupervisorMetrics
from supervisor.redis_watch import RedisWatch
from supervisor.refusal_trail import RefusalTrail
from supervisor.reconcile import Reconciler, journal_report
from supervisor.server import SignalServer
from worker.inline import InlinePool

__all__ = ["Supervisor"]

log = structlog.get_logger(__name__)
# Outcomes in which orders traded, so the triangle's books moved: later signals need newer books.
_TRADED = frozenset((Status.FILLED, Status.UNWOUND, Status.STRANDED))
# A failed release is retried after 50 ms, doubling to at most 500 ms: freed within half a
# second (plus the Redis timeout) of Redis answering again.
_RELEASE_RETRY_FIRST_S = 0.05
_RELEASE_RETRY_MAX_S = 0.5
_STOP_RELEASE_WAIT_S = 5.0
_REDIS_DOWN_REPEAT_S = 10.0
ROLLUP_INTERVAL_S = 5.0  # a minute's roll-up lands 2-7 s after it ends; the lease (15 s) outlives 2 misses
# The installed distribution's version (pyproject.toml), never a second copy of it.
VERSION = package_version("trident")


class Supervisor:
    """Start with `await start()`, stop with `await stop()`; `wait_idle()` waits for in-flight to drain."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        clock.set_skew(settings.clock_skew_ms)
        self.host = settings.host_id or socket.gethostname()
        self.name = f"{self.host}:{os.getpid()}"
        self.redis = connect(settings, "supervisor")
        self.budget = RateBudget(self.redis, limit=settings.rate_budget_limit, window_ms=settings.rate_budget_window_ms)
        self.registry = Registry(self.redis, owner=self.name, ttl_ms=settings.lease_ttl_ms, budget=self.budget,
                                 retention_ms=settings.correlation_retention_s * 1000,
                                 wait_replicas=settings.redis_wait_replicas,
                                 wait_timeout_ms=settings.redis_wait_timeout_ms)
        pool_class: PoolFactory = WorkerPool if settings.workers > 0 else InlinePool  # 0: execute in this loop
        self.pool = pool_class(settings, settings.workers, self.host, self._on_done, self._on_lost)
        self.admission = Admission(self.registry, self.pool, settings.mode, self.budget,
                                   book_skew_ms=settings.book_skew_ms,
                                   require_book_ts=settings.missing_book_ts == "refuse")
        self.server = SignalServer(
            settings.socket_path, settings.max_frame_bytes, self._on_frame, self._on_bad_frame, settings.allowed_uids,
            decode=decode_frame,  # msgpack frames: typed decode from the bytes (shared.signal_typed)
        )
        self.publisher = ReportPublisher(
            self.redis, settings.report_stream, settings.report_maxlen, Path(settings.spool_dir) / "supervisor.spool",
            settings.correlation_retention_s * 1000,
        )
        self.control = ControlWatcher(self.redis, self.admission, self.pool)
        self.rollup = RollupWriter(self.redis, self.name, source=settings.report_stream)
        self.redis_watch = RedisWatch(self.redis, settings.redis_url)
        self.refusal_trail = RefusalTrail(self.redis, self.name)
        self.admission.trail = self.refusal_trail.record
        self.journal = Journal(self.redis)
        # Live mode only: paper executions place no orders, so they have nothing to reconcile.
        self.exchange_session = make_session(settings.http_timeout_s) if settings.mode == "live" else None
        self.reconciler = (
            Reconciler(settings, KucoinRest(self.exchange_session, settings.exchange_url, settings.credentials,
                                            timeout_s=settings.http_timeout_s),
                       self.journal, self.registry, self.budget, self.publisher, self.host,
                       lambda cid, token, outcome: self._spawn_release(cid, token, 0, outcome))
            if self.exchange_session is not None else None
        )
        self.metrics = SupervisorMetrics(self.snapshot)
        self.metrics_server = (
            MetricsServer(self.metrics.render, settings.metrics_host, settings.metrics_port)
            if settings.metrics_port else None
        )
        self.metrics_address = "off"
        self.refusal_tally = RefusalTally()
        self.outcomes: Counter[str] = Counter()
        self.started_ns = time.monotonic_ns()
        self.budget_remaining = settings.rate_budget_limit  # refreshed by the status loop every second
        self._background: list[asyncio.Task[None]] = []
        self.stopping = Stopping()  # ends the background loops even where a cancel gets lost
        self._releases: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.frames = 0  # frames read from every connection, good or bad
        self._frame_seen = asyncio.Event()

    async def start(self) -> None:
        await self.redis_watch.check()
        await self.control.refresh()
        await self.pool.start()
        await self._start_metrics()
        await self.server.start()
        self._background = [
            asyncio.create_task(self._renew_loop()),
            asyncio.create_task(self._sweep_loop()),
            asyncio.create_task(self.control.run(self.stopping)),
            asyncio.create_task(self._status_loop()),
            asyncio.create_task(self.publisher.run_replayer(self.stopping)),
            asyncio.create_task(self._rollup_loop()),
            asyncio.create_task(self.redis_watch.run(self.stopping)),
            asyncio.create_task(self.refusal_trail.run(self.stopping)),
        ]
        if self.reconciler is not None:
            self._background.append(asyncio.create_task(self.reconciler.run(self.stopping)))
        log.info("supervisor_started", mode=self.settings.mode, workers=self.settings.workers,
                 socket=self.settings.socket_path, name=self.name, metrics=self.metrics_address)

    async def _start_metrics(self) -> None:
        """Metrics are for watching, not trading: a taken port is logged and shown in the status
        hash (and fails `trident ctl check`) but does not stop the service."""
        if self.metrics_server is None:
            return
        try:
            await self.metrics_server.start()
        except OSError as exc:
            where = f"{self.settings.metrics_host}:{self.settings.metrics_port}"
            self.metrics_address = f"unavailable ({where}: {exc.strerror})"
            log.error("metrics_unavailable", error=str(exc), port=self.settings.metrics_port)
            return
        self.metrics_address = self.metrics_server.address

    async def stop(self) -> None:
        """Stop intake, let workers finish and report, release leases, close connections."""
        await self.server.stop()
        await self.pool.stop()
        if self._releases:  # bounded: a release still retrying against a dead Redis expires by TTL
            _, retrying = await asyncio.wait(self._releases, timeout=_STOP_RELEASE_WAIT_S)
            for task in retrying:
                task.cancel()
        self.stopping.set()
        for task in self._background:
            task.cancel()
        # bounded: a loop that lost its cancel ends at its next pause (see shared.stopping)
        _, stuck = await asyncio.wait(self._background, timeout=2.0) if self._background else (set(), set())
        if stuck:
            log.error("background_tasks_ignored_cancel", tasks=[task.get_coro().__qualname__ for task in stuck])
        await self.publisher.replay()
        with contextlib.suppress(RedisError, OSError):  # else the lease expires and another takes over
            await self.rollup.resign()
        try:
            await self.refusal_trail.flush()
        except (RedisError, OSError) as exc:
            log.warning("refusal_trail_unwritten", refusals=self.refusal_trail.pending, error=str(exc))
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        try:
            await withdraw_status(self.redis, self.name, self.settings.workers,
                                  self.refusal_tally.pending(self.admission.refusals))
        except (RedisError, OSError) as exc:  # the keys expire by their TTL anyway
            log.debug("status_withdraw_failed", error=str(exc))
        if self.exchange_session is not None:
            await self.exchange_session.close()
        await self.redis.aclose()
        log.info("supervisor_stopped", outcomes=dict(self.outcomes))

    async def wait_idle(self, timeout_s: float) -> None:
        """Wait until no execution is in flight (used by the demo and tests, not by production)."""
        async with asyncio.timeout(timeout_s):
            while self.admission.in_flight:
                self._idle.clear()
                await self._idle.wait()
            while self._releases:
                await asyncio.gather(*self._releases, return_exceptions=True)

    async def wait_frames(self, count: int, timeout_s: float) -> None:
        """Wait until `count` frames have been read and admitted or refused (demo and tests)."""
        async with asyncio.timeout(timeout_s):
            while self.frames < count:
                self._frame_seen.clear()
                await self._frame_seen.wait()

    def cancel(self, correlation_id: str) -> bool:
        """Ask the worker running this execution to stop at its next step boundary."""
        return self.pool.cancel(correlation_id)

    # --- callbacks from the pool and the server -------------------------------------------

    async def _on_frame(self, raw: object, received_ns: int) -> None:
        try:
            await self.admission.admit(raw, received_ns)
        except Exception:  # a bug in admission must cost one signal, not the connection
            log.exception("admission_failed")
            self.admission.refusals["internal_error"] += 1
        self.frames += 1
        self._frame_seen.set()

    def _on_bad_frame(self, reason: str, detail: str) -> None:
        self.admission.refusals[reason] += 1
        self.frames += 1
        self._frame_seen.set()
        log.warning("bad_frame", reason=reason, detail=detail[:200])
        self.refusal_trail.record_bad_frame(reason, detail)

    def _on_done(self, done: Done) -> None:
        self.outcomes[done.status] += 1
        self.metrics.observe(done)
        entry = self.admission.finish(done.correlation_id)
        if entry is not None:
            last_trade_ms = done.ts_ms if done.status in _TRADED else 0
            self._spawn_release(done.correlation_id, entry.token, last_trade_ms, done.status)
        if not self.admission.in_flight:
            self._idle.set()

    async def _on_lost(self, worker: int, correlation_ids: list[str], reason: str) -> None:
        for cid in correlation_ids:
            entry = self.admission.finish(cid)
            fields, known, unresolved = await self._dead_worker_journal(cid)
            report = journal_report(cid, fields, Status.LOST, self.settings.mode, self.host, f"{reason}; {known}",
                                    fill_model="exchange" if fields else self.settings.fill_model)
            if not report.triangle and entry is not None:
                report = replace(report, triangle=entry.triangle)
            await self.publisher.publish(report)
            self.outcomes[Status.LOST] += 1
            if fields.get("state") == "running" and not unresolved:
                await self._close_journal(cid)
            if entry is None:
                continue
            if unresolved:
                # Its orders may still be at the exchange: another execution on these pairs now
                # would be two executions on one pair. The lease, no longer renewed, is kept until
                # reconciliation resolves them (then released), or expires by TTL.
                log.warning("lease_held_for_unresolved_orders", correlation_id=cid,
                            ttl_ms=self.settings.lease_ttl_ms)
                if self.reconciler is not None:
                    self.reconciler.hold(cid, entry.token)
            else:
                self._spawn_release(cid, entry.token, 0, Status.LOST)
        if not self.admission.in_flight:
            self._idle.set()

    async def _dead_worker_journal(self, cid: str) -> tuple[dict[str, str], str, bool]:
        """A dead worker's execution journal (live executions only), one line of what its orders
        did, and whether any may still be unresolved at the exchange (placing, unknown, unreadable)."""
        try:
            fields = await self.journal.read(cid)
        except (RedisError, OSError) as exc:
            return {}, f"journal unreadable ({exc}): resolve its orders by clientOid", self.settings.mode == "live"
        if not fields:
            return {}, "no journal: no order was placed (paper executions place none)", False
        return fields, "journal: " + (journal_summary(fields) or "no order started"), bool(unresolved_slots(fields))

    async def _close_journal(self, cid: str) -> None:
        """A dead worker's journal whose orders are all known: closed (done, lost, TTL), not left running."""
        try:
            await self.journal.close(cid, str(Status.LOST))
        except (RedisError, OSError) as exc:  # reconciliation closes it once Redis answers
            log.warning("journal_close_failed", correlation_id=cid, error=str(exc))

    def _spawn_release(self, cid: str, token: int, last_trade_ms: int, outcome: str) -> None:
        task = asyncio.create_task(self._release(cid, token, last_trade_ms, outcome))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release(self, cid: str, token: int, last_trade_ms: int, outcome: str) -> None:
        """Release, retrying a Redis failure with backoff until Redis answers or the lease's TTL is
        past (then it expires on its own): a short outage must not block triangles for a whole TTL.
        The token fences every attempt, so a retry can never free a lease someone else now holds."""
        give_up_at = time.monotonic() + self.settings.lease_ttl_ms / 1000
        delay_s = _RELEASE_RETRY_FIRST_S
        while True:
            try:
                if not await self.registry.release(cid, token, last_trade_ms, outcome):
                    log.warning("lease_release_stale", correlation_id=cid, token=token)
                elif delay_s > _RELEASE_RETRY_FIRST_S:
                    log.info("lease_released_after_retry", correlation_id=cid)
                return
            except (RedisError, OSError) as exc:
                if time.monotonic() + delay_s > give_up_at:  # it expires by TTL; isolation holds until then
                    log.warning("lease_release_failed", correlation_id=cid, error=str(exc))
                    return
                log.warning("lease_release_retrying", correlation_id=cid, error=str(exc), in_s=delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, _RELEASE_RETRY_MAX_S)

    # --- background loops -------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        """Renew live leases at a third of their TTL, so a lease outlives its owner by one TTL at most."""
        interval_s = self.settings.lease_ttl_ms / 3000
        while await self.stopping.pause(interval_s):
            for cid, entry in list(self.admission.in_flight.items()):
                try:
                    if not await self.registry.renew(cid, entry.token):
                        log.error("lease_lost_while_running", correlation_id=cid)
                except (RedisError, OSError) as exc:
                    log.warning("lease_renew_failed", correlation_id=cid, error=str(exc))
                    break

    async def _sweep_loop(self) -> None:
        """Drop leases whose owner stopped renewing (a dead supervisor elsewhere in the fleet)."""
        while await self.stopping.pause(self.settings.lease_ttl_ms / 1000):
            try:
                expired = await self.registry.sweep()
            except (RedisError, OSError) as exc:
                log.debug("lease_sweep_failed", error=str(exc))
                continue
            if expired:
                log.warning("leases_expired", lease_ids=expired)

    async def _rollup_loop(self) -> None:
        """Every 5 s: hold or try the fleet's roll-up lease and, when held, roll finished minutes."""
        while not self.stopping.is_set():
            try:
                if await self.rollup.step():
                    log.debug("rollup_written")
            except (RedisError, OSError) as exc:
                log.debug("rollup_failed", error=str(exc))
            await self.stopping.pause(ROLLUP_INTERVAL_S)

    def snapshot(self) -> dict[str, StatusValue]:
        """What this supervisor is and has counted, counters as numbers: the metrics read this."""
        fields: dict[str, StatusValue] = {
            "name": self.name, "host": self.host, "pid": os.getpid(), "mode": self.settings.mode,
            "version": VERSION, "workers": self.settings.workers, "workers_alive": self.pool.alive,
            "in_flight": len(self.admission.in_flight), "admitted": self.admission.admitted,
            "uptime_s": (time.monotonic_ns() - self.started_ns) / 1e9,
            "respawns": self.pool.respawns, "socket": self.settings.socket_path,
            "metrics": self.metrics_address, **self.control.status_fields(),
        }
        fields["rate_budget_remaining"] = self.budget_remaining
        spools = ["supervisor", *(f"worker-{i}" for i in range(self.settings.workers))] if self.settings.workers \
            else ["supervisor", "inline"]  # the files worker.entry.spool_path and worker.inline write
        fields.update({f"spooled:{spool}": n for spool, n in count_spooled(Path(self.settings.spool_dir), spools).items()})
        fields.update({f"refused:{reason}": n for reason, n in self.admission.refusals.items()})
        fields.update({f"outcome:{status}": n for status, n in self.outcomes.items()})
        return fields

    def status(self) -> dict[str, str]:
        """The snapshot as the flat strings of the status hash (and `trident ctl status`)."""
        return {name: f"{value:.1f}" if isinstance(value, float) else str(value)
                for name, value in self.snapshot().items()}

    async def _status_loop(self) -> None:
        """Publish the status hash every second; it is also the service's Redis heartbeat, so a
        Redis that stops answering is said at ERROR at once and every 10 s while it lasts."""
        unreachable_since: float | None = None
        last_said = 0.0
        while not self.stopping.is_set():
            try:
                self.budget_remaining = await self.budget.remaining_now()
                pending = self.refusal_tally.pending(self.admission.refusals)
                sent_ms = clock.wall_ms()
                redis_now = await publish_status(self.redis, self.name, self.status(), pending,
                                                 tally=self.refusal_tally)
                clock.learn_redis_offset(redis_now, sent_ms, clock.wall_ms())
                if unreachable_since is not None:
                    log.warning("redis_reachable_again", down_s=round(time.monotonic() - unreachable_since, 1))
                    unreachable_since = None
            except (RedisError, OSError) as exc:
                if self.stopping.is_set():
                    return  # a cancel the Redis client turned into an error: not an outage
                now = time.monotonic()
                if unreachable_since is None or now - last_said >= _REDIS_DOWN_REPEAT_S:
                    unreachable_since = unreachable_since or now
                    last_said = now
                    log.error("redis_unreachable", error=str(exc), down_s=round(now - unreachable_since, 1),
                              effect="every signal is refused registry_unavailable; reports spool")
            await self.stopping.pause(1.0)
