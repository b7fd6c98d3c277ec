"""The per-minute roll-up of the report stream, for dashboards that look back hours or days.

Reading raw reports is expensive for Redis (a 2.8 KB entry each, and Redis serves one command at a
time, admissions included), so long-range panels read `trident:reports:1m` instead: one small flat
entry per minute, id `<minute start ms>-1`, with counts by status, profit and spent per primary
quote, fees per currency and latency percentiles of the filled executions. A minute is rolled once
it is over by the Redis clock (stream ids come from it), reading its raw entries in pages of 500.
A report spooled during an outage is counted in the minute it reached the stream.

One supervisor per fleet writes it: the holder of the lease `trident:rollup:leader` (SET NX PX,
renewed by its holder; a dead holder's lease expires and the next supervisor to try takes over).
Two writers can never write one minute twice: XADD with an explicit id smaller or equal to the
last is refused by Redis itself.
"""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal, InvalidOperation

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.money import fmt_decimal
from shared.report import Status
from shared.codec import as_text

__all__ = ["ROLLUP_STREAM", "LEADER_KEY", "RollupWriter", "aggregate_minute"]

ROLLUP_STREAM = "trident:reports:1m"
LEADER_KEY = "trident:rollup:leader"
MINUTE_MS = 60_000
PAGE = 500  # raw entries per XRANGE: a few ms of Redis time, never a stall
FIRST_LOOKBACK_MIN = 60  # a fresh roll-up starts an hour back, not at the start of the stream
GRACE_MS = 2_000  # a minute is rolled this long after it ends (an XADD in flight at its end)

# Take the lease when free or renew it when ours: 1 if we hold it now, 0 if someone else does.
_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
_RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# The report fields aggregate_minute reads: a minute's raw entries are held at once (12k at
# 200/s), so only these are kept — the whole 2.8 KB entries made the leader's RSS grow by
# ~160 MB over a 100k-signal bench.load run and never come back down.
_READ_FIELDS = frozenset(
    name.encode() for name in ("status", "primary_quote", "profit", "spent", "first_order_ms", "total_ms",
                               *(f"leg{leg}_{what}" for leg in range(3) for what in ("fee", "fee_currency")))
)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)


def _percentile(values: list[float], p: int) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(math.ceil(p * len(ordered) / 100), 1) - 1]


def aggregate_minute(minute_ms: int, entries: list[dict[str, str]]) -> dict[str, str]:
    """One roll-up entry: flat decimal strings, every status count present (Grafana types columns
    from the first entry), money keyed by currency (`profit_USDT`), never summed across them."""
    statuses = Counter(entry.get("status", "") for entry in entries)
    fields = {"minute_ms": str(minute_ms), "count": str(len(entries))}
    fields.update({f"count_{status}": str(statuses.get(str(status), 0)) for status in Status})
    money: dict[str, Decimal] = {}
    for entry in entries:
        quote = entry.get("primary_quote", "")
        if quote:
            for name in ("profit", "spent"):
                key = f"{name}_{quote}"
                money[key] = money.get(key, Decimal(0)) + _decimal(entry.get(name, "0"))
        for leg in range(3):
            currency = entry.get(f"leg{leg}_fee_currency", "")
            if currency:
                key = f"fees_{currency}"
                money[key] = money.get(key, Decimal(0)) + _decimal(entry.get(f"leg{leg}_fee", "0"))
    fields.update({key: fmt_decimal(value) for key, value in sorted(money.items())})
    filled = [entry for entry in entries if entry.get("status") == Status.FILLED]
    for name in ("first_order_ms", "total_ms"):
        values = [float(_decimal(entry.get(name, "0"))) for entry in filled]
        for p in (50, 99):
            fields[f"{name[:-3]}_p{p}_ms"] = f"{_percentile(values, p):.3f}"
    return fields


class RollupWriter:
    """Leader election and the minute roll-up; `step()` once every few seconds from each supervisor."""

    def __init__(self, redis: aioredis.Redis, owner: str, *, source: str = "trident:reports",
                 target: str = ROLLUP_STREAM, lease_ms: int = 15_000, maxlen: int = 60 * 24 * 31) -> None:
        self._redis = redis
        self.owner = owner
        self._source = source
        self._target = target
        self._lease_ms = lease_ms
        self._maxlen = maxlen
        self._lead = redis.register_script(_LEAD)
        self._resign = redis.register_script(_RESIGN)

    async def lead(self) -> bool:
        """Hold (take or renew) the writer's lease; False while another supervisor holds it."""
        return await self._lead([LEADER_KEY], [self.owner, self._lease_ms]) == 1

    async def resign(self) -> None:
        """Give the lease up at a clean stop, so another supervisor takes over at its next step."""
        await self._resign([LEADER_KEY], [self.owner])

    async def step(self, now_ms: int | None = None) -> int:
        """Roll every finished minute not rolled yet if this supervisor leads; minutes written."""
        return await self.roll(now_ms) if await self.lead() else 0

    async def roll(self, now_ms: int | None = None) -> int:
        if now_ms is None:
            seconds, micros = await self._redis.time()
            now_ms = seconds * 1000 + micros // 1000
        last = await self._redis.xrevrange(self._target, count=1)
        if last:
            minute = int(as_text(last[0][0]).split("-")[0]) + MINUTE_MS
        else:
            minute = (now_ms // MINUTE_MS - FIRST_LOOKBACK_MIN) * MINUTE_MS
        written = 0
        while minute + MINUTE_MS + GRACE_MS <= now_ms:
            fields = aggregate_minute(minute, await self._read_minute(minute))
            try:
                await self._redis.xadd(self._target, fields, id=f"{minute}-1", maxlen=self._maxlen, approximate=True)
            except ResponseError:  # another writer got there first (a handover in progress): its entry stands
                return written
            written += 1
            minute += MINUTE_MS
        return written

    async def _read_minute(self, minute: int) -> list[dict[str, str]]:
        entries: list[dict[str, str]] = []
        start, end = f"{minute}-0", f"{minute + MINUTE_MS - 1}-18446744073709551615"
        while True:
            page = await self._redis.xrange(self._source, start, end, count=PAGE)
            entries.extend({as_text(k): as_text(v) for k, v in fields.items() if k in _READ_FIELDS or
                            (type(k) is str and k.encode() in _READ_FIELDS)} for _, fields in page)
            if len(page) < PAGE:
                return entries
            start = f"({as_text(page[-1][0])}"
