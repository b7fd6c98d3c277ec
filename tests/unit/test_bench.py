"""The benchmark suite's pure pieces: CDF points, targets, profile folding, markets, intake."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest


from bench.common import LatencySummary, cdf_points
from bench.intake import INTAKE_VARIANTS, measure_intake
from bench.markets import write_bench_markets
from bench.profile import summarise
from bench.procstat import CpuSnapshot, busy_and_steal
from bench.stack import parse_cpus
from bench.summary import aggregate, evaluate_targets, is_trident_role, spread
from bench.thin import THIN_PARTS, resp_command
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


def _floor(hop_p50: float, total: float) -> dict:
    """A thin floor whose four p50s add to `total`, the hop's being `hop_p50`."""
    rest = (total - hop_p50) / 3
    parts = [{"measure": part, "p50_us": hop_p50 if part == "hot hop" else rest} for part in THIN_PARTS]
    return {"parts": parts, "sum_p50_us": total}


def _run(workers: int, repeat: int, p50: float, p99: float, floor_sum: float, cpu: dict[str, float]) -> dict:
    return {"workers": workers, "rate": 200, "repeat": repeat, "p50_us": p50, "p99_us": p99,
            "floor": _floor(60.0, floor_sum), "p50_over_floor": p50 / floor_sum, "p99_over_floor": p99 / floor_sum,
            "first_order": None, "execution": None, "executions_per_s": 200.0, "admitted_fraction": 1.0,
            "busy_cores": 1.0, "steal_cores": 0.0, "cpu_ms_per_execution": cpu, "executions_per_busy_core": 200.0,
            "trident_cpu_ms_per_execution": sum(v for k, v in cpu.items() if is_trident_role(k)),
            "total_cpu_ms_per_execution": sum(cpu.values())}


def test_targets_are_medians_of_ratios_taken_within_each_run() -> None:
    multi_cpu = {"supervisor": 0.3, "worker 0": 0.2, "worker 1": 0.2, "redis": 0.5}
    runs = [
        _run(2, 0, 1000.0, 2000.0, 800.0, multi_cpu), _run(0, 0, 900.0, 1800.0, 800.0, {"supervisor": 0.6}),
        _run(2, 1, 1300.0, 2600.0, 1000.0, multi_cpu), _run(0, 1, 1200.0, 2400.0, 1000.0, {"supervisor": 0.6}),
        _run(2, 2, 2000.0, 9000.0, 1000.0, {**multi_cpu, "supervisor": 0.5}),
        _run(0, 2, 1800.0, 3000.0, 1000.0, {"supervisor": 0.6}),
    ]
    document = {"parameters": {"target_rate": 200, "multiprocess_workers": 2}, "latency": runs,
                "configs": aggregate(runs), "intake": {"refuse_ratio": 0.55}}
    results = {t["target"]: t for t in evaluate_targets(document)}
    p50 = results["multiprocess ×2 @ 200/s: signal→wire p50 ÷ thin floor sum"]
    assert (p50["measured"], p50["range"], p50["met"]) == (1.3, [1.25, 2.0], False)  # ratios 1.25, 1.3, 2.0
    p99 = results["multiprocess ×2 @ 200/s: signal→wire p99 ÷ thin floor sum"]
    assert (p99["measured"], p99["met"]) == (2.6, True)  # 2.5, 2.6, 9.0: the median, not the worst
    cpu = results["multiprocess ×2 @ 200/s: Trident CPU per execution (supervisor + workers)"]
    assert (cpu["measured"], cpu["range"], cpu["met"]) == (0.7, [0.7, 0.9], True)  # Redis is not Trident's
    assert results["intake (decode + validate + refuse) ÷ raw msgpack decode, one core"]["met"] is True
    hop = results["@ 200/s: (multiprocess p50 − inline p50) − one hot hop"]
    assert (hop["measured"], hop["range"], hop["met"]) == (40.0, [40.0, 140.0], False)  # 100, 100, 200 − 60
    completion = results["multiprocess ×2 @ 200/s, simulator +2 ms: paper completion p50 ÷ slowest of 3 concurrent raw calls"]
    assert (completion["measured"], completion["met"]) == (None, None)  # no completion run: said, not guessed
    completion_runs = [{**_run(2, r, 1.0, 1.0, 1.0, multi_cpu), "kind": "completion", "completion_over_3_raw": ratio}
                       for r, ratio in enumerate((1.05, 1.3, 1.2))]
    document["configs"] = aggregate([*runs, *completion_runs])
    results = {t["target"]: t for t in evaluate_targets(document)}
    completion = results["multiprocess ×2 @ 200/s, simulator +2 ms: paper completion p50 ÷ slowest of 3 concurrent raw calls"]
    assert (completion["measured"], completion["range"], completion["met"]) == (1.2, [1.05, 1.3], False)
    latency = next(c for c in document["configs"] if c["workers"] == 2 and c["kind"] == "latency")
    assert latency["runs"] == 3  # completion runs at the same rate are their own configuration


def test_aggregate_gives_median_and_range_per_configuration() -> None:
    runs = [_run(0, r, p50, 1.0, 500.0, {"supervisor": cpu}) for r, (p50, cpu) in enumerate(
        [(300.0, 0.5), (100.0, 0.9), (200.0, 0.7)])]
    (config,) = aggregate(runs)
    assert config["label"] == "inline @ 200/s" and config["runs"] == 3
    assert config["p50_us"] == {"median": 200.0, "min": 100.0, "max": 300.0, "n": 3}
    assert config["cpu_ms_per_execution"]["supervisor"] == {"median": 0.7, "min": 0.5, "max": 0.9, "n": 3}
    assert spread([None, None]) is None


def test_busy_and_steal_are_cores_over_the_interval() -> None:
    cores = os.cpu_count() or 1
    before, after = CpuSnapshot(busy=100, steal=10, total=1000), CpuSnapshot(busy=600, steal=110, total=2000)
    assert busy_and_steal(before, after) == {"busy_cores": round(cores * 0.5, 3), "steal_cores": round(cores * 0.1, 3)}
    assert busy_and_steal(None, after) == {"busy_cores": None, "steal_cores": None}


def test_resp_command_is_what_redis_reads() -> None:
    assert resp_command("PING") == b"*1\r\n$4\r\nPING\r\n"
    assert resp_command(b"EVALSHA", "ab", 1, "k") == b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n"


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


def test_cpu_lists_read_as_taskset_writes_them() -> None:
    assert parse_cpus("0-3,6") == frozenset({0, 1, 2, 3, 6})
    assert parse_cpus("2") == frozenset({2})
    with pytest.raises(ValueError):
        parse_cpus("x")
