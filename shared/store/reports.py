"""Report writer: XADD to the report stream, or a local spool replayed in order when Redis returns.

No report may be lost: Redis being down must not cost an execution's record. Once anything is
spooled, later reports queue behind it in the same file so the stream keeps execution order.

Exactly one report per correlation id: every entry is written by one script that first sets the
id's marker ``trident:{<stream>}:once:<id>`` (SET NX, TTL = the retention window) and adds to the stream
only if the marker was new. So the worker's report and the supervisor's ``lost`` for the same
execution (a worker killed while its report was on its way), or a spooled report replayed after
its XADD reply was lost, land once: whichever reaches Redis first is the report, the other is
dropped (logged as ``report_duplicate_dropped``). Consumers may rely on one entry per id within
the window; a ``lost`` report's legs come from the execution journal.

A ``reconciled`` report (what reconciliation found at the exchange for an execution whose report
left an order unknown) has its own marker, ``once:<id>:reconciled``: at most one per id, beside
the id's first report, which it replaces (its ``corrects`` field names that report's status).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from shared.report import ExecutionReport, report_to_fields
from shared.stopping import Stopping

__all__ = ["ReportPublisher", "count_spooled", "once_key"]

log = structlog.get_logger(__name__)

DEFAULT_ONCE_TTL_MS = 86_400_000
# KEYS: stream, marker. ARGV: maxlen, marker ttl ms, then field, value, ... Returns the entry id, or
# false when a report for this id is already on the stream.
_PUBLISH_ONCE_LUA = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return false end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
"""


def once_key(stream: str, correlation_id: str) -> str:
    """The publish-once marker: under ``trident:`` (the ACL the README gives), with the stream's
    name as hash tag, so marker and stream share one Cluster slot."""
    return f"trident:{{{stream}}}:once:{correlation_id}"


class ReportPublisher:
    """Publishes flat report entries; spools to `spool_path` (JSON lines) while Redis is unreachable."""

    def __init__(self, redis: aioredis.Redis, stream: str, maxlen: int, spool_path: Path,
                 once_ttl_ms: int = DEFAULT_ONCE_TTL_MS) -> None:
        self._redis = redis
        self._stream = stream
        self._maxlen = maxlen
        self._once_ttl_ms = once_ttl_ms
        self._publish_once = redis.register_script(_PUBLISH_ONCE_LUA)
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

    async def run_replayer(self, stopping: Stopping, interval_s: float = 0.5) -> None:
        """Background task: retry the spool until it is empty, until the owner stops."""
        while await stopping.pause(interval_s):
            if self._spool_path.exists():
                await self.replay()

    async def _xadd(self, fields: dict[str, str]) -> None:
        cid = fields.get("correlation_id", "")
        marker = once_key(self._stream, cid + (":reconciled" if fields.get("status") == "reconciled" else ""))
        args: list[str | int] = [self._maxlen, self._once_ttl_ms]
        for name, value in fields.items():
            args += (name, value)
        if await self._publish_once([self._stream, marker], args) is None:
            log.warning("report_duplicate_dropped", correlation_id=cid, status=fields.get("status", ""))

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


def count_spooled(spool_dir: Path, expected: Iterable[str] = ()) -> dict[str, int]:
    """Reports waiting in each spool file of `spool_dir` (one JSON line each), by file stem
    (`worker-0`, `inline`, `supervisor`): read by another process, so counted from the files.
    The `expected` spools count 0 when absent, so a gauge exists before the first outage."""
    counts = dict.fromkeys(expected, 0)
    for path in sorted(spool_dir.glob("*.spool")):
        try:
            counts[path.stem] = path.read_bytes().count(b"\n")
        except OSError:  # replayed and removed between the listing and the read
            counts[path.stem] = 0
    return counts
