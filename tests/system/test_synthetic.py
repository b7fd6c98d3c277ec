"""`trident send --synthetic` sends what an engine would: only triangles its books predict to pay.

On the simulator's default markets some triangles lose after fees; before `min_predicted_bps`
was honoured, about half the synthetic signals predicted a loss and the README walkthrough's
`ctl pnl` came out negative."""

from __future__ import annotations

import time

from sim.server import RunningSimulator
from tests.support.e2e import markets_of
from tools.synthetic import paying_triangles, synthetic_signals


async def test_synthetic_signals_keep_only_triangles_predicted_to_pay(simulator: RunningSimulator) -> None:
    markets = await markets_of(simulator)
    now_ms = int(time.time() * 1000)
    every = synthetic_signals(markets, 200, now_ms=now_ms, seed=7)
    assert any(float(s["predicted_bps"]) < 0 for s in every)  # the default markets hold losing triangles
    paying = synthetic_signals(markets, 200, now_ms=now_ms, seed=7, min_predicted_bps=0.0)
    assert all(float(s["predicted_bps"]) >= 0 for s in paying)
    assert {tuple(s["triangle_key"]) for s in paying} == {t.pairs for t in paying_triangles(markets, 0.0)}
    spread = synthetic_signals(markets, 200, now_ms=now_ms, seed=7, spread_pairs=1, min_predicted_bps=0.0)
    assert all(float(s["predicted_bps"]) >= 0 for s in spread)  # what `send --synthetic` sends
