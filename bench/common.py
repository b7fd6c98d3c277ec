"""Shared pieces for benchmarks: nearest-rank percentiles, latency summaries, tables, JSON output.

Percentiles are nearest-rank (the smallest sample with at least p % of samples at or below it),
so every reported figure is a latency that was actually observed: no interpolation invents a
value between two samples, and p100 is the maximum. Samples are taken in nanoseconds from
`time.monotonic_ns()` and reported in microseconds.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = [
    "REPORTED_PERCENTILES",
    "percentile",
    "LatencySummary",
    "cdf_points",
    "markdown_table",
    "p50_ratio",
    "host_info",
    "write_json",
]

REPORTED_PERCENTILES = (50, 90, 99, 99.9)
_NS_PER_US = 1000


def percentile(sorted_samples: Sequence[int | float], p: int | float) -> int | float:
    """Nearest-rank percentile of already sorted samples, 0 < p ≤ 100.

    The rank is ceil(p/100 · N), computed exactly (p through its decimal text) so that e.g.
    p99.9 of 1000 samples is rank 999, not 1000 from a float rounding error.
    """
    if not sorted_samples:
        raise ValueError("percentile of no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    rank = math.ceil(Fraction(str(p)) * len(sorted_samples) / 100)
    return sorted_samples[max(rank, 1) - 1]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """One table row: a variant, what was timed, and its distribution in microseconds."""

    variant: str
    measure: str
    n: int
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    max_us: float

    @classmethod
    def from_ns(cls, variant: str, measure: str, samples_ns: Sequence[int]) -> "LatencySummary":
        ordered = sorted(samples_ns)
        p50, p90, p99, p999 = (percentile(ordered, p) / _NS_PER_US for p in REPORTED_PERCENTILES)
        return cls(variant, measure, len(ordered), p50, p90, p99, p999, ordered[-1] / _NS_PER_US)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def markdown_table(rows: Sequence[LatencySummary]) -> str:
    """A GitHub-flavoured markdown table, microseconds with one decimal."""
    lines = [
        "| variant | measure | n | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        values = (row.p50_us, row.p90_us, row.p99_us, row.p999_us, row.max_us)
        figures = " | ".join(f"{value:,.1f}" for value in values)
        lines.append(f"| {row.variant} | {row.measure} | {row.n} | {figures} |")
    return "\n".join(lines)


def cdf_points(samples_ns: Sequence[int], points: int = 400) -> list[tuple[float, float]]:
    """(µs, fraction of samples ≤ it) at up to `points` evenly spaced ranks, and the maximum:
    enough to draw a CDF without storing every sample in the results file."""
    ordered = sorted(samples_ns)
    if not ordered:
        return []
    count = len(ordered)
    ranks = sorted({max(1, round(count * step / points)) for step in range(1, points + 1)} | {count})
    return [(ordered[rank - 1] / _NS_PER_US, rank / count) for rank in ranks]


def p50_ratio(slower: LatencySummary, faster: LatencySummary) -> float:
    """How many times `slower`'s median exceeds `faster`'s."""
    return slower.p50_us / faster.p50_us


def host_info() -> dict[str, Any]:
    """What a reader needs to judge whether two result files are comparable."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def write_json(path: str | Path, document: dict[str, Any]) -> None:
    """Pretty, key-sorted JSON so result files diff cleanly between runs."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
