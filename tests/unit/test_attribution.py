"""Edge attribution: each term by hand on small triangles, and the identity on the stream fields."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from shared.report import (
    EdgeBreakdown,
    ExecutionReport,
    LegFill,
    Status,
    report_from_fields,
    report_to_fields,
)
from shared.signal import BookLevel, Signal, parse_signal
from worker.attribution import attribute, snapshot_prices, snapshot_vwap
from worker.fill_model import simulate_triangle

Q = D("0.001")


def bps(multiplier_delta: D) -> D:
    return (multiplier_delta * 10_000).quantize(Q)


def signal(fee_rate: str = "0", *, leg0_asks: list[tuple[str, str]] | None = None, predicted: float = 35.0) -> Signal:
    """USDT → BTC (buy at 50000) → ETH (buy at 0.05) → USDT (sell at 2510): 40 bps gross at the top."""
    fine = {"base_min_size": "0.00001", "base_increment": "0.000000000001", "quote_increment": "0.000000000001"}
    asks0 = leg0_asks or [("50000", "10")]
    fees = {"fee_rate": fee_rate, **fine}
    return parse_signal({
        "correlation_id": "edge-1",
        "primary_quote": "USDT",
        "starting_volume": "100",
        "predicted_bps": predicted,
        "legs": [
            {"pair": "BTC-USDT", "side": "buy", "order_param": "100", "fee_currency": "USDT", **fees},
            {"pair": "ETH-BTC", "side": "buy", "order_param": "0.002", "fee_currency": "BTC", **fees},
            {"pair": "ETH-USDT", "side": "sell", "order_param": "0.04", "fee_currency": "USDT", **fees},
        ],
        "books": [
            {"asks": [{"price": p, "size": s} for p, s in asks0], "bids": [{"price": "49990", "size": "10"}]},
            {"asks": [{"price": "0.05", "size": "100"}], "bids": [{"price": "0.0499", "size": "100"}]},
            {"asks": [{"price": "2511", "size": "100"}], "bids": [{"price": "2510", "size": "100"}]},
        ],
    })  # fmt: skip


def identity_holds(edge: EdgeBreakdown, effective_bps: float) -> bool:
    rest = edge.predicted - edge.model - edge.fees - edge.slippage - edge.latency - edge.rounding
    return rest == D(f"{effective_bps:.3f}") and edge.predicted - edge.model == edge.gross


def test_without_fees_or_depth_everything_is_gross() -> None:
    sig = signal()
    outcome = simulate_triangle(sig)
    # 100 USDT → 0.002 BTC → 0.04 ETH → 100.4 USDT: 40 bps, nothing lost on the way
    assert outcome.returned == D("100.4")
    edge = attribute(sig, outcome.fills, round(outcome.effective_bps, 3))
    assert (edge.predicted, edge.gross, edge.model) == (D("35"), D("40"), D("-5"))
    assert (edge.fees, edge.slippage, edge.latency, edge.rounding) == (0, 0, 0, 0)
    assert identity_holds(edge, outcome.effective_bps)


def test_fees_take_the_convention_of_each_leg() -> None:
    sig = signal("0.001")
    outcome = simulate_triangle(sig)
    edge = attribute(sig, outcome.fills, round(outcome.effective_bps, 3))
    # two buys pay a quote fee on top of what they spend (÷1.001), the sell loses 0.1 % of its proceeds
    gross = D("1.004")
    after_fees = gross / D("1.001") / D("1.001") * D("0.999")
    assert edge.gross == D("40")
    assert edge.fees == bps(gross - after_fees)
    assert edge.slippage == edge.latency == 0
    # increments of 1e-12 leave a dust far below a thousandth of a bp
    assert abs(edge.rounding) <= D("0.002")
    assert identity_holds(edge, outcome.effective_bps)


def test_slippage_is_the_depth_walked_beyond_the_best_price() -> None:
    sig = signal(leg0_asks=[("50000", "0.001"), ("50100", "1")])
    outcome = simulate_triangle(sig)
    leg0 = outcome.fills[0]
    # 50 USDT buys the 0.001 BTC at 50000, the other 50 buy 50/50100 BTC (rounded down to 1e-12)
    base = D("0.001") + D("0.000998003992")
    assert leg0.filled_size == base
    vwap = (D("50") + D("0.000998003992") * D("50100")) / base
    edge = attribute(sig, outcome.fills, round(outcome.effective_bps, 3))
    assert edge.slippage == bps(D("1.004") * (1 - D("50000") / vwap))
    assert edge.fees == edge.latency == 0
    assert identity_holds(edge, outcome.effective_bps)


def test_rounding_is_the_dust_increments_leave_behind() -> None:
    exact = signal()
    # leg 1 may only spend multiples of 0.0003 BTC: of the 0.002 BTC leg 0 bought it spends 0.0018
    legs = (exact.legs[0], replace(exact.legs[1], quote_increment=D("0.0003")), exact.legs[2])
    sig = replace(exact, legs=legs)
    outcome = simulate_triangle(sig)
    assert outcome.fills[1].spent == D("0.0018")
    # 0.0018 BTC → 0.036 ETH → 90.36 USDT for 100 spent: -964 bps, with 0.0002 BTC left as dust
    assert outcome.returned == D("90.36")
    edge = attribute(sig, outcome.fills, round(outcome.effective_bps, 3))
    # prices and fees are those of the exact case (40 bps); the dust took the rest
    assert (edge.gross, edge.fees, edge.slippage, edge.latency) == (D("40"), 0, 0, 0)
    assert edge.rounding == D("40") - D("-964")
    assert identity_holds(edge, outcome.effective_bps)


def fill(leg: int, side: str, size: str, funds: str, currency: str) -> LegFill:
    return LegFill(leg, "", side, "", "", "", D(0), D(0), D(size), D(funds), D(0), D(0), currency, 0.0)


def test_latency_drift_is_the_fill_price_against_the_snapshot() -> None:
    sig = signal()
    # live fills: leg 0 paid 50050 per BTC where the book said 50000, the others as the book said
    fills = (
        fill(0, "buy", "0.002", "100.1", "USDT"),
        fill(1, "buy", "0.04", "0.002", "BTC"),
        fill(2, "sell", "0.04", "100.4", "USDT"),
    )
    effective = float((D("100.4") - D("100.1")) / D("100.1") * 10_000)
    snapshot = snapshot_prices(sig, fills)
    assert snapshot == (D("50000"), D("0.05"), D("2510"))
    edge = attribute(sig, fills, round(effective, 3), snapshot)
    assert edge.latency == bps(D("1.004") * (1 - D("50000") / D("50050")))
    assert edge.fees == edge.slippage == 0
    assert identity_holds(edge, effective)
    # the same fills taken as paper (fills are the snapshot) show the drift as slippage instead
    paper = attribute(sig, fills, round(effective, 3))
    assert paper.latency == 0 and paper.slippage == edge.latency


def test_snapshot_vwap_by_hand() -> None:
    levels = (BookLevel(D("10"), D("1")), BookLevel(D("11"), D("2")))
    assert snapshot_vwap(levels, D("1")) == D("10")
    assert snapshot_vwap(levels, D("2")) == D("10.5")  # (10 + 11) / 2
    assert snapshot_vwap(levels, D("4")) == D("10.75")  # beyond the depth, the last level: (10 + 22 + 11) / 4
    with pytest.raises(ValueError):
        snapshot_vwap((), D("1"))


def test_incomplete_triangles_are_refused() -> None:
    sig = signal()
    outcome = simulate_triangle(sig)
    with pytest.raises(ValueError):
        attribute(sig, outcome.fills[:2], 0.0)


def test_edge_travels_through_the_stream_and_the_identity_holds_on_its_strings() -> None:
    sig = signal("0.001", leg0_asks=[("50000", "0.001"), ("50100", "1")], predicted=12.3456)
    outcome = simulate_triangle(sig)
    effective_bps = round(outcome.effective_bps, 3)
    report = ExecutionReport(
        correlation_id="edge-1", status=Status.FILLED, mode="paper", fill_model="depth", triangle=sig.triangle_key,
        primary_quote="USDT", predicted_bps=sig.predicted_bps, effective_bps=effective_bps, profit=outcome.profit,
        spent=outcome.spent, returned=outcome.returned, ts_ms=1, book_ts_ms=1, signal_ts_ms=1, received_ts_ms=1,
        first_order_ms=0.0, total_ms=0.0, error="", worker="w", host="h", fills=outcome.fills,
        edge=attribute(sig, outcome.fills, effective_bps),
    )  # fmt: skip
    fields = report_to_fields(report)
    assert set(fields) == set(report_to_fields(ExecutionReport(**{**report_fields(report), "edge": EdgeBreakdown()})))
    assert report_from_fields(fields).edge == report.edge
    terms = [D(fields[f"edge_{name}_bps"]) for name in ("model", "fees", "slippage", "latency", "rounding")]
    assert D(fields["predicted_bps"]) == D(fields["edge_predicted_bps"]) == D("12.346")
    assert D(fields["edge_predicted_bps"]) - sum(terms) == D(fields["effective_bps"])
    assert all(D(fields[f"edge_{name}_bps"]) > 0 for name in ("fees", "slippage"))


def report_fields(report: ExecutionReport) -> dict[str, object]:
    return {name: getattr(report, name) for name in ExecutionReport.__dataclass_fields__}
