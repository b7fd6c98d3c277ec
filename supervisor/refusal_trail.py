"""The refusal trail: every refused signal in a capped stream, and refusals summarised in the log.

`record()` runs on the admission path, so it only appends a tuple to a list; a background task
writes the batch every 100 ms in one pipelined round trip (XADD to `trident:refusals:log`,
`MAXLEN ~ 100000`): correlation id, reason, detail, supervisor, ts_ms, triangle. An admitted
signal never waits for it. The registry's refusal says what blocked it (lua/acquire.lua's third
reply), which becomes the detail when the batch is written:

- ``stale``: the book's time and the triangle's last trade;
- ``triangle_busy`` / ``quote_busy`` / ``pair_busy``: the triangle, quote or pair and the
  execution(s) holding it;
- ``capital_cap``: the cap, the notional in flight and this signal's;
- ``no_slot``: the slots setting.

Undecodable frames are counted by the supervisor; a sample of each reason (the first, then at most
one per 10 s) goes into the stream too. Logging: each reason's first occurrence at INFO, then a
summary every 10 s (`refusals in the last 10 s: pair_busy 312, stale 4`) at INFO.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from shared.signal import Signal
from shared.stopping import Stopping
from shared.store import keys

__all__ = ["RefusalTrail", "REFUSAL_FIELDS"]

log = structlog.get_logger(__name__)

REFUSAL_FIELDS = ("correlation_id", "reason", "detail", "supervisor", "ts_ms", "triangle")
_MAX_PENDING = 20_000  # a flood beyond this between two flushes is counted, not stored
_SAMPLE_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class _Seen:
    """What a refusal's sentence needs of its signal. The pending list holds this, never the
    Signal: a refusal flood between two flushes (up to _MAX_PENDING) would otherwise keep that
    many signals and their books alive, and the supervisor's RSS grew 58 -> 243 MB over
    100k signals (bench.load) without ever giving the memory back."""

    triangle_key: tuple[str, ...]
    triangle_id: str
    primary_quote: str
    starting_volume: str
    book_ts_ms: int


@dataclass(frozen=True, slots=True)
class _Refused:
    correlation_id: str
    reason: str
    detail: str
    ts_ms: int
    signal: _Seen | None


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]


class RefusalTrail:
    """One per supervisor: `record()` from admission, `run()` as a background task, `flush()` at stop."""

    def __init__(self, redis: aioredis.Redis, supervisor: str, *, maxlen: int = 100_000,
                 flush_s: float = 0.1, summary_s: float = 10.0) -> None:
        self._redis = redis
        self._supervisor = supervisor
        self._maxlen = maxlen
        self._flush_s = flush_s
        self._summary_s = summary_s
        self._pending: list[_Refused] = []
        self.dropped = 0
        self.written = 0
        self._seen: set[str] = set()
        self._window: Counter[str] = Counter()
        self._window_started = time.monotonic()
        self._sampled_at: dict[str, float] = {}

    @property
    def pending(self) -> int:
        """Refusals recorded and not yet written."""
        return len(self._pending)

    def record(self, reason: str, detail: str, correlation_id: str, signal: Signal | None = None) -> None:
        """A refused decodable signal (hot path: no I/O, no formatting)."""
        self._window[reason] += 1
        if reason not in self._seen:
            self._seen.add(reason)
            log.info("refusal_first_seen", reason=reason, detail=detail, correlation_id=correlation_id)
        if len(self._pending) >= _MAX_PENDING:
            self.dropped += 1
            return
        seen = None if signal is None else _Seen(signal.triangle_key, signal.triangle_id, signal.primary_quote,
                                                 str(signal.starting_volume), signal.book_ts_ms)
        self._pending.append(_Refused(correlation_id, reason, detail, int(time.time() * 1000), seen))

    def record_bad_frame(self, reason: str, detail: str) -> None:
        """An undecodable frame: counted by the caller; a sample per reason goes into the trail."""
        now = time.monotonic()
        if now - self._sampled_at.get(reason, float("-inf")) >= _SAMPLE_EVERY_S:
            self._sampled_at[reason] = now
            self.record(reason, f"sample of an undecodable frame: {detail[:200]}", "")
        else:
            self._window[reason] += 1

    async def run(self, stopping: Stopping) -> None:
        while await stopping.pause(self._flush_s):
            try:
                await self.flush()
            except (RedisError, OSError) as exc:  # kept for the next flush, up to _MAX_PENDING
                log.debug("refusal_trail_flush_failed", error=str(exc), pending=len(self._pending))
            self.summarise()

    def summarise(self, force: bool = False) -> str | None:
        """The last window's counts at INFO (every `summary_s`), e.g. `pair_busy 312, stale 4`."""
        now = time.monotonic()
        if not force and now - self._window_started < self._summary_s:
            return None
        seconds = now - self._window_started
        self._window_started = now
        counts, self._window = self._window, Counter()
        if not counts:
            return None
        text = f"refusals in the last {seconds:.0f} s: " + ", ".join(f"{r} {n}" for r, n in counts.most_common())
        log.info("refusals_summary", summary=text, counts=dict(counts))
        return text

    async def flush(self) -> int:
        """Write everything pending (looking up registry details first); the number written."""
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for item in batch:
                    signal = item.signal
                    detail = _explain(item)
                    pipe.xadd(keys.REFUSAL_LOG, {
                        "correlation_id": item.correlation_id, "reason": item.reason, "detail": detail,
                        "supervisor": self._supervisor, "ts_ms": item.ts_ms,
                        "triangle": ",".join(signal.triangle_key) if signal else "",
                    }, maxlen=self._maxlen, approximate=True)
                await pipe.execute()
        except BaseException:
            self._pending[:0] = batch[: max(0, _MAX_PENDING - len(self._pending))]
            raise
        self.written += len(batch)
        return len(batch)



def _explain(item: _Refused) -> str:
    """The registry's raw detail (lua/acquire.lua's third reply) as a sentence a person can act on."""
    signal, raw = item.signal, item.detail
    if signal is None or not raw:
        return raw
    reason = item.reason
    if reason == "stale" and raw.isdigit():
        last = int(raw)
        return (f"book sampled at {_clock(signal.book_ts_ms)} UTC ({signal.book_ts_ms}), before the triangle's last "
                f"trade at {_clock(last)} UTC ({last}): {last - signal.book_ts_ms} ms older; stamp signals when sent")
    if reason == "triangle_busy":
        return f"triangle {signal.triangle_id} is held by execution {raw}"
    if reason == "quote_busy":
        return f"primary quote {signal.primary_quote} is held by execution(s) {raw} (same-quote is on)"
    if reason == "pair_busy":
        pair, _, holders = raw.partition(" ")
        return f"pair {pair} is held by execution(s) {holders} (pair-isolation is on)"
    if reason == "capital_cap":
        cap, _, in_use = raw.partition(" ")
        quote = signal.primary_quote
        return (f"cap {cap} {quote}, {in_use} {quote} in flight, this signal {signal.starting_volume} {quote}: "
                f"raise it with `trident ctl cap {quote} N`")
    if reason == "no_slot":
        return f"all {raw} slots are held fleet-wide (`trident ctl slots N`)"
    return raw
