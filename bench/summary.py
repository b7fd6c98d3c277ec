"""The suite's results document, its targets (ratios measured in the same run) and its markdown.

Everything here works on plain data (the JSON document), so `results.md` and the plot can be
rebuilt from `results.json` alone. Each configuration (variant × offered rate) runs several
times; a figure is reported as the median of the runs and their range. A latency ratio is taken
within one run (the path against the thin floor probed between its own signals), then its median
over the runs. Targets, from the performance issue (at the target rate, multiprocess, paper):

- signal→wire p50 ≤ 1.2 × the thin floor's sum, p99 ≤ 3 × it;
- Trident's CPU per execution (supervisor + workers) ≤ 0.8 ms;
- intake (decode + validate + refuse) ≥ 0.5 × raw msgpack decode on one core;
- multiprocess p50 − inline p50 ≤ one hot hop (the floor's hop p50 in the multiprocess run);
- with the simulator answering 2 ms late, paper completion p50 ≤ 1.1 × the slowest of 3
  concurrent raw calls (probed in the same run).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import fields
from decimal import Decimal
from typing import Any

from bench.common import LatencySummary, cdf_points
from bench.intake import INTAKE_VARIANTS
from bench.latency import Run, variant_name
from bench.thin import THIN_PARTS
from shared.report import EdgeBreakdown

__all__ = ["run_document", "edge_means", "spread", "aggregate", "evaluate_targets", "render_markdown",
           "is_trident_role"]

_EDGE_TERMS = tuple(field.name for field in fields(EdgeBreakdown))


def is_trident_role(role: str) -> bool:
    """Trident's own processes: the supervisor and its workers (not Redis, the simulator, the sender)."""
    return role == "supervisor" or role.startswith("worker")


def _execution_ns(run: Run) -> list[int]:
    """First order fired → report built, per filled report (the triangle's own completion time)."""
    return [round((r.total_ms - r.first_order_ms) * 1e6) for r in run.reports if r.status == "filled"]


def _first_order_ns(run: Run) -> list[int]:
    """Supervisor read the frame → first order fired, per filled report (admission, hop, parse)."""
    return [round(r.first_order_ms * 1e6) for r in run.reports if r.status == "filled"]


def edge_means(run: Run) -> dict[str, float]:
    """Mean of each edge term (bps) over the run's filled reports, and the mean effective bps."""
    filled = [r for r in run.reports if r.status == "filled"]
    if not filled:
        return {}
    means = {term: float(sum((getattr(r.edge, term) for r in filled), Decimal(0)) / len(filled))
             for term in _EDGE_TERMS}
    means["effective"] = sum(r.effective_bps for r in filled) / len(filled)
    return {term: round(value, 3) for term, value in means.items()}


def _floor_document(run: Run) -> dict[str, Any] | None:
    """The thin floor probed during `run`: each part's summary, and the sum of the four path
    parts' p50s when it probed them (a completion run probes round trips instead)."""
    measured = [part for part, samples in run.floor_ns.items() if samples]
    if not measured:
        return None
    parts = [LatencySummary.from_ns("thin floor", part, run.floor_ns[part]).to_dict() for part in measured]
    path = [part["p50_us"] for part in parts if part["measure"] in THIN_PARTS]
    return {"parts": parts, "sum_p50_us": round(sum(path), 1) if len(path) == len(THIN_PARTS) else None,
            "cdf": {part: cdf_points(run.floor_ns[part], 100) for part in measured}}


