"""The execution log: what each execution did, as the seed logged it, written after the legs.

One INFO event `execution` per outcome (correlation id, triangle, status, spent / returned /
profit each with its currency, effective bps, signal→first-order and total ms, error code),
and for a live execution one event per order it placed — `order_filled`, `order_rejected`,
`order_unwound` — with its clientOid, pair, side, size or funds, what filled, fee and fee
currency, and latency. Everything is taken from the finished report, so nothing here runs
between a signal and its first order.

Each event also carries `line`, the readable text the human file log (`log_file`) writes in
place of the key=value dump, e.g. ``FILL BTC-USDT buy 0.0012 @ 65000.1 fee 0.078 USDT``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import structlog

from shared.money import fmt_decimal
from shared.report import ExecutionReport, LegFill, Status, Unwind
from worker.context import client_oid

__all__ = ["log_execution", "execution_line", "fill_line"]

log = structlog.get_logger("trident.execution")


def _amount(value: Decimal, currency: str) -> str:
    return f"{fmt_decimal(value)} {currency}".rstrip()


def _path(report: ExecutionReport) -> str:
    return "→".join(report.triangle) if report.triangle else "?"


def fill_line(fill: LegFill) -> str:
    """`FILL BTC-USDT buy 0.0012 @ 65000.1 fee 0.078 USDT` (size in base, as the seed printed it)."""
    return (f"FILL {fill.pair} {fill.side} {fmt_decimal(fill.filled_size)} @ {fmt_decimal(fill.avg_price)} "
            f"fee {_amount(fill.fee, fill.fee_currency)}")


def execution_line(report: ExecutionReport) -> str:
    """One readable line per outcome: status, path, money, bps, timings, error."""
    quote = report.primary_quote
    money = (f"spent {_amount(report.spent, quote)} returned {_amount(report.returned, quote)} "
             f"profit {'+' if report.profit > 0 else ''}{_amount(report.profit, quote)} "
             f"({report.effective_bps:+.1f} bps, predicted {report.predicted_bps:+.1f})")
    timing = f"first order {report.first_order_ms:.1f} ms, total {report.total_ms:.1f} ms"
    error = f" error: {report.error}" if report.error else ""
    return f"{str(report.status).upper()} {report.correlation_id} {_path(report)} {money} {timing}{error}"


def _order_fields(report: ExecutionReport, fill: LegFill) -> dict[str, Any]:
    return {
        "correlation_id": report.correlation_id, "client_oid": client_oid(report.correlation_id, fill.leg),
        "leg": fill.leg, "pair": fill.pair, "side": fill.side, "order_id": fill.order_id,
        "spent": _amount(fill.spent, fill.input_currency), "received": _amount(fill.received, fill.output_currency),
        "filled_size": fmt_decimal(fill.filled_size), "filled_funds": fmt_decimal(fill.filled_funds),
        "avg_price": fmt_decimal(fill.avg_price), "fee": fmt_decimal(fill.fee), "fee_currency": fill.fee_currency,
        "latency_ms": round(fill.latency_ms, 3),
    }


def _unwind_line(unwind: Unwind) -> str:
    if not unwind.order_id:
        return f"HOLD {_amount(unwind.stranded, unwind.currency)} stranded after leg {unwind.leg}"
    return (f"UNWIND {unwind.pair} {unwind.side} {_amount(unwind.spent, unwind.currency)} → "
            f"{fmt_decimal(unwind.recovered)} fee {_amount(unwind.fee, unwind.fee_currency)}")


def log_execution(report: ExecutionReport, error_code: str = "") -> None:
    """Log one finished execution (and, live, its orders). Call after the report is sent on."""
    if report.mode == "live":
        for fill in report.fills:
            log.info("order_filled", line=fill_line(fill), **_order_fields(report, fill))
        if report.status is not Status.FILLED and report.error and len(report.fills) < 3:
            leg = len(report.fills)
            log.info("order_rejected", correlation_id=report.correlation_id, leg=leg,
                     client_oid=client_oid(report.correlation_id, leg),
                     pair=report.triangle[leg] if leg < len(report.triangle) else "", error=report.error,
                     error_code=error_code, line=f"REJECT leg {leg} {report.correlation_id}: {report.error}")
        for unwind in report.unwinds:
            log.info("order_unwound", correlation_id=report.correlation_id, leg=unwind.leg, pair=unwind.pair,
                     side=unwind.side, order_id=unwind.order_id, currency=unwind.currency,
                     stranded=fmt_decimal(unwind.stranded), spent=fmt_decimal(unwind.spent),
                     recovered=fmt_decimal(unwind.recovered), fee=fmt_decimal(unwind.fee),
                     fee_currency=unwind.fee_currency, line=_unwind_line(unwind))
    quote = report.primary_quote
    log.info(
        "execution", correlation_id=report.correlation_id, triangle=_path(report), status=str(report.status),
        mode=report.mode, spent=_amount(report.spent, quote), returned=_amount(report.returned, quote),
        profit=_amount(report.profit, quote), effective_bps=report.effective_bps,
        predicted_bps=report.predicted_bps, first_order_ms=report.first_order_ms, total_ms=report.total_ms,
        error_code=error_code, error=report.error, worker=report.worker, line=execution_line(report),
    )
