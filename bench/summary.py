"""The suite's results document, its targets (ratios measured in the same run) and its markdown.

Everything here works on plain data (the JSON document), so `results.md` and the plot can be
rebuilt from `results.json` alone. Targets, from the performance issue:

- signal→wire at the steady rate: p50 ≤ 1.5 × the floor's sum, p99 ≤ 3 × it (each variant);
- multiprocess p50 − inline p50 ≤ one channel hop (the floor's hop p50);
- paper triangle execution (first order fired → report built) p50 ≤ 1.2 × one POST round trip;
- intake (decode + validate + refuse) ≥ 50 % of the raw msgpack decode rate on one core;
- executions/s with 2 workers ≥ 1.8 × with 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from decimal import Decimal
from typing import Any

from bench.common import LatencySummary, cdf_points
from bench.floor import FLOOR_PARTS, FloorResult
from bench.intake import INTAKE_VARIANTS
from bench.latency import Run, variant_name
from shared.report import EdgeBreakdown

__all__ = ["run_document", "edge_means", "evaluate_targets", "render_markdown"]

_EDGE_TERMS = tuple(field.name for field in fields(EdgeBreakdown))


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


def run_document(run: Run) -> dict[str, Any]:
    execution = _execution_ns(run)
    first_order = _first_order_ns(run)
    return {
        **run.to_dict(),
        "label": run.label,
        "cdf": cdf_points(run.latencies_ns),
        "execution": {**LatencySummary.from_ns(run.label, "execution (fired → report)", execution).to_dict(),
                      "label": f"{run.label}: execution (fired → report)"} if execution else None,
        "first_order": LatencySummary.from_ns(run.label, "read → first order fired", first_order).to_dict()
        if first_order else None,
        "edge_means": edge_means(run),
    }


def floor_document(floor: FloorResult) -> dict[str, Any]:
    return {
        "parts": [summary.to_dict() for summary in floor.summaries()],
        "sum_parts": list(FLOOR_PARTS),
        "sum_p50_us": round(floor.floor_sum_us, 1),
        "cdf": {name: cdf_points(values) for name, values in floor.samples.items()},
    }


def _row(document: dict[str, Any], measure: str) -> dict[str, Any]:
    return next(row for row in document["floor"]["parts"] if row["measure"] == measure)


def _steady(document: dict[str, Any], workers: int) -> dict[str, Any] | None:
    rate = document["parameters"]["steady_rate"]
    return next((run for run in document["latency"] if run["workers"] == workers and run["rate"] == rate), None)


def _target(name: str, measured: float, limit: float, unit: str, *, at_most: bool = True) -> dict[str, Any]:
    met = measured <= limit if at_most else measured >= limit
    return {"target": name, "measured": round(measured, 3), "limit": round(limit, 3), "unit": unit,
            "direction": "≤" if at_most else "≥", "met": met}


def evaluate_targets(document: dict[str, Any]) -> list[dict[str, Any]]:
    floor_sum = document["floor"]["sum_p50_us"]
    targets = []
    for workers in (document["parameters"]["multiprocess_workers"], 0):
        run = _steady(document, workers)
        if run is None or "p50_us" not in run:
            continue
        name = variant_name(workers)
        targets.append(_target(f"{name} signal→wire p50 ÷ floor sum", run["p50_us"] / floor_sum, 1.5, "×"))
        targets.append(_target(f"{name} signal→wire p99 ÷ floor sum", run["p99_us"] / floor_sum, 3.0, "×"))
    multi, inline = _steady(document, document["parameters"]["multiprocess_workers"]), _steady(document, 0)
    hop_p50 = _row(document, "channel hop")["p50_us"]
    if multi and inline and "p50_us" in multi and "p50_us" in inline:
        targets.append(_target("multiprocess p50 − inline p50 (≤ one hop)", multi["p50_us"] - inline["p50_us"],
                               hop_p50, "µs"))
    rtt = _row(document, "POST round trip")["p50_us"]
    for run in (multi, inline):
        if run and run.get("execution"):
            targets.append(_target(f"{run['variant']} triangle execution p50 ÷ one POST round trip",
                                   run["execution"]["p50_us"] / rtt, 1.2, "×"))
    targets.append(_target("intake (decode+validate+refuse) ÷ raw msgpack decode",
                           document["intake"]["refuse_ratio"], 0.5, "×", at_most=False))
    by_workers = {run["workers"]: run["executions_per_s"] for run in document["scaling"]}
    if by_workers.get(1) and 2 in by_workers:
        targets.append(_target("executions/s, 2 workers ÷ 1 worker", by_workers[2] / by_workers[1], 1.8, "×",
                               at_most=False))
    return targets


def _latency_table(rows: Sequence[dict[str, Any]], first_column: str) -> list[str]:
    lines = [f"| {first_column} | n | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |", "|---|--:|--:|--:|--:|--:|--:|"]
    for row in rows:
        figures = " | ".join(f"{row[key]:,.1f}" for key in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us"))
        lines.append(f"| {row.get('label', row['measure'])} | {row['n']} | {figures} |")
    return lines


def _runs_table(runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| run | offered | sent/s | admitted | refused (reason: n) | executions/s | CPU ms per execution |",
             "|---|--:|--:|--:|---|--:|---|"]
    for run in runs:
        refused = ", ".join(f"{reason}: {n}" for reason, n in sorted(run["refusals"].items())) or "—"
        per_execution = {role: 1000 * seconds / max(run["filled"], 1) for role, seconds in run["cpu_s"].items()}
        cpu = ", ".join(f"{role} {ms:.2f}" for role, ms in per_execution.items() if role != "workers" or ms)
        cpu += f" (total {sum(per_execution.values()):.2f})"
        offered = "max" if run["rate"] is None else f"{run['rate']:g}/s"
        killed = "" if run.get("stopped_cleanly", True) else " (did not stop on SIGTERM within 15 s: killed)"
        lines.append(f"| {run['label']}{killed} | {offered} | {run['achieved_send_rate']:,.0f} | {run['admitted']} | "
                     f"{refused} | {run['executions_per_s']:,.0f} | {cpu} |")
    return lines


def render_markdown(document: dict[str, Any]) -> str:
    """results.md: every table of the document, targets first."""
    host, parameters = document["host"], document["parameters"]
    out = [
        f"# Trident benchmark results{' (quick)' if parameters['quick'] else ''}",
        "",
        f"Command: `{document['command']}` — {document['started_utc']}, {document['elapsed_s']:.0f} s.",
        f"Host: Python {host['python']}, {host['platform']}, {host['cpu_count']} CPUs; load average "
        f"{document['load_before']} before, {document['load_after']} after (other processes share these cores).",
        "",
        "## Targets (ratios within this run)",
        "",
        "| target | measured | limit | met |",
        "|---|--:|--:|:-:|",
    ]
    for target in document["targets"]:
        out.append(f"| {target['target']} | {target['measured']:,.3f} {target['unit']} | {target['direction']} "
                   f"{target['limit']:,.3f} "
                   f"{target['unit']} | {'yes' if target['met'] else '**no**'} |")
    floor = document["floor"]
    out += ["", f"## Floor: the parts alone, paced at {parameters['steady_rate']:g}/s", ""]
    out += _latency_table(floor["parts"], "part")
    out += ["", f"Floor sum (p50 of {' + '.join(floor['sum_parts'])}): **{floor['sum_p50_us']:,.1f} µs**."]
    out += ["", "## Signal→wire (sender's write → first order test at the simulator)", ""]
    out += _latency_table([run for run in document["latency"] if run.get("n")], "run")
    out += ["", "Where it goes (p50, µs): the supervisor's part is read → first order fired (from the reports' "
            "timings); the rest is the sender's write → the supervisor's read plus the order's way to the simulator.",
            "", "| run | signal→wire | read → fired | rest (difference of p50s) |", "|---|--:|--:|--:|"]
    for run in document["latency"]:
        if run.get("first_order") and run.get("n"):
            part = run["first_order"]["p50_us"]
            out.append(f"| {run['label']} | {run['p50_us']:,.1f} | {part:,.1f} | {run['p50_us'] - part:,.1f} |")
    out += ["", "CPU per execution counts every process's CPU during the run (refused signals included) "
            "divided by the filled executions."]
    out += [""] + _runs_table(document["latency"])
    out += ["", "## Paper triangle execution (first order fired → report built) vs one simulator round trip", ""]
    rows = [_row(document, m) for m in ("POST round trip", "3 POSTs at once", "3 POSTs one after another")]
    rows += [run["execution"] for run in document["latency"] if run.get("execution")]
    out += _latency_table(rows, "measure")
    intake = document["intake"]
    out += ["", f"## Intake on one core ({intake['frames']} frames of {intake['frame_bytes']} B)", "",
            "| stage | frames/s | of raw decode |", "|---|--:|--:|"]
    raw = intake["per_s"]["msgpack decode"]
    for name in INTAKE_VARIANTS:
        out.append(f"| {name} | {intake['per_s'][name]:,.0f} | {intake['per_s'][name] / raw:.0%} |")
    out += ["", "## Scaling (saturated, 4 sender connections)", ""] + _runs_table(document["scaling"])
    out += ["", "## Edge attribution (mean bps over the filled reports of each steady run)", "",
            "| run | predicted | − model | − fees | − slippage | − latency | − rounding | = effective |",
            "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for run in document["latency"]:
        edge = run["edge_means"]
        if run["rate"] == parameters["steady_rate"] and edge:
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

