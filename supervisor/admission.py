"""Admission: the hot path from a decoded frame to a dispatched job, or a refusal with a reason.

Order of checks: validate (typed Signal) → local fast checks (paper/live guard, book time present
and not ahead of this clock by more than `book_skew_ms`, a config field known to be invalid
(`bad_config`), cached pause, a
rate budget known to be spent) → one atomic registry call (slot, isolation, staleness, capital,
then the triangle's weight from the fleet's exchange rate budget) → least-loaded worker. Every exit is
counted by reason; a Redis that cannot answer refuses with `registry_unavailable` (fail closed).
Admission alone writes the table of admitted executions (`in_flight`, from dispatch until
`finish`); the supervisor renews, releases and cancels from it.
Refusals of valid signals log at debug: they are routine under load, and logging above debug on
this path costs more than the admission itself. The two that mean the fleet refuses everything
(`registry_unavailable`, `bad_config`) log at ERROR too, at most once per 10 s per reason.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from redis.exceptions import RedisError

from shared import clock
from shared.channel import Job
from shared.pool import Pool
from shared.signal import Signal, SignalError, parse_signal
from shared.store.ratebudget import LIVE_TRIANGLE_WEIGHT, TRIANGLE_WEIGHT, RateBudget
from shared.store.registry import ConfigProblem, Grant, LeaseRequest, Registry

__all__ = ["Admission", "InFlight", "Trail", "leg_spends"]

# Where each refusal also goes (supervisor/refusal_trail.py): reason, detail, correlation id, signal.
Trail = Callable[[str, str, str, "Signal | None"], None]

log = structlog.get_logger(__name__)
# Refusals that stop the whole fleet until a person acts: ERROR, rate-limited.
_ALARMS = frozenset(("registry_unavailable", "bad_config"))
_ALARM_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class InFlight:
    """An admitted execution the supervisor holds a lease for (keyed by its correlation id)."""

    token: int  # the lease's fencing token, for renew and release
    triangle: tuple[str, ...]  # for the report of an execution whose worker died


class Admission:
    """Turns frames into jobs. `paused` is a cache of the registry flag (the Lua re-checks it)."""

    def __init__(self, registry: Registry, pool: Pool[Any], mode: str, budget: RateBudget | None = None, *,
                 book_skew_ms: int = 2_000, require_book_ts: bool = True) -> None:
        self._registry = registry
        self._book_skew_ms = book_skew_ms
        self._require_book_ts = require_book_ts
        self._pool = pool
        self._mode = mode
        self._budget = budget
        self.paused = False
        # set by the control watcher (supervisor.control) while a config field is invalid
        self.bad_config: ConfigProblem | None = None
        self.refusals: Counter[str] = Counter()
        self.admitted = 0
        self._in_flight: dict[str, InFlight] = {}
        self._alarmed_at: dict[str, float] = {}  # reason -> monotonic time of its last ERROR
        self.trail: Trail | None = None

    @property
    def in_flight(self) -> Mapping[str, InFlight]:
        """Admitted executions not yet finished, by correlation id (read-only: see `finish`)."""
        return self._in_flight

    def finish(self, correlation_id: str) -> InFlight | None:
        """The execution ended (done or lost): forget it; returns its entry to release the lease by,
        None if it was not in flight here."""
        return self._in_flight.pop(correlation_id, None)

    def refuse(self, reason: str, detail: str = "", correlation_id: str = "", signal: Signal | None = None) -> None:
        self.refusals[reason] += 1
        log.debug("signal_refused", reason=reason, detail=detail, correlation_id=correlation_id)
        if self.trail is not None:
            self.trail(reason, detail, correlation_id, signal)
        if reason in _ALARMS:
            self._alarm(reason, detail)

    def _alarm(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        if now - self._alarmed_at.get(reason, float("-inf")) < _ALARM_EVERY_S:
            return
        self._alarmed_at[reason] = now
        log.error("fleet_refusing_signals", reason=reason, detail=detail, refused_so_far=self.refusals[reason],
                  effect="every signal is refused until this is fixed")

    async def admit(self, raw: object, received_ns: int) -> str | None:
        """Admit one decoded frame (a `Signal` the typed intake decoded, or any object, validated
        here); returns the correlation id if dispatched, None if refused."""
        received_ms = clock.wall_ms()
        try:
            signal = raw if type(raw) is Signal else parse_signal(raw)
        except SignalError as exc:
            if exc.reason == "cancelled":  # the engine's own abort, not bad input
                self.refuse(exc.reason, exc.message, _cid_of(raw))
                return None
            self.refusals[exc.reason] += 1
            log.warning("signal_invalid", reason=exc.reason, detail=exc.message, correlation_id=_cid_of(raw))
            if self.trail is not None:
                self.trail(exc.reason, exc.message, _cid_of(raw), None)
            return None
        cid = signal.correlation_id
        if signal.live and self._mode != "live":
            self.refuse("live_in_paper", "a paper service never places a live order", cid, signal)
            return None
        # The stale rule compares book times, so a book time from the future (or none) would dodge it.
        if signal.book_ts_ms == 0 and self._require_book_ts:
            self.refuse("missing_book_ts", "book_ts_ms is required (setting missing_book_ts)", cid)
            return None
        shared_now_ms = clock.redis_ms()  # the engine is another host: compared on Redis's clock
        if signal.book_ts_ms > shared_now_ms + self._book_skew_ms:
            self.refuse("future_book", f"book_ts_ms {signal.book_ts_ms} is ahead of the Redis clock ({shared_now_ms}) "
                        f"by more than {self._book_skew_ms} ms", cid)
            return None
        if self.bad_config is not None:  # before `paused`: a flag like `paused yes` reads as paused
            self.refuse("bad_config", self.bad_config.detail, cid, signal)
            return None
        if self.paused:
            self.refuse("paused", "the fleet is paused (`trident ctl resume`)", cid, signal)
            return None
        if self._budget is not None and self._budget.exhausted():
            self.refuse("rate_budget", "the exchange rate budget of this window is spent", cid, signal)
            return None
        request = LeaseRequest(
            lease_id=cid,
            triangle_id=signal.triangle_id,
            quote=signal.primary_quote,
            pairs=signal.pairs,
            notional=signal.legs[0].order_param,  # what leg 0 spends (= starting_volume)
            book_ts_ms=signal.book_ts_ms,
            spends=leg_spends(signal) if signal.live else (),
        )
        try:
            result = await self._registry.acquire(request, LIVE_TRIANGLE_WEIGHT if signal.live else TRIANGLE_WEIGHT)
        except (RedisError, OSError) as exc:
            self.refuse("registry_unavailable", str(exc), cid, signal)
            return None
        if not isinstance(result, Grant):
            detail = f"first outcome: {result.detail}" if result.detail and result.reason == "duplicate" \
                else result.detail
            self.refuse(result.reason, detail, cid, signal)
            return None
        worker = self._pool.pick(signal.triangle_id)
        if worker is None:
            await self._release_quietly(cid, result.token)
            self.refuse("no_worker", "no worker process is ready", cid, signal)
            return None
        self._in_flight[cid] = InFlight(result.token, signal.triangle_key)
        # validated once: here; the grant says the strategy the registry claimed inventory for
        self._pool.dispatch(worker, Job(cid, signal, received_ms, received_ns, result.strategy))
        self.admitted += 1
        return cid

    async def _release_quietly(self, cid: str, token: int) -> None:
        try:
            await self._registry.release(cid, token)  # no outcome: nothing ran, the id may come again
        except (RedisError, OSError) as exc:  # the lease then expires by TTL
            log.warning("lease_release_failed", correlation_id=cid, error=str(exc))


def leg_spends(signal: Signal) -> tuple[tuple[str, Decimal], ...]:
    """What each currency's legs spend when placed at once from inventory, each sized from the
    signal (a buy's taker fee is held on top of its funds): the parallel strategy's claim."""
    spends: dict[str, Decimal] = {}
    for leg in signal.legs:
        amount = leg.order_param * (1 + leg.fee_rate) if leg.side == "buy" else leg.order_param
        spends[leg.input_currency] = spends.get(leg.input_currency, Decimal(0)) + amount
    return tuple(spends.items())


def _cid_of(raw: object) -> str:
    if isinstance(raw, Mapping):
        cid = raw.get("correlation_id")
        if isinstance(cid, str):
            return cid[:64]
    return ""
