"""Report writer: XADD to the report stream, or a local spool replayed in order when Redis returns.

No report may be lost: Redis being down must not cost an execution's record. Once anything is
spooled, later reports queue behind it in the same file so the stream keeps execution order.
A report whose XADD reply was lost can appear twice; consumers dedupe by correlation id.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from shared.report import ExecutionReport, report_to_fields

__all__ = ["ReportPublisher"]

log = structlog.get_logger(__name__)


class ReportPublisher:
    """Publishes flat report entries; spools to `spool_path` (JSON lines) while Redis is unreachable."""

    def __init__(self, redis: aioredis.Redis, stream: str, maxlen: int, spool_path: Path) -> None:
        self._redis = redis
        self._stream = stream
        self._maxlen = maxlen
        self._spool_path = spool_path
        self._spooling = spool_path.exists()  # kept in memory: no stat() per report
        self._lock = asyncio.Lock()

    @property
    def spooled(self) -> int:
        """Reports waiting in the spool (0 when the stream is up to date)."""
        if not self._spool_path.exists():
            return 0
        with self._spool_path.open("rb") as spool:
            return sum(1 for _ in spool)

    async def publish(self, report: ExecutionReport) -> bool:
        """True if the report reached the stream, False if it was spooled for replay."""
        fields = report_to_fields(report)
        async with self._lock:
            if not self._spooling:
                try:
                    await self._xadd(fields)
                    return True
                except (RedisError, OSError) as exc:
                    log.warning("report_spooled", correlation_id=report.correlation_id, error=str(exc))
            self._append_to_spool(fields)
            return False

    async def replay(self) -> int:
        """Send spooled reports in order; stops at the first failure. Returns how many were sent."""
        async with self._lock:
            if not self._spool_path.exists():
                self._spooling = False
                return 0
            entries = [json.loads(line) for line in self._spool_path.read_text().splitlines() if line]
            sent = 0
            try:
                for fields in entries:
                    await self._xadd(fields)
                    sent += 1
            except (RedisError, OSError):
                pass
            self._rewrite_spool(entries[sent:])
            if sent:
                log.info("spool_replayed", sent=sent, remaining=len(entries) - sent)
            return sent

    async def run_replayer(self, interval_s: float = 0.5) -> None:
        """Background task: retry the spool until it is empty, forever."""
        while True:
            await asyncio.sleep(interval_s)
            if self._spool_path.exists():
                await self.replay()

    async def _xadd(self, fields: dict[str, str]) -> None:
        await self._redis.xadd(self._stream, fields, maxlen=self._maxlen, approximate=True)

    def _append_to_spool(self, fields: dict[str, str]) -> None:
        self._spooling = True
        self._spool_path.parent.mkdir(parents=True, exist_ok=True)
        with self._spool_path.open("a") as spool:
            spool.write(json.dumps(fields, separators=(",", ":")) + "\n")
            spool.flush()
            os.fsync(spool.fileno())

    def _rewrite_spool(self, remaining: list[dict[str, str]]) -> None:
        if not remaining:
            self._spool_path.unlink(missing_ok=True)
            self._spooling = False
            return
        tmp = self._spool_path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(f, separators=(",", ":")) + "\n" for f in remaining))
        os.replace(tmp, self._spool_path)
