"""`python -m bench [--quick]` (also `trident bench`): the performance suite, in one run.

On one machine, in one run, against the same private Redis and exchange simulator:

1. signal→wire latency of Trident multiprocess (supervisor + N workers) and inline
   (`--workers 0`) at rates this box sustains (50, 100, 200/s), each configuration run several
   times, with the thin floor (`bench.thin`) probed between the run's own signals, busy and
   stolen cores (`/proc/stat`), the admitted fraction and CPU per execution per process;
2. paper completion with the simulator answering 2 ms late, against the slowest of 3 concurrent
   raw calls probed between the same run's signals;
3. saturation, separately: executions/s and CPU per execution with 0, 1, 2 … workers, signals
   sent as fast as the socket takes them (`bench.scaling`);
4. intake throughput on one core (`bench.intake`);
5. (full run) py-spy profiles of the multiprocess shape at the target rate (`bench.profile`).

Writes `results.json`, `results.md` and `latency.png` into `--out` (default bench/out/). Targets
are ratios within a run (`bench.summary`): absolute times drift on shared machines. `--quick`
is a smoke test (about a minute); the full run takes about six minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench.common import host_info, write_json
from bench.intake import measure_intake
from bench.latency import Run, load_markets, run_config, variant_name
from bench.plot import plot
from bench.profile import Profiler, py_spy_available, summarise
from bench.scaling import measure_scaling
from bench.stack import Stack, SupervisorProcess, open_stack, parse_cpus
from bench.summary import aggregate, evaluate_targets, render_markdown, run_document
from bench.thin import open_thin_floor
from tools.synthetic import Market, synthetic_signals

__all__ = ["Plan", "QUICK", "FULL", "run_suite", "main"]

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
COMPLETION_LATENCY_MS = 2.0  # injected before every simulator answer in the completion runs


@dataclass(frozen=True, slots=True)
class Plan:
    """How much of everything one run measures."""

    quick: bool
    target_rate: float  # where the targets are read (one of `rates`)
    rates: tuple[float, ...]  # offered signals/s of the latency runs
    repeats: int  # runs of each configuration
    seconds_per_rate: float
    min_signals: int
    completion_signals: int  # per completion run (at the target rate, the simulator answering late)
    saturation_workers: tuple[int, ...]
    saturation_signals: int
    intake_frames: int
    intake_repeats: int
    profile_seconds: float  # 0: no profiles
    coins: int  # synthetic coins in the markets (see bench.markets)

    def signals_at(self, rate: float) -> int:
        return max(self.min_signals, round(rate * self.seconds_per_rate))


QUICK = Plan(quick=True, target_rate=200, rates=(200,), repeats=1, seconds_per_rate=2, min_signals=300,
             completion_signals=300, saturation_workers=(2,), saturation_signals=800, intake_frames=3000, intake_repeats=2,
             profile_seconds=0, coins=24)
FULL = Plan(quick=False, target_rate=200, rates=(50, 100, 200), repeats=3, seconds_per_rate=4, min_signals=240,
            completion_signals=500, saturation_workers=(0, 1, 2), saturation_signals=2000, intake_frames=20000, intake_repeats=3,
            profile_seconds=5, coins=24)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _profile(stack: Stack, markets: dict[str, Market], plan: Plan, workers: int,
                   out: Path) -> dict[str, Any] | None:
    """One extra steady run with py-spy attached to the supervisor and its workers."""
    count = round(plan.target_rate * plan.profile_seconds)
    raw = out / f"profile-{'inline' if workers == 0 else f'{workers}w'}.txt"
    profilers: list[Profiler] = []

    def attach(supervisor: SupervisorProcess) -> None:
        profilers.append(Profiler(supervisor.pid, raw, plan.profile_seconds))

    await run_config(stack, markets, workers=workers, rate=plan.target_rate, count=count, tag=f"prof{workers}w",
                     on_ready=attach)
    recorded = profilers[0].finish() if profilers else None
    if recorded is None:
        return None
    return {"raw": raw.name, "roles": summarise(recorded).to_dict()}


async def run_suite(plan: Plan, workers: int, out: Path, command: str, *, infra_cpus: frozenset[int] | None = None,
                    trident_cpus: frozenset[int] | None = None) -> dict[str, Any]:
    """Everything in `plan`; returns the results document (see bench.summary)."""
    started = time.monotonic()
    document: dict[str, Any] = {
        "command": command, "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": host_info(), "load_before": _load(),
        "parameters": {**asdict(plan), "multiprocess_workers": workers,
                       "infra_cpus": sorted(infra_cpus or ()), "trident_cpus": sorted(trident_cpus or ())},
    }
    async with open_stack(plan.coins, infra_cpus=infra_cpus, trident_cpus=trident_cpus) as stack:
        markets = await load_markets(stack.sim_url)
        probe = synthetic_signals(markets, 1, now_ms=int(time.time() * 1000), prefix="thin")[0]
        runs: list[Run] = []
        async with open_thin_floor(stack, probe) as floor:
            for repeat in range(plan.repeats):  # repeats outermost: drift over the run spreads evenly
                for rate in plan.rates:
                    count = plan.signals_at(rate)
                    for variant_workers in (workers, 0):  # the same stream for both shapes, back to back
                        _say(f"run {repeat + 1}/{plan.repeats}: {variant_name(variant_workers)}, "
                             f"{count} signals at {rate:g}/s")
                        runs.append(await run_config(stack, markets, workers=variant_workers, rate=rate, count=count,
                                                     tag=f"lat{variant_workers}w{rate:g}r{repeat}", floor=floor,
                                                     repeat=repeat))
            completion: list[Run] = []
            count = plan.completion_signals
            for repeat in range(plan.repeats):
                for variant_workers in (workers, 0):
                    _say(f"completion {repeat + 1}/{plan.repeats}: {variant_name(variant_workers)}, {count} signals "
                         f"at {plan.target_rate:g}/s, simulator +{COMPLETION_LATENCY_MS:g} ms")
                    completion.append(await run_config(
                        stack, markets, workers=variant_workers, rate=plan.target_rate, count=count,
                        tag=f"done{variant_workers}wr{repeat}", floor=floor, repeat=repeat, kind="completion",
                        sim_knobs={"latency_ms": COMPLETION_LATENCY_MS}))
        document["latency"] = [run_document(run) for run in runs]
        document["completion"] = [run_document(run) for run in completion]
        saturation: list[Run] = []
        for repeat in range(plan.repeats):
            _say(f"saturation {repeat + 1}/{plan.repeats}: workers {plan.saturation_workers}, "
                 f"{plan.saturation_signals} signals each")
            for run in await measure_scaling(stack, markets, plan.saturation_workers, plan.saturation_signals,
                                             tag=f"r{repeat}"):
                run.repeat = repeat
                saturation.append(run)
        document["saturation"] = [run_document(run) for run in saturation]
        document["configs"] = aggregate([*document["latency"], *document["completion"], *document["saturation"]])
        if plan.profile_seconds and py_spy_available():
            _say(f"profile: {variant_name(workers)}")
            profile = await _profile(stack, markets, plan, workers, out)
            if profile is not None:
                document["profiles"] = {variant_name(workers): profile}
    _say(f"intake: {plan.intake_frames} frames")
    stream = synthetic_signals(markets, plan.intake_frames, now_ms=int(time.time() * 1000), prefix="intake")
    document["intake"] = (await measure_intake(stream, plan.intake_repeats)).to_dict()
    document["load_after"] = _load()
    document["elapsed_s"] = round(time.monotonic() - started, 1)
    document["targets"] = evaluate_targets(document)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: a few samples of everything (< 60 s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes of the multiprocess variant (default: one per core)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for results.json/.md and the plot")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles of the full run")
    parser.add_argument("--repeats", type=int, help="runs of each configuration (default: 3, quick: 1)")
    parser.add_argument("--infra-cpus", type=parse_cpus, metavar="LIST",
                        help="pin the simulator, Redis and the sender to these CPUs (taskset -c syntax, e.g. 0-1)")
    parser.add_argument("--trident-cpus", type=parse_cpus, metavar="LIST",
                        help="pin the supervisor and its workers to these CPUs (e.g. 2-5), off --infra-cpus")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1 (the inline variant always runs beside it)")
    plan = QUICK if args.quick else FULL
    if args.no_profile:
        plan = Plan(**{**asdict(plan), "profile_seconds": 0})
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error("--repeats must be >= 1")
        plan = Plan(**{**asdict(plan), "repeats": args.repeats})
    command = "python -m bench" + "".join(f" {arg}" for arg in (argv if argv is not None else sys.argv[1:]))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.infra_cpus and args.trident_cpus and args.infra_cpus & args.trident_cpus:
        parser.error("--infra-cpus and --trident-cpus must not share a CPU")
    document = uvloop.run(run_suite(plan, args.workers, args.out, command, infra_cpus=args.infra_cpus,
                                    trident_cpus=args.trident_cpus))
    write_json(args.out / "results.json", document)
    markdown = render_markdown(document)
    (args.out / "results.md").write_text(markdown, encoding="utf-8")
    plot(document, args.out / "latency.png")
    print(markdown)
    _say(f"wrote {args.out / 'results.json'}, results.md and latency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
