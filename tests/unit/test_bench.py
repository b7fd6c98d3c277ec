"""The benchmark suite's pure pieces: CDF points, targets, profile folding, markets, intake."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from bench.common import LatencySummary, cdf_points
from bench.intake import INTAKE_VARIANTS, measure_intake
from bench.markets import write_bench_markets
from bench.profile import summarise
from bench.summary import evaluate_targets
from sim.market import DEFAULT_MARKETS_PATH, load_markets
from tests.support.signals import EXAMPLE_SIGNAL


def test_cdf_points_are_observed_samples_at_even_ranks() -> None:
    samples = [4000, 1000, 3000, 2000]  # ns, unsorted
    assert cdf_points(samples, points=2) == [(2.0, 0.5), (4.0, 1.0)]
    assert cdf_points(samples, points=10)[-1] == (4.0, 1.0)
    assert cdf_points([]) == []


def test_summary_has_the_p99_9_rank() -> None:
    summary = LatencySummary.from_ns("v", "m", list(range(1, 1001)))  # 1..1000 ns
    assert (summary.p50_us, summary.p99_us, summary.p999_us, summary.max_us) == (0.5, 0.99, 0.999, 1.0)


def _run(workers: int, p50: float, p99: float, execution_p50: float) -> dict:
    return {"workers": workers, "rate": 500, "variant": "inline" if workers == 0 else f"multiprocess ×{workers}",
            "p50_us": p50, "p99_us": p99, "execution": {"p50_us": execution_p50}}


def test_targets_are_ratios_within_the_document() -> None:
    floor_rows = [{"measure": "channel hop", "p50_us": 60.0}, {"measure": "POST round trip", "p50_us": 500.0}]
    document = {
        "parameters": {"steady_rate": 500, "multiprocess_workers": 2},
        "floor": {"sum_p50_us": 400.0, "parts": floor_rows},
        "latency": [_run(2, 650.0, 1300.0, 550.0), _run(0, 560.0, 1100.0, 700.0)],
        "intake": {"refuse_ratio": 0.25},
        "scaling": [{"workers": 1, "executions_per_s": 1000.0}, {"workers": 2, "executions_per_s": 1900.0}],
    }
    results = {t["target"]: (t["measured"], t["met"]) for t in evaluate_targets(document)}
    assert results["multiprocess ×2 signal→wire p50 ÷ floor sum"] == (1.625, False)  # 650 / 400 > 1.5
    assert results["multiprocess ×2 signal→wire p99 ÷ floor sum"] == (3.25, False)
    assert results["inline signal→wire p50 ÷ floor sum"] == (1.4, True)
    assert results["inline signal→wire p99 ÷ floor sum"] == (2.75, True)
    assert results["multiprocess p50 − inline p50 (≤ one hop)"] == (90.0, False)  # 90 µs > one 60 µs hop
    assert results["multiprocess ×2 triangle execution p50 ÷ one POST round trip"] == (1.1, True)
    assert results["inline triangle execution p50 ÷ one POST round trip"] == (1.4, False)
    assert results["intake (decode+validate+refuse) ÷ raw msgpack decode"] == (0.25, False)
    assert results["executions/s, 2 workers ÷ 1 worker"] == (1.9, True)


def test_profile_folds_stacks_by_process_role(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    supervisor = 'process 1:"trident run"'
    worker = 'process 2:"spawn_main"'
    raw.write_text("\n".join([
        f"{supervisor};run (uvloop/__init__.py:92);admit (supervisor/admission.py:64);parse_signal (shared/signal.py:308) 6",
        f"{supervisor};run (uvloop/__init__.py:92) 4",
        f"{supervisor};{worker};run_async (aiomultiprocess/core.py:146);execute_paper (worker/paper.py:155) 3",
        f"{supervisor};{worker};run_async (aiomultiprocess/core.py:146) 1",
    ]) + "\n", encoding="utf-8")
    summary = summarise(raw)
    assert dict(summary.samples) == {"supervisor": 10, "worker": 4}
    assert summary.top("supervisor", "inclusive", own_code_only=True) == [
        (60.0, "admit (supervisor/admission.py:64)"), (60.0, "parse_signal (shared/signal.py:308)")]
    assert summary.top("supervisor", "self") == [(60.0, "parse_signal (shared/signal.py:308)"),
                                                 (40.0, "run (uvloop/__init__.py:92)")]
    assert summary.top("worker", "inclusive", own_code_only=True) == [(75.0, "execute_paper (worker/paper.py:155)")]


def test_bench_markets_add_two_consistent_pairs_per_coin(tmp_path: Path) -> None:
    path = write_bench_markets(tmp_path / "markets.json", coins=3)
    default = json.loads(DEFAULT_MARKETS_PATH.read_text(encoding="utf-8"))
    spec = load_markets(path)
    assert len(spec.symbols) == len(default["symbols"]) + 6
    for coin in ("X01", "X02", "X03"):
        usdt_bid = spec.books[f"{coin}-USDT"].bids[0][0]
        btc_bid = spec.books[f"{coin}-BTC"].bids[0][0]
        # X-BTC is priced at X-USDT / 67000 (to its 1e-9 increment): within 1e-9 BTC of it
        assert abs(btc_bid - usdt_bid / Decimal(67000)) <= Decimal("1e-9")
        assert spec.balances[coin] > 0


async def test_intake_counts_every_stage_and_refuses_every_frame() -> None:
    signals = [{**EXAMPLE_SIGNAL, "correlation_id": f"in-{i}"} for i in range(40)]
    result = await measure_intake(signals, repeats=1)  # raises unless all 40 were refused as paused
    assert set(result.per_s) == set(INTAKE_VARIANTS) and all(rate > 0 for rate in result.per_s.values())
    assert result.refuse_ratio == result.per_s["decode + validate + refuse"] / result.per_s["msgpack decode"]
