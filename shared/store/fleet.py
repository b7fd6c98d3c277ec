"""Liveness in Redis, readable with plain redis-cli: supervisor status hashes and worker health keys.

As in arq's health check, liveness is a key with a TTL that its owner keeps rewriting: if the
owner dies, hangs, or loses Redis, the key expires by itself and nobody has to clean up.

- Each supervisor writes ``trident:status:<host>:<pid>`` (a flat hash, see `Supervisor.status()`)
  every second with a 5 s TTL, and its name into the zset ``trident:fleet`` (score = epoch ms),
  the index `trident ctl status` reads instead of scanning keys.
- Refusal counts also go, as increments, into the fleet-wide hash ``trident:refusals`` (reason ->
  count): Grafana's Redis data source can chart one known key, not every supervisor's hash.
- Each worker writes ``trident:health:<host>:<pid>:w<index>`` (one human-readable line) every
  second with a 3 s TTL (`write_health_forever`, run by `worker.entry`).

`read_fleet` and `fleet_problems` are what `trident ctl status` / `trident ctl check` use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from shared import clock
from shared.codec import as_text
from shared.stopping import Stopping
from shared.store import keys
from shared.store.connect import is_cluster

__all__ = [
    "STATUS_TTL_MS",
    "FLEET_FORGET_MS",
    "RefusalTally",
    "publish_status",
    "withdraw_status",
    "redis_now_ms",
    "write_health_forever",
    "FleetMember",
    "read_fleet",
    "fleet_problems",
]

log = structlog.get_logger(__name__)
STATUS_TTL_MS = 5000
FLEET_FORGET_MS = 60_000  # a name not seen for this long leaves the fleet index
# arq-style liveness: a worker rewrites its key every interval; it expires by itself if that process stops.
HEALTH_INTERVAL_S = 1.0
HEALTH_TTL_MS = 3000


class RefusalTally:
    """What this supervisor refused since its last successful publish, to add to ``trident:refusals``."""

    def __init__(self) -> None:
        self._published: Counter[str] = Counter()

    def pending(self, refused: Mapping[str, int]) -> dict[str, int]:
        return {reason: count - self._published[reason] for reason, count in refused.items()
                if count > self._published[reason]}

    def confirm(self, sent: Mapping[str, int]) -> None:
        """Call once the increments are in Redis (a failed publish retries them next time)."""
        self._published.update(sent)


async def redis_now_ms(client: aioredis.Redis) -> int:
    """The Redis server's clock in epoch ms: the one clock every host's entries are compared on."""
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def publish_status(client: aioredis.Redis, name: str, fields: Mapping[str, str],
                         refusals: Mapping[str, int] | None = None, tally: RefusalTally | None = None) -> int:
    """The status hash with its TTL, this name in the fleet index, old names out, and new refusals
    added to the fleet's tally, which `tally` confirms as soon as they are in: never counted twice.

    Times are Redis's (``TIME``), not this host's: the index drops names by comparing scores
    that supervisors on other hosts wrote, so a host whose clock runs ahead must not evict them.
    On one Redis this is one MULTI. On a cluster the three keys hash to different slots and a
    MULTI may not span slots, so each key gets its own MULTI, the refusals first: they are the
    only part that is not idempotent, and they are confirmed the moment their EXEC answers.
    Returns the Redis time it used (the caller's measure of its offset to Redis's clock).
    """
    now_ms = await redis_now_ms(client)
    key = keys.STATUS_PREFIX + name
    increments = dict(refusals or {})
    if is_cluster(client):
        if increments:
            await _add_refusals(client, increments)
            if tally is not None:
                tally.confirm(increments)
        async with client.pipeline(transaction=True) as pipe:
            _queue_status(pipe, key, fields, now_ms)
            await pipe.execute()
        async with client.pipeline(transaction=True) as pipe:
            _queue_fleet_entry(pipe, name, now_ms)
            await pipe.execute()
        return now_ms
    async with client.pipeline(transaction=True) as pipe:
        _queue_status(pipe, key, fields, now_ms)
        _queue_fleet_entry(pipe, name, now_ms)
        _queue_refusals(pipe, increments)
        await pipe.execute()
    if tally is not None:
        tally.confirm(increments)
    return now_ms


_Pipeline = Union["aioredis.client.Pipeline", "aioredis.cluster.ClusterPipeline"]


def _queue_status(pipe: _Pipeline, key: str, fields: Mapping[str, str], now_ms: int) -> None:
    pipe.hset(key, mapping={**fields, "heartbeat_ms": str(now_ms)})
    pipe.pexpire(key, STATUS_TTL_MS)


def _queue_fleet_entry(pipe: _Pipeline, name: str, now_ms: int) -> None:
    pipe.zadd(keys.FLEET, {name: now_ms})
    pipe.zremrangebyscore(keys.FLEET, "-inf", now_ms - FLEET_FORGET_MS)


def _queue_refusals(pipe: _Pipeline, increments: Mapping[str, int]) -> None:
    for reason, count in increments.items():
        pipe.hincrby(keys.REFUSALS, reason, count)


async def _add_refusals(client: aioredis.Redis, increments: Mapping[str, int]) -> None:
    """The refusal increments as one MULTI of their own (a cluster's: one key, one slot)."""
    async with client.pipeline(transaction=True) as pipe:
        _queue_refusals(pipe, increments)
        await pipe.execute()


async def withdraw_status(client: aioredis.Redis, name: str, workers: int,
                          refusals: Mapping[str, int] | None = None) -> None:
    """A clean stop leaves no ghost (status hash, index entry, worker keys) and no refusal untallied.

    On a cluster the refusals are one MULTI on their own key and the deletions a plain pipeline
    (redis-py sends each to its slot's node): leaving is idempotent, counting is not.
    """
    ghosts = [keys.STATUS_PREFIX + name, *(keys.worker_health_key(name, i) for i in range(workers))]
    if is_cluster(client):
        if refusals:
            await _add_refusals(client, refusals)
        async with client.pipeline(transaction=False) as pipe:
            for ghost in ghosts:
                pipe.delete(ghost)
            pipe.zrem(keys.FLEET, name)
            await pipe.execute()
        return
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(*ghosts)
        pipe.zrem(keys.FLEET, name)
        _queue_refusals(pipe, refusals or {})
        await pipe.execute()


async def write_health_forever(client: aioredis.Redis, key: str, line: Callable[[], str],
                               stopping: Stopping) -> None:
    """A worker's health key, rewritten every HEALTH_INTERVAL_S until the worker stops. A failed
    write is not retried early: the key expiring is the signal `ctl check` reads."""
    while not stopping.is_set():
        try:
            sent_ms = clock.wall_ms()  # the same beat measures this process's offset to Redis's clock
            clock.learn_redis_offset(await redis_now_ms(client), sent_ms, clock.wall_ms())
            await client.set(key, line(), px=HEALTH_TTL_MS)
        except (RedisError, OSError) as exc:
            log.debug("health_write_failed", error=str(exc))
        await stopping.pause(HEALTH_INTERVAL_S)


@dataclass(frozen=True, slots=True)
class FleetMember:
    """One live supervisor: its status hash and each configured worker's health line (None: expired)."""

    name: str
    status: dict[str, str]
    workers: dict[int, str | None] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.status.get("host", self.name.rsplit(":", 1)[0])



def _int(fields: Mapping[str, str], name: str) -> int:
    try:
        return int(fields.get(name, "0"))
    except ValueError:
        return 0


async def read_fleet(client: aioredis.Redis) -> list[FleetMember]:
    """Every supervisor whose status hash is alive, with its workers' health lines."""
    names = [as_text(name) for name in await client.zrange(keys.FLEET, 0, -1)]
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(keys.STATUS_PREFIX + name)
        statuses = [{as_text(k): as_text(v) for k, v in raw.items()} for raw in await pipe.execute()]
    live = [(name, status) for name, status in zip(names, statuses) if status]
    async with client.pipeline(transaction=False) as pipe:
        for name, status in live:
            for index in range(_int(status, "workers")):
                pipe.get(keys.worker_health_key(name, index))
        lines = iter(await pipe.execute())
    members = []
    for name, status in live:
        workers = {}
        for index in range(_int(status, "workers")):
            line = next(lines)
            workers[index] = None if line is None else as_text(line)
        members.append(FleetMember(name, status, workers))
    return members


def fleet_problems(members: Sequence[FleetMember], *, min_supervisors: int = 1, host: str | None = None) -> list[str]:
    """What is wrong, one line each; empty means healthy. `host` restricts the check to one machine."""
    if host is not None:
        members = [m for m in members if m.host == host]
    problems = []
    if len(members) < min_supervisors:
        where = f" on {host}" if host is not None else ""
        problems.append(f"{len(members)} live supervisor(s){where}, expected at least {min_supervisors}")
    for member in members:
        alive, configured = _int(member.status, "workers_alive"), _int(member.status, "workers")
        if alive < configured:
            problems.append(f"{member.name}: {alive}/{configured} workers alive")
        silent = sorted(index for index, line in member.workers.items() if line is None)
        if silent:
            problems.append(f"{member.name}: no health key from worker(s) {', '.join(map(str, silent))}")
        if member.status.get("metrics", "").startswith("unavailable"):
            problems.append(f"{member.name}: metrics endpoint {member.status['metrics']}")
    return problems
