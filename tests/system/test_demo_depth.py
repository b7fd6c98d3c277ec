"""The default demo plan trades every paying triangle and sizes some signals past the top of
book; on the thin-edge triangle the depth then makes a fill lose, and the summary says so.
A real supervisor (paper, inline executor) on the simulator's default markets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from shared.codec import encode_frame
from shared.report import Status
from sim.server import RunningSimulator
from tests.support.e2e import e2e_settings, markets_of, running_supervisor, stream_reports
from tools.demo import OVERSIZED_USDT, _summary, build_demo_plan
from tools.send import send_frames
from tools.synthetic import paying_triangles, restamped


async def test_the_default_plan_produces_a_fill_that_depth_made_negative_and_the_summary_says_why(
    redis_url: str, simulator: RunningSimulator, tmp_path: Path
) -> None:
    markets = await markets_of(simulator)
    plan = build_demo_plan(markets, 600)  # the default run's plan
    signals = [item for item in plan if isinstance(item, dict) and "_demo_expect" not in item]
    traded = Counter(tuple(s["triangle_key"]) for s in signals)
    assert set(traded) == {t.pairs for t in paying_triangles(markets, 0.0)}  # every paying triangle, thin ones too
    oversized = [s for s in signals if float(s["starting_volume"]) >= OVERSIZED_USDT[0]]
    assert {tuple(s["triangle_key"]) for s in oversized} == set(traded)
    settings = e2e_settings(redis_url, simulator.url, tmp_path, workers=0, metrics_port=0)
    async with running_supervisor(settings) as supervisor:
        for n, signal in enumerate(oversized, 1):  # one at a time: nothing refused for isolation
            # the book read as it is sent: never older than the triangle's last trade
            await send_frames(settings.socket_path, [encode_frame(restamped(signal))], progress=False)
            await supervisor.wait_frames(n, 10)
            await supervisor.wait_idle(10)
    reports = await stream_reports(redis_url)
    assert len(reports) == len(oversized) and all(r.status == Status.FILLED for r in reports)
    losing = [r for r in reports if r.effective_bps <= 0]
    assert losing and all(r.triangle == ("KCS-USDT", "KCS-BTC", "BTC-USDT") for r in losing)
    assert all(r.edge.slippage > r.edge.gross - r.edge.fees > 0 for r in losing)  # depth, not fees
    out = _summary(len(oversized), reports, Counter(), {}, {}, 0)
    (line,) = [line for line in out.splitlines() if "made it negative" in line]
    assert f"where depth made it negative{len(losing):>12} of {len(reports)}: their size walked the books" in line
