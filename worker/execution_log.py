"""The execution log: what each execution did, as the seed logged it, written after the legs.

One INFO event `execution` per outcome (correlation id, triangle, status, spent / returned /
profit each with its currency, effective bps, signal→first-order and total ms, error code),
and for a live execution, per order it sent: `order_placed` (the request), `order_resolved`
when its placement outcome was unknown and the query by clientOid settled it (found, not
found, no answer), then its end — `order_filled`, `order_rejected` (refused: nothing placed),
`order_unwound` (an unwind order, or a hold), `order_unknown` / `order_unfilled` — each with
its clientOid, pair, side, size or funds, what filled, fee and fee currency, and latency.
Everything is taken from the finished report (`ExecutionReport.orders`, kept by `worker.live`),
so nothing here runs between a signal and its first order.

Each event also carries `line`, the readable text the human file log (`log_file`) writes in
place of the key=value dump, e.g. ``FILL BTC-USDT buy 0.0012 @ 65000.1 fee 0.078 USDT``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import structlog

from shared.money import fmt_decimal
from shared.report import ExecutionReport, LegFill, OrderRecord, Status, Unwind
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


def _request(order: OrderRecord) -> str:
    """`funds 100 USDT` or `size 0.0012 BTC`: what the order asked for, in its currency."""
    base, _, quote = order.pair.partition("-")
    kind, currency = ("funds", quote) if order.by_funds else ("size", base)
    return f"{kind} {_amount(order.amount, currency)}"


def _sent_fields(report: ExecutionReport, order: OrderRecord) -> dict[str, Any]:
    return {
        "correlation_id": report.correlation_id, "client_oid": order.client_oid, "leg": order.leg,
        "unwind": order.unwind, "pair": order.pair, "side": order.side,
        ("funds" if order.by_funds else "size"): fmt_decimal(order.amount), "order_id": order.order_id,
        "filled_size": fmt_decimal(order.filled_size), "filled_funds": fmt_decimal(order.filled_funds),
        "fee": fmt_decimal(order.fee), "fee_currency": order.fee_currency, "latency_ms": round(order.latency_ms, 3),
    }


def _log_sent_order(report: ExecutionReport, order: OrderRecord, fills: dict[int, LegFill],
                    unwinds: dict[int, Unwind]) -> None:
    """The lines of one order sent: its request, its resolution if it needed one, its end."""
    fields = _sent_fields(report, order)
    what = "unwind" if order.unwind else f"leg {order.leg}"
    log.info("order_placed", line=f"PLACE {order.pair} {order.side} {_request(order)} ({what}, {order.client_oid})",
             **fields)
    if order.resolved:
        log.info("order_resolved", resolved=order.resolved, error=order.error,
                 line=f"RESOLVE {order.pair} {order.client_oid}: placement outcome unknown, {order.resolved} by "
                      f"clientOid{f' (order {order.order_id})' if order.order_id else ''}", **fields)
    fill, unwind = fills.get(order.leg), unwinds.get(order.leg)
    if order.state == "filled" and order.unwind and unwind is not None:
        log.info("order_unwound", currency=unwind.currency, stranded=fmt_decimal(unwind.stranded),
                 spent=fmt_decimal(unwind.spent), recovered=fmt_decimal(unwind.recovered),
                 line=_unwind_line(unwind), **fields)
    elif order.state == "filled" and not order.unwind and fill is not None and fill.order_id == order.order_id:
        fields.update(_order_fields(report, fill))
        log.info("order_filled", line=fill_line(fill), **fields)
    elif order.state == "rejected":
        log.info("order_rejected", error=order.error, error_code=order.error_code,
                 line=f"REJECT {order.pair} {order.side} {_request(order)} ({what}): {order.error}", **fields)
    else:
        event = "order_unknown" if order.state == "unknown" else "order_unfilled"
        log.info(event, error=order.error, line=f"{event[6:].upper()} {order.pair} {order.side} {_request(order)} "
                                                f"({what}): {order.error or 'nothing filled'}", **fields)


def _log_orders_from_fills(report: ExecutionReport, error_code: str) -> None:
    """A live report without its order records (built outside `worker.live`): what the fills say."""
    for fill in report.fills:
        log.info("order_filled", line=fill_line(fill), **_order_fields(report, fill))
    if report.status is not Status.FILLED and report.error and len(report.fills) < 3:
        leg = len(report.fills)
        log.info("order_rejected", correlation_id=report.correlation_id, leg=leg,
                 client_oid=client_oid(report.correlation_id, leg),
                 pair=report.triangle[leg] if leg < len(report.triangle) else "", error=report.error,
                 error_code=error_code, line=f"REJECT leg {leg} {report.correlation_id}: {report.error}")
    for unwind in report.unwinds:
        _log_unwind(report, unwind)


def _log_unwind(report: ExecutionReport, unwind: Unwind) -> None:
    log.info("order_unwound", correlation_id=report.correlation_id, leg=unwind.leg, pair=unwind.pair,
             side=unwind.side, order_id=unwind.order_id, currency=unwind.currency,
             stranded=fmt_decimal(unwind.stranded), spent=fmt_decimal(unwind.spent),
             recovered=fmt_decimal(unwind.recovered), fee=fmt_decimal(unwind.fee),
             fee_currency=unwind.fee_currency, line=_unwind_line(unwind))


def log_execution(report: ExecutionReport, error_code: str = "") -> None:
    """Log one finished execution (and, live, its orders). Call after the report is sent on."""
    if report.mode == "live":
        if report.orders:
            fills = {fill.leg: fill for fill in report.fills}
            unwinds = {unwind.leg: unwind for unwind in report.unwinds if unwind.order_id}
            for order in report.orders:
                _log_sent_order(report, order, fills, unwinds)
            for unwind in report.unwinds:
                if not unwind.order_id:  # held: no order was sent for it
                    _log_unwind(report, unwind)
        else:
            _log_orders_from_fills(report, error_code)
    quote = report.primary_quote
    log.info(
        "execution", correlation_id=report.correlation_id, triangle=_path(report), status=str(report.status),
        mode=report.mode, spent=_amount(report.spent, quote), returned=_amount(report.returned, quote),
        profit=_amount(report.profit, quote), effective_bps=report.effective_bps,
        predicted_bps=report.predicted_bps, first_order_ms=report.first_order_ms, total_ms=report.total_ms,
        error_code=error_code, error=report.error, worker=report.worker, line=execution_line(report),
    )