def run_document(run: Run) -> dict[str, Any]:
    execution = _execution_ns(run)
    first_order = _first_order_ns(run)
    document = {
        **run.to_dict(),
        "label": run.label,
        "cdf": cdf_points(run.latencies_ns),
        "execution": {**LatencySummary.from_ns(run.label, "execution (fired → report)", execution).to_dict(),
                      "label": f"{run.label}: execution (fired → report)"} if execution else None,
        "first_order": LatencySummary.from_ns(run.label, "read → first order fired", first_order).to_dict()
        if first_order else None,
        "edge_means": edge_means(run),
        "floor": _floor_document(run),
    }
    trident = sum(ms for role, ms in document["cpu_ms_per_execution"].items() if is_trident_role(role))
    document["trident_cpu_ms_per_execution"] = round(trident, 3)
    document["total_cpu_ms_per_execution"] = round(sum(document["cpu_ms_per_execution"].values()), 3)
    floor_sum = document["floor"]["sum_p50_us"] if document["floor"] else None
    if floor_sum and "p50_us" in document:
        document["p50_over_floor"] = round(document["p50_us"] / floor_sum, 3)
        document["p99_over_floor"] = round(document["p99_us"] / floor_sum, 3)
    slowest_of_3 = _part(document, "3 raw POSTs at once (slowest)")
    if slowest_of_3 and execution:
        document["completion_over_3_raw"] = round(document["execution"]["p50_us"] / slowest_of_3, 3)
        document["completion_over_1_raw"] = round(document["execution"]["p50_us"]
                                                  / (_part(document, "raw POST round trip") or slowest_of_3), 3)
    busy = document.get("busy_cores")
    document["executions_per_busy_core"] = round(document["executions_per_s"] / busy, 1) if busy else None
    return document


def spread(values: Sequence[float | None]) -> dict[str, float] | None:
    """Median and range of the runs' values (None where no run has one)."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return {"median": round(statistics.median(present), 3), "min": round(min(present), 3),
            "max": round(max(present), 3), "n": len(present)}


_AGGREGATED: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "p50_us": lambda run: run.get("p50_us"),
    "p99_us": lambda run: run.get("p99_us"),
    "floor_sum_us": lambda run: run["floor"]["sum_p50_us"] if run.get("floor") else None,
    "completion_over_3_raw": lambda run: run.get("completion_over_3_raw"),
    "completion_over_1_raw": lambda run: run.get("completion_over_1_raw"),
    "raw_post_round_trip_us": lambda run: _part(run, "raw POST round trip"),
    "three_raw_posts_slowest_us": lambda run: _part(run, "3 raw POSTs at once (slowest)"),
    "p50_over_floor": lambda run: run.get("p50_over_floor"),
    "p99_over_floor": lambda run: run.get("p99_over_floor"),
    "read_to_fired_p50_us": lambda run: run["first_order"]["p50_us"] if run.get("first_order") else None,
    "execution_p50_us": lambda run: run["execution"]["p50_us"] if run.get("execution") else None,
    "executions_per_s": lambda run: run["executions_per_s"],
    "admitted_fraction": lambda run: run["admitted_fraction"],
    "busy_cores": lambda run: run.get("busy_cores"),
    "steal_cores": lambda run: run.get("steal_cores"),
    "trident_cpu_ms_per_execution": lambda run: run["trident_cpu_ms_per_execution"],
    "total_cpu_ms_per_execution": lambda run: run["total_cpu_ms_per_execution"],
    "executions_per_busy_core": lambda run: run.get("executions_per_busy_core"),
}


def aggregate(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per configuration (workers, rate), in first-seen order: every figure's spread
    over its runs, CPU per execution per process included."""
    groups: dict[tuple[str, int, float | None], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run.get("kind", "latency"), run["workers"], run["rate"]), []).append(run)
    configs = []
    for (kind, workers, rate), members in groups.items():
        roles = list(dict.fromkeys(role for run in members for role in run["cpu_ms_per_execution"]))
        suffix = ", simulator +2 ms" if kind == "completion" else ""
        configs.append({
            "kind": kind, "workers": workers, "rate": rate, "variant": variant_name(workers), "runs": len(members),
            "label": f"{variant_name(workers)} @ {'max' if rate is None else f'{rate:g}/s'}{suffix}",
            **{name: spread([pick(run) for run in members]) for name, pick in _AGGREGATED.items()},
            "cpu_ms_per_execution": {role: spread([run["cpu_ms_per_execution"].get(role) for run in members])
                                     for role in roles},
            "floor_parts_p50_us": {part: spread([_part(run, part) for run in members]) for part in THIN_PARTS},
        })
    return configs


