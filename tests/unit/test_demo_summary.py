"""The demo summary says why a filled execution did not pay, from its attribution fields."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal as D

from shared.report import EdgeBreakdown
from tests.unit.test_report import report
from tools.demo import _summary


def _filled(cid: str, effective: float, **edge: str) -> object:
    return report(3, correlation_id=cid, effective_bps=effective, spent=D("5000"),
                  edge=EdgeBreakdown(**{name: D(value) for name, value in edge.items()}))


def test_a_loss_to_depth_and_one_to_fees_are_each_explained() -> None:
    reports = [
        _filled("ok", 12.0, gross="42", fees="30"),
        _filled("deep", -2.0, gross="33.4", fees="30", slippage="5.4"),
        _filled("deeper", -4.0, gross="33.4", fees="30", slippage="7.4"),
        _filled("fees", -5.0, gross="25", fees="30"),
    ]
    out = _summary(4, reports, Counter(), {}, {}, 0)
    assert "positive effective bps                 1 of 4" in out
    (depth,) = [line for line in out.splitlines() if "where depth made it negative" in line]
    assert " 2 of 4: their size walked the books: slippage took 6.40 bps (mean) of the +3.40 left after fees" in depth
    assert "worst -4.00 bps (BTC-USDT→ETH-BTC→ETH-USDT, 5000.00 USDT)" in depth
    (fees,) = [line for line in out.splitlines() if "where fees made it negative" in line]
    assert " 1 of 4: the fees (30.00 bps, mean) took more than the books' gross edge (+25.00)" in fees


def test_no_line_when_every_fill_paid() -> None:
    out = _summary(1, [_filled("ok", 12.0, gross="42", fees="30")], Counter(), {}, {}, 0)
    assert "made it negative" not in out
