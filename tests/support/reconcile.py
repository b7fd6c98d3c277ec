"""Reconciling the simulator's balances with what reports say moved: the live tests' judge."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from shared.report import ExecutionReport, Status

__all__ = ["account_deltas", "assert_reconciles", "effective_reports"]


def effective_reports(reports: Iterable[ExecutionReport]) -> list[ExecutionReport]:
    """The consumer rule: one report per correlation id, a `reconciled` one replacing the other."""
    chosen: dict[str, ExecutionReport] = {}
    for report in reports:
        if report.correlation_id not in chosen or report.status == Status.RECONCILED:
            chosen[report.correlation_id] = report
    return list(chosen.values())


def account_deltas(reports: Iterable[ExecutionReport]) -> dict[str, Decimal]:
    """Per currency, what the reports say left (spent) and arrived (received, recovered)."""
    deltas: dict[str, Decimal] = defaultdict(Decimal)
    for report in reports:
        for fill in report.fills:
            deltas[fill.input_currency] -= fill.spent
            deltas[fill.output_currency] += fill.received
        for unwind in report.unwinds:
            deltas[unwind.currency] -= unwind.spent
            deltas[unwind.recovered_currency or report.primary_quote] += unwind.recovered
    return deltas


def assert_reconciles(start: Mapping[str, Decimal], end: Mapping[str, Decimal],
                      reports: Iterable[ExecutionReport]) -> None:
    """Balances at the end == balances at the start + every amount the reports say moved (a
    `reconciled` report instead of the one it corrects), to the last digit."""
    deltas = account_deltas(effective_reports(reports))
    for currency in set(start) | set(end) | set(deltas):
        assert end.get(currency, Decimal(0)) == start.get(currency, Decimal(0)) + deltas[currency], currency
