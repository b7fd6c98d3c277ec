"""Reconciling the simulator's balances with what reports say moved: the live tests' judge."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from shared.report import ExecutionReport

__all__ = ["account_deltas", "assert_reconciles"]


def account_deltas(reports: Iterable[ExecutionReport]) -> dict[str, Decimal]:
    """Per currency, what the reports say left (spent) and arrived (received, recovered)."""
    deltas: dict[str, Decimal] = defaultdict(Decimal)
    for report in reports:
        for fill in report.fills:
            deltas[fill.input_currency] -= fill.spent
            deltas[fill.output_currency] += fill.received
        for unwind in report.unwinds:
            deltas[unwind.currency] -= unwind.spent
            deltas[report.primary_quote] += unwind.recovered
    return deltas


def assert_reconciles(start: Mapping[str, Decimal], end: Mapping[str, Decimal],
                      reports: Iterable[ExecutionReport]) -> None:
    """Balances at the end == balances at the start + every amount the reports say moved, to the last digit."""
    deltas = account_deltas(reports)
    for currency in set(start) | set(end) | set(deltas):
        assert end.get(currency, Decimal(0)) == start.get(currency, Decimal(0)) + deltas[currency], currency
