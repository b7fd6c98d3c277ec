"""`trident ctl pnl`: profit and loss from the report stream, never adding two currencies.

Per group (`--by quote|day|triangle|mode|status`, default quote): executions and their outcomes
(filled, failed, unwound, stranded, lost, aborted); spent, returned and profit in each primary
quote, fees in each fee currency; mean and median effective bps of the filled ones; the best and
worst triangles by profit. Amounts are exact decimals, summed per currency.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import redis.asyncio as aioredis

from shared.money import fmt_decimal
from shared.report import ExecutionReport, Status, report_from_fields
from tools.ctl.streams import entries_since

__all__ = ["pnl", "parse_since", "GROUPINGS"]

GROUPINGS = ("quote", "day", "triangle", "mode", "status")
_SINCE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_D0 = Decimal(0)


def parse_since(text: str) -> float:
    """`24h`, `30m`, `7d`, `90s` → seconds; ValueError naming the format otherwise."""
    match = _SINCE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"--since must be a number and a unit s, m, h or d (e.g. 24h), got {text!r}")
    return float(match[1]) * _UNIT_S[match[2]]


@dataclass
class _Group:
    executions: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    spent: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    returned: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    profit: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    fees: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    bps: list[float] = field(default_factory=list)
    by_triangle: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, report: ExecutionReport) -> None:
        quote = report.primary_quote or "?"
        self.executions += 1
        self.statuses[str(report.status)] += 1
        self.spent[quote] += report.spent
        self.returned[quote] += report.returned
        self.profit[quote] += report.profit
        for fill in report.fills:
            self.fees[fill.fee_currency or "?"] += fill.fee
        for unwind in report.unwinds:
            if unwind.fee:
                self.fees[unwind.fee_currency or "?"] += unwind.fee
        if report.status is Status.FILLED:
            self.bps.append(report.effective_bps)
        if report.triangle:
            self.by_triangle[("→".join(report.triangle), quote)] += report.profit

    def as_dict(self) -> dict[str, object]:
        ranked = sorted(self.by_triangle.items(), key=lambda item: item[1])
        money = {name: {c: fmt_decimal(v) for c, v in sorted(getattr(self, name).items())}
                 for name in ("spent", "returned", "profit", "fees")}
        return {
            "executions": self.executions, "statuses": dict(sorted(self.statuses.items())), **money,
            "mean_bps": round(statistics.fmean(self.bps), 3) if self.bps else None,
            "median_bps": round(statistics.median(self.bps), 3) if self.bps else None,
            "best": [{"triangle": t, "profit": f"{fmt_decimal(p)} {q}"} for (t, q), p in ranked[::-1][:3]],
            "worst": [{"triangle": t, "profit": f"{fmt_decimal(p)} {q}"} for (t, q), p in ranked[:3]],
        }


def _key(report: ExecutionReport, by: str) -> str:
    if by == "day":
        return datetime.fromtimestamp(report.ts_ms / 1000, UTC).strftime("%Y-%m-%d")
    if by == "triangle":
        return "→".join(report.triangle) or "?"
    if by == "mode":
        return report.mode
    if by == "status":
        return str(report.status)
    return report.primary_quote or "?"


def _amounts(values: dict[str, str]) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in values.items()) or "0"


async def pnl(client: aioredis.Redis, report_stream: str, *, since: str = "24h", by: str = "quote",
              as_json: bool = False) -> str:
    since_s = parse_since(since)
    since_ms = int((time.time() - since_s) * 1000)
    groups: dict[str, _Group] = defaultdict(_Group)
    async for fields in entries_since(client, report_stream, since_ms):
        report = report_from_fields(fields)
        groups[_key(report, by)].add(report)
    table = {name: group.as_dict() for name, group in sorted(groups.items())}
    if as_json:
        return json.dumps({"since": since, "by": by, "groups": table}, indent=2)
    if not table:
        return f"no executions in the last {since}"
    lines = [f"profit and loss, last {since}, by {by}"]
    for name, row in table.items():
        statuses = " ".join(f"{s}={n}" for s, n in row["statuses"].items())  # type: ignore[union-attr]
        lines.append(f"{name}: {row['executions']} executions ({statuses})")
        lines.append(f"  spent {_amounts(row['spent'])}; returned {_amounts(row['returned'])}")  # type: ignore[arg-type]
        lines.append(f"  profit {_amounts(row['profit'])}; fees {_amounts(row['fees'])}")  # type: ignore[arg-type]
        if row["mean_bps"] is not None:
            lines.append(f"  effective bps of filled: mean {row['mean_bps']:+.2f}, median {row['median_bps']:+.2f}")
        if row["best"]:
            best, worst = row["best"][0], row["worst"][0]  # type: ignore[index]
            lines.append(f"  best {best['triangle']} {best['profit']}; worst {worst['triangle']} {worst['profit']}")
    return "\n".join(lines)
