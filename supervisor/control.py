"""Operator control from Redis: pause, halt and per-execution cancel, applied to this supervisor.

Everything the operator sets is *state* in Redis, never a message, so a supervisor that was
restarting or cut off from Redis when the command was typed still obeys it once it can read:

- ``paused`` in ``trident:{reg}:config`` is read by the acquire Lua on every signal (that is what
  binds the fleet); this watcher only caches it so a paused supervisor refuses without a
  round trip.
- ``halt`` in the same hash (set together with ``paused``: ``HSET 'trident:{reg}:config' paused 1
  halt 1``) makes every supervisor cancel each execution it has in flight, and keeps doing so
  while it is set. A halt also means paused: a supervisor that sees ``halt`` without ``paused``
  writes ``paused 1`` itself. Resuming clears both (``paused 0 halt 0``).
- ``trident:{reg}:cancel`` holds one field per correlation id to cancel. The supervisor running
  that execution sends ``Cancel`` to its worker (checked between steps) and deletes the field;
  a field naming no live lease is deleted by whoever sees it (nothing to cancel anywhere).
- every field of the config hash is checked as it is read (``shared.store.registry.config_problem``):
  while one is invalid (``paused yes``, ``slots abc``, ``cap:USDT 1e3``) admission refuses every
  signal ``bad_config``, and the watcher logs an ERROR naming the field and value when that starts.

Why a short poll and not a blocking primitive: a hash has no blocking read, keyspace
notifications need server configuration and are lost while disconnected, and a stream or list
read would turn state back into a message. One pipelined HGETALL of the config hash (a few
fields) and one of a hash that is almost always empty, every 100 ms, costs a few µs of Redis
time; a human's cancel arrives within a tenth of a second, well inside any live execution.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from shared.codec import as_text
from shared.pool import Pool
from shared.stopping import Stopping
from shared.store import keys
from shared.store.registry import config_problem
from supervisor.admission import Admission

__all__ = ["ControlWatcher", "POLL_INTERVAL_S"]

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 0.1




def _flag(value: bytes | str | None) -> bool:
    """The registry's reading of a flag: absent, "0" or "" is off; anything else is on (fail safe)."""
    return value is not None and as_text(value) not in ("0", "")


class ControlWatcher:
    """Polls the operator's state and applies it; `run()` is a background task of the supervisor."""

    def __init__(self, redis: aioredis.Redis, admission: Admission, pool: Pool[Any],
                 interval_s: float = POLL_INTERVAL_S) -> None:
        self._redis = redis
        self._admission = admission
        self._pool = pool
        self._interval_s = interval_s
        self.paused = False
        self.halted = False
        self.redis_reachable = False  # the last refresh read Redis (polled every interval_s)
        self._halt_cancelled: set[str] = set()  # cancels already sent for the current halt

    async def run(self, stopping: Stopping) -> None:
        while await stopping.pause(self._interval_s):
            await self.refresh()

    async def refresh(self) -> None:
        """Read config flags and cancel requests once and act on them; Redis errors are logged."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.CONFIG)
                pipe.hgetall(keys.CANCEL)
                config, requests = await pipe.execute()
            self.redis_reachable = True
            raw = {as_text(name): as_text(value) for name, value in config.items()}
            self._check_config(raw)
            self.paused, self.halted = _flag(raw.get("paused")), _flag(raw.get("halt"))
            self._admission.paused = self.paused or self.halted
            if self.halted:
                await self._apply_halt()
            else:
                self._halt_cancelled.clear()
            if requests:
                await self._apply_cancels(as_text(cid) for cid in requests)
        except (RedisError, OSError) as exc:  # nothing is admitted without Redis anyway
            self.redis_reachable = False
            log.debug("control_refresh_failed", error=str(exc))

    def _check_config(self, raw: dict[str, str]) -> None:
        """Refuse every signal `bad_config` while a field is invalid; an ERROR when that starts or changes."""
        problem = config_problem(raw)
        if problem == self._admission.bad_config:
            return
        self._admission.bad_config = problem
        if problem is None:
            log.info("registry_config_valid", effect="signals are admitted again")
        else:
            log.error("registry_config_invalid", field=problem.field, value=problem.value, problem=problem.why,
                      detail=problem.detail, effect="every signal is refused bad_config until it is fixed")

    async def _apply_halt(self) -> None:
        if not self.paused:
            await self._redis.hset(keys.CONFIG, "paused", "1")
            self.paused = True
            log.warning("halt_implies_pause")
        in_flight = set(self._admission.in_flight)
        self._halt_cancelled &= in_flight
        for cid in in_flight - self._halt_cancelled:
            if self._pool.cancel(cid):
                log.warning("execution_cancelled", correlation_id=cid, by="halt")
            self._halt_cancelled.add(cid)

    async def _apply_cancels(self, requested: Iterable[str]) -> None:
        handled: list[str] = []
        elsewhere: list[str] = []
        for cid in requested:
            if cid in self._admission.in_flight:
                if self._pool.cancel(cid):
                    log.info("execution_cancelled", correlation_id=cid, by="cancel_request")
                handled.append(cid)
            else:
                elsewhere.append(cid)
        if elsewhere:  # another supervisor's, or finished: drop only those no lease holds
            leases = await self._redis.hmget(keys.LEASE_DATA, elsewhere)
            handled.extend(cid for cid, lease in zip(elsewhere, leases) if lease is None)
        if handled:
            await self._redis.hdel(keys.CANCEL, *handled)

    def status_fields(self) -> dict[str, int]:
        """For the status snapshot: what this supervisor believes the operator asked for (1 or 0)."""
        return {"paused": int(self.paused or self.halted), "halted": int(self.halted),
                "redis_reachable": int(self.redis_reachable)}