def _part(run: dict[str, Any], part: str) -> float | None:
    floor = run.get("floor")
    if not floor:
        return None
    return next((row["p50_us"] for row in floor["parts"] if row["measure"] == part), None)


def _config(document: dict[str, Any], workers: int, rate: float | None, kind: str = "latency") -> dict[str, Any] | None:
    return next((c for c in document["configs"]
                 if c.get("kind", "latency") == kind and c["workers"] == workers and c["rate"] == rate), None)


def _median(config: dict[str, Any] | None, name: str) -> float | None:
    value = config.get(name) if config else None
    return value["median"] if value else None


def _target(name: str, measured: dict[str, float] | None, limit: float, unit: str, *,
            at_most: bool = True) -> dict[str, Any]:
    if measured is None:
        return {"target": name, "measured": None, "limit": limit, "unit": unit,
                "direction": "≤" if at_most else "≥", "met": None}
    value = measured["median"]
    return {"target": name, "measured": value, "range": [measured["min"], measured["max"]], "runs": measured["n"],
            "limit": limit, "unit": unit, "direction": "≤" if at_most else "≥",
            "met": value <= limit if at_most else value >= limit}


def _paired_differences(document: dict[str, Any], workers: int, rate: float) -> tuple[list[float], list[float]]:
    """Per repeat: multiprocess p50 − inline p50, and the multiprocess run's hot-hop p50."""
    differences, hops = [], []
    by_key = {(run["workers"], run["rate"], run["repeat"]): run for run in document["latency"]
              if run.get("kind", "latency") == "latency"}
    for (w, r, repeat), run in by_key.items():
        inline = by_key.get((0, r, repeat))
        if w == workers and r == rate and inline and "p50_us" in run and "p50_us" in inline:
            differences.append(run["p50_us"] - inline["p50_us"])
            hops.append(_part(run, "hot hop") or 0.0)
    return differences, hops


