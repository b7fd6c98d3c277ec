"""The live execution journal: one Redis hash per execution, written before every order and after it.

Why: a live triangle moves money in several steps, and the process running it can die between
any two. The journal (``trident:{reg}:journal:<correlation id>``) says, at every moment, which
orders were about to be placed (their deterministic clientOid, pair, side and amount) and what
each one did once settled, so an operator — or a restarted worker — can resolve every order by
clientOid without guessing, and an execution can never be started twice for one correlation id.

Fields are flat strings (``redis-cli HGETALL`` reads them): ``state`` (running | done),
``status``, ``started_ms``, ``updated_ms``, ``triangle``, and per order a prefix — ``leg0_`` ..
``leg2_``, ``unwind1_``/``unwind2_`` — with ``state`` (placing | done | rejected | unknown),
``client_oid``, ``pair``, ``side``, ``amount``, ``amount_kind`` (size | funds), and once
settled ``order_id``, ``filled_size``, ``filled_funds``, ``fee``, ``fee_currency``, ``error``.
A running journal has no TTL; a finished one expires after ``ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis.asyncio as aioredis

from shared.store.keys import JOURNAL_PREFIX

__all__ = ["Journal", "journal_key", "journal_summary"]

DEFAULT_TTL_S = 7 * 24 * 3600

# Create the hash only if it does not exist: one round trip, and a second execution of the same
# correlation id finds the first one's journal instead of overwriting it.
_CREATE_IF_ABSENT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


def journal_key(correlation_id: str) -> str:
    return JOURNAL_PREFIX + correlation_id


def _now_ms() -> str:
    return str(int(time.time() * 1000))


class Journal:
    """Reads and writes execution journals; every write stamps `updated_ms`."""

    def __init__(self, redis: aioredis.Redis, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._create = redis.register_script(_CREATE_IF_ABSENT)

    async def begin(self, correlation_id: str, fields: Mapping[str, str]) -> bool:
        """Open the journal with `fields` (state running); False if this execution already has one."""
        now = _now_ms()
        entry = {**fields, "state": "running", "started_ms": now, "updated_ms": now}
        args = [part for pair in entry.items() for part in pair]
        return bool(await self._create(keys=[journal_key(correlation_id)], args=args))

    async def record(self, correlation_id: str, fields: Mapping[str, str]) -> None:
        await self._redis.hset(journal_key(correlation_id), mapping={**fields, "updated_ms": _now_ms()})

    async def finish(self, correlation_id: str, status: str, fields: Mapping[str, str]) -> None:
        """Final state, then the TTL: a finished journal is history, kept `ttl_s`."""
        key = journal_key(correlation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={**fields, "state": "done", "status": status, "updated_ms": _now_ms()})
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def read(self, correlation_id: str) -> dict[str, str]:
        raw = await self._redis.hgetall(journal_key(correlation_id))
        return {key.decode() if isinstance(key, bytes) else key: value.decode() if isinstance(value, bytes) else value
                for key, value in raw.items()}


_ORDER_PREFIXES = ("leg0_", "leg1_", "leg2_", "unwind1_", "unwind2_")


def journal_summary(fields: Mapping[str, str]) -> str:
    """One line of what a journal says each order did, for the `lost` report of a dead worker.

    Orders still `placing` or `unknown` are named with their clientOid: they must be resolved by
    querying it (never by placing again).
    """
    parts = []
    for prefix in _ORDER_PREFIXES:
        state = fields.get(prefix + "state")
        if state is None:
            continue
        order = f"{prefix[:-1]} {fields.get(prefix + 'side', '')} {fields.get(prefix + 'pair', '')} {state}"
        if state == "done":
            order += (f" filled_size={fields.get(prefix + 'filled_size', '')}"
                      f" filled_funds={fields.get(prefix + 'filled_funds', '')}"
                      f" fee={fields.get(prefix + 'fee', '')} {fields.get(prefix + 'fee_currency', '')}".rstrip())
        elif state in ("placing", "unknown"):
            order += f" (resolve clientOid {fields.get(prefix + 'client_oid', '')})"
        parts.append(order)
    return "; ".join(parts)
