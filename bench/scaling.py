"""Scaling: executions/s with 0 (inline), 1, 2, … worker processes, the supervisor saturated.

Signals over every triangle of the benchmark markets (31 isolation ids, see `bench.markets`) are
written as fast as the socket takes them over several connections at once (the supervisor
admits the frames of one connection in order, so a single connection would measure one
admission's round trips, not the pool). Registry: slots far above the load, `enforce_pair` off,
so only a triangle already in flight is refused; books are stamped ahead of time so that the
backlog a saturating sender builds is not refused as stale. Executions/s counts filled reports between the
first and the last; each run also records the CPU every process used, which says what the
machine's cores were spent on when the figure stopped growing.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.latency import Run, run_config
from bench.stack import Stack
from tools.synthetic import Market

__all__ = ["SCALING_CONNECTIONS", "BOOK_AHEAD_MS", "measure_scaling"]

SCALING_CONNECTIONS = 4
BOOK_AHEAD_MS = 600_000  # see run_config: the backlog's books must not go stale


async def measure_scaling(stack: Stack, markets: dict[str, Market], workers: Sequence[int], count: int,
                          tag: str = "") -> list[Run]:
    """One saturating run per worker count, in the order given."""
    return [
        await run_config(stack, markets, workers=n, rate=None, count=count, tag=f"scale{n}w{tag}",
                         connections=SCALING_CONNECTIONS, book_ahead_ms=BOOK_AHEAD_MS,
                         kind="saturation")
        for n in workers
    ]