def evaluate_targets(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets at the target rate, each the median over the runs (with its range)."""
    parameters = document["parameters"]
    rate, workers = parameters["target_rate"], parameters["multiprocess_workers"]
    multi = _config(document, workers, rate)
    name = f"{variant_name(workers)} @ {rate:g}/s"
    targets = [
        _target(f"{name}: signal→wire p50 ÷ thin floor sum", multi and multi["p50_over_floor"], 1.2, "×"),
        _target(f"{name}: signal→wire p99 ÷ thin floor sum", multi and multi["p99_over_floor"], 3.0, "×"),
        _target(f"{name}: Trident CPU per execution (supervisor + workers)",
                multi and multi["trident_cpu_ms_per_execution"], 0.8, "ms"),
    ]
    intake = document.get("intake")
    if intake:
        ratio = intake["refuse_ratio"]
        targets.append(_target("intake (decode + validate + refuse) ÷ raw msgpack decode, one core",
                               {"median": ratio, "min": ratio, "max": ratio, "n": 1}, 0.5, "×", at_most=False))
    differences, hops = _paired_differences(document, workers, rate)
    excess = spread([d - h for d, h in zip(differences, hops, strict=True)])
    targets.append(_target(f"@ {rate:g}/s: (multiprocess p50 − inline p50) − one hot hop", excess, 0.0, "µs"))
    completion = _config(document, workers, rate, "completion")
    targets.append(_target(f"{name}, simulator +2 ms: paper completion p50 ÷ slowest of 3 concurrent raw calls",
                           completion and completion["completion_over_3_raw"], 1.1, "×"))
    return targets


# --- markdown --------------------------------------------------------------------------------


def _fmt(value: dict[str, float] | None, digits: int = 1, unit: str = "") -> str:
    if not value:
        return "—"
    if value["n"] == 1 or value["min"] == value["max"]:
        return f"{value['median']:,.{digits}f}{unit}"
    return f"{value['median']:,.{digits}f}{unit} [{value['min']:,.{digits}f}–{value['max']:,.{digits}f}]"


def _targets_table(targets: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| target | measured: median [range] | limit | met |", "|---|--:|--:|:-:|"]
    for t in targets:
        if t["measured"] is None:
            lines.append(f"| {t['target']} | not measured | {t['direction']} {t['limit']:g} {t['unit']} | — |")
            continue
        low, high = t["range"]
        measured = f"{t['measured']:,.3f} {t['unit']}" + (f" [{low:,.3f}–{high:,.3f}]" if low != high else "")
        lines.append(f"| {t['target']} | {measured} | {t['direction']} {t['limit']:g} {t['unit']} | "
                     f"{'yes' if t['met'] else '**no**'} |")
    return lines


def _latency_configs_table(configs: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| configuration | runs | signal→wire p50 µs | p99 µs | thin floor µs | p50 ÷ floor | p99 ÷ floor "
             "| read → fired p50 µs | admitted | busy cores | steal cores |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for c in configs:
        if c.get("kind", "latency") != "latency":
            continue
        lines.append(f"| {c['label']} | {c['runs']} | {_fmt(c['p50_us'], 0)} | {_fmt(c['p99_us'], 0)} | "
                     f"{_fmt(c['floor_sum_us'], 0)} | {_fmt(c['p50_over_floor'], 2)} | {_fmt(c['p99_over_floor'], 2)} | "
                     f"{_fmt(c['read_to_fired_p50_us'], 0)} | {_fmt(c['admitted_fraction'], 3)} | "
                     f"{_fmt(c['busy_cores'], 2)} | {_fmt(c['steal_cores'], 3)} |")
    return lines


def _floor_parts_table(configs: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| configuration | " + " | ".join(f"{part} p50 µs" for part in THIN_PARTS) + " |",
             "|---|" + "--:|" * len(THIN_PARTS)]
    for c in configs:
        if c.get("kind", "latency") == "latency":
            lines.append(f"| {c['label']} | " + " | ".join(_fmt(c["floor_parts_p50_us"][p], 0) for p in THIN_PARTS)
                         + " |")
    return lines


def _cpu_table(configs: Sequence[dict[str, Any]]) -> list[str]:
    roles = list(dict.fromkeys(role for c in configs for role in c["cpu_ms_per_execution"]))
    lines = ["| configuration | executions/s | " + " | ".join(roles) + " | Trident (supervisor + workers) | all |",
             "|---|--:|" + "--:|" * (len(roles) + 2)]
    for c in configs:
        per_role = " | ".join(_fmt(c["cpu_ms_per_execution"].get(role), 3) for role in roles)
        lines.append(f"| {c['label']} | {_fmt(c['executions_per_s'], 0)} | {per_role} | "
                     f"{_fmt(c['trident_cpu_ms_per_execution'], 3)} | {_fmt(c['total_cpu_ms_per_execution'], 3)} |")
    return lines


def _completion_table(configs: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| configuration | runs | completion p50 µs | 1 raw POST µs | 3 raw POSTs at once, slowest µs "
             "| completion ÷ slowest of 3 | completion ÷ one |", "|---|--:|--:|--:|--:|--:|--:|"]
    for c in configs:
        if c.get("kind") == "completion":
            lines.append(f"| {c['label']} | {c['runs']} | {_fmt(c['execution_p50_us'], 0)} | "
                         f"{_fmt(c['raw_post_round_trip_us'], 0)} | {_fmt(c['three_raw_posts_slowest_us'], 0)} | "
                         f"{_fmt(c['completion_over_3_raw'], 2)} | {_fmt(c['completion_over_1_raw'], 2)} |")
    return lines


def _saturation_table(configs: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| configuration | runs | executions/s | busy cores | steal cores | executions/s per busy core "
             "| CPU ms per execution: Trident | all processes |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for c in configs:
        if c.get("kind") == "saturation":
            lines.append(f"| {c['label']} | {c['runs']} | {_fmt(c['executions_per_s'], 0)} | {_fmt(c['busy_cores'], 2)} | "
                         f"{_fmt(c['steal_cores'], 3)} | {_fmt(c['executions_per_busy_core'], 0)} | "
                         f"{_fmt(c['trident_cpu_ms_per_execution'], 3)} | {_fmt(c['total_cpu_ms_per_execution'], 3)} |")
    return lines


def render_markdown(document: dict[str, Any]) -> str:
    """results.md: every table of the document, targets first."""
    host, parameters = document["host"], document["parameters"]
    configs = document["configs"]
    out = [
        f"# Trident benchmark results{' (quick)' if parameters['quick'] else ''}",
        "",
        f"Command: `{document['command']}` — {document['started_utc']}, {document['elapsed_s']:.0f} s.",
        f"Host: Python {host['python']}, {host['platform']}, {host['cpu_count']} CPUs; load average "
        f"{document['load_before']} before, {document['load_after']} after. Each configuration ran "
        f"{parameters['repeats']}×; figures are the median [range] of the runs.",
        "",
        f"## Targets (at {parameters['target_rate']:g}/s; ratios within each run, then their median)",
        "",
        *_targets_table(document["targets"]),
        "",
        "## Signal→wire (the sender's write → the first order test at the simulator)",
        "",
        "The thin floor is probed between the run's own signals (bench.thin): frame one-way + raw-RESP "
        "EVALSHA + hot hop + raw POST until seen, p50 each. Busy and stolen cores come from /proc/stat "
        "over the send window; admitted is the fraction of signals sent that were admitted.",
        "",
        *_latency_configs_table(configs),
        "",
        "### Thin floor parts (p50 µs, probed during each configuration's runs)",
        "",
        *_floor_parts_table(configs),
        "",
        "## CPU per execution, per process (ms; each process's CPU until every execution reported ÷ filled)",
        "",
        "The sender also runs the floor probes; the simulator and Redis serve them too.",
        "",
        *_cpu_table(configs),
        "",
        "## Completion with the simulator answering 2 ms late",
        "",
        "Paper completion is the triangle's first order fired → its report built (from the reports); "
        "the references are raw POSTs probed between the same run's signals: one until its answer, "
        "and three at once on three warm connections until the slowest answer.",
        "",
        *_completion_table(configs),
        "",
        "## Saturation (sent as fast as the socket takes them, 4 connections)",
        "",
        *_saturation_table(configs),
    ]
    intake = document.get("intake")
    if intake:
        raw = intake["per_s"]["msgpack decode"]
        out += ["", f"## Intake on one core ({intake['frames']} frames of {intake['frame_bytes']} B)", "",
                "| stage | frames/s | of raw decode |", "|---|--:|--:|"]
        out += [f"| {name} | {intake['per_s'][name]:,.0f} | {intake['per_s'][name] / raw:.0%} |"
                for name in INTAKE_VARIANTS]
    out += ["", "## Edge attribution (mean bps over the filled reports, first run of each configuration)", "",
            "| run | predicted | − model | − fees | − slippage | − latency | − rounding | = effective |",
            "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for run in document["latency"]:
        edge = run["edge_means"]
        if run["repeat"] == 0 and run["rate"] == parameters["target_rate"] and run.get("kind") == "latency" and edge:
            terms = " | ".join(f"{edge[t]:,.3f}" for t in ("predicted", "model", "fees", "slippage", "latency",
                                                            "rounding", "effective"))
            out.append(f"| {run['label']} | {terms} |")
    for variant, profile in document.get("profiles", {}).items():
        out += ["", f"## Profile: {variant} (py-spy, share of each process's samples)"]
        for role, data in profile["roles"].items():
            out += ["", f"**{role}** ({data['samples']} samples) — Trident functions on the stack: "
                    + "; ".join(f"{share}% {frame}" for share, frame in data["inclusive_trident"]),
                    "", "top of stack: " + "; ".join(f"{share}% {frame}" for share, frame in data["self"])]
    return "\n".join(out) + "\n"
