"""`trident ctl why <correlation_id>`: what became of one signal.

Looked up in the order an operator needs it: in flight now (the lease: since when, which
supervisor, triangle), its execution report(s) (status, legs, profit, error), its refusal(s)
from `trident:refusals:log` (reason and detail). A correlation id can have several (a duplicate
refused while the first ran, or an id reused across runs): all are shown, newest first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis.asyncio as aioredis

from shared.codec import as_text
from shared.report import report_from_fields
from shared.store import keys
from tools.ctl.streams import newest_first

__all__ = ["why", "NotFound"]


class NotFound(Exception):
    """Nothing anywhere knows this correlation id."""


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _report_lines(fields: dict[str, str]) -> list[str]:
    report = report_from_fields(fields)
    quote = report.primary_quote
    head = (f"report {_when(report.ts_ms)}: {report.status} ({report.mode}) triangle {'→'.join(report.triangle)}; "
            f"spent {report.spent} {quote}, returned {report.returned} {quote}, profit {report.profit} {quote}, "
            f"{report.effective_bps:+.2f} bps (predicted {report.predicted_bps:+.2f}); "
            f"first order {report.first_order_ms:.1f} ms, total {report.total_ms:.1f} ms; worker {report.worker}")
    lines = [head]
    for fill in report.fills:
        lines.append(f"  leg {fill.leg}: {fill.pair} {fill.side} spent {fill.spent} {fill.input_currency} → "
                     f"{fill.received} {fill.output_currency} @ {fill.avg_price}, fee {fill.fee} {fill.fee_currency}, "
                     f"{fill.latency_ms:.1f} ms")
    for unwind in report.unwinds:
        lines.append(f"  unwind after leg {unwind.leg}: {unwind.stranded} {unwind.currency} stranded, "
                     f"{unwind.spent} sold for {unwind.recovered}")
    if report.error:
        lines.append(f"  error: {report.error}")
    return lines


async def why(client: aioredis.Redis, report_stream: str, cid: str, *, as_json: bool = False) -> str:
    found: dict[str, list[dict[str, str]]] = {"in_flight": [], "reports": [], "refusals": []}
    lease = await client.hget(keys.LEASE_DATA, cid)
    if lease is not None:
        found["in_flight"].append(json.loads(as_text(lease)))
    async for _, fields in newest_first(client, report_stream):
        if fields.get("correlation_id") == cid:
            found["reports"].append(fields)
    async for _, fields in newest_first(client, keys.REFUSAL_LOG):
        if fields.get("correlation_id") == cid:
            found["refusals"].append(fields)
    if not any(found.values()):
        raise NotFound(f"{cid}: never seen (no lease, no report in {report_stream}, no refusal in "
                       f"{keys.REFUSAL_LOG}; both are capped streams, so a very old one may have been trimmed)")
    if as_json:
        return json.dumps(found, indent=2, sort_keys=True)
    lines = [cid]
    for held in found["in_flight"]:
        lines.append(f"in flight since {_when(int(held['started_ms']))} on supervisor {held['owner']}, "
                     f"triangle {held['triangle']}, notional {held['notional']} {held['quote']}")
    for fields in found["reports"]:
        lines += _report_lines(fields)
    for fields in found["refusals"]:
        lines.append(f"refused {_when(int(fields.get('ts_ms', '0')))} by {fields.get('supervisor', '?')}: "
                     f"{fields.get('reason')}" + (f" — {fields['detail']}" if fields.get("detail") else ""))
    return "\n".join(lines)
