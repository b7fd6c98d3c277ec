"""The suite's figure, from the results document: latency CDFs per rate, where the time goes,
CPU per execution per process, and saturation.

Four panels: signal→wire CDFs at every offered rate (the first run of each configuration, with
the thin floor's sum at the target rate and the 1.2× / 3× target lines); the stage breakdown at
p50 (the supervisor's read → first order fired, from the reports, and the rest: the sender's
write → the read plus the order's way to the simulator); CPU per execution per process (median
of the runs, stacked); executions/s at saturation with 0 (inline), 1, 2 … workers.

    python -m bench.plot bench/out/results.json bench/out/latency.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

__all__ = ["plot", "main"]


def _cdf(axis: Any, points: list[list[float]], label: str, **style: Any) -> None:
    if points:
        axis.step([p[0] for p in points], [p[1] for p in points], where="post", label=label, **style)


def _median(value: dict[str, float] | None) -> float:
    return value["median"] if value else 0.0


def plot(document: dict[str, Any], path: Path) -> Path:
    """Draw the figure for `document` (see bench.summary) into `path` (PNG)."""
    target_rate = document["parameters"]["target_rate"]
    configs = document["configs"]
    figure, axes = plt.subplots(2, 2, figsize=(16, 11))
    (cdf_axis, stage_axis), (cpu_axis, saturation_axis) = axes

    for run in document["latency"]:
        if run["repeat"] == 0:
            _cdf(cdf_axis, run["cdf"], run["label"], linestyle="-" if run["workers"] else "--")
    target = next((c for c in configs if c.get("kind", "latency") == "latency" and c["rate"] == target_rate
                   and c["workers"]), None)
    floor_sum = _median(target["floor_sum_us"]) if target else 0.0
    if floor_sum:
        for factor, style in ((1, "-"), (1.2, "--"), (3, "-.")):
            label = f"thin floor @ {target_rate:g}/s" if factor == 1 else f"{factor:g}× floor"
            cdf_axis.axvline(floor_sum * factor, color="black", linestyle=style, linewidth=1, label=label)
    cdf_axis.set_xscale("log")
    cdf_axis.set_xlabel("µs (log)")
    cdf_axis.set_ylabel("fraction of signals ≤ x")
    cdf_axis.grid(True, which="both", alpha=0.3)
    cdf_axis.legend(fontsize=7, loc="lower right")
    cdf_axis.set_title("signal→wire by offered rate")

    rated = [c for c in configs if c.get("kind", "latency") == "latency"]
    labels = [c["label"] for c in rated]
    supervisor_part = [_median(c["read_to_fired_p50_us"]) for c in rated]
    rest = [max(_median(c["p50_us"]) - part, 0.0) for c, part in zip(rated, supervisor_part, strict=True)]
    floors = [_median(c["floor_sum_us"]) for c in rated]
    stage_axis.barh(labels, supervisor_part, label="supervisor read → first order fired (p50)")
    stage_axis.barh(labels, rest, left=supervisor_part, label="write → read, and fired → seen (rest of p50)")
    stage_axis.scatter(floors, labels, color="black", marker="|", s=300, label="thin floor sum", zorder=3)
    stage_axis.set_xlabel("µs")
    stage_axis.legend(fontsize=8)
    stage_axis.set_title("signal→wire p50: where it goes")

    roles = list(dict.fromkeys(role for c in configs for role in c["cpu_ms_per_execution"]))
    all_labels = [c["label"] for c in configs]
    left = [0.0] * len(configs)
    for role in roles:
        values = [_median(c["cpu_ms_per_execution"].get(role)) for c in configs]
        cpu_axis.barh(all_labels, values, left=left, label=role)
        left = [a + b for a, b in zip(left, values, strict=True)]
    cpu_axis.axvline(0.8, color="black", linestyle="--", linewidth=1, label="target: Trident ≤ 0.8 ms")
    cpu_axis.set_xlabel("CPU ms per execution (median of the runs)")
    cpu_axis.legend(fontsize=7)
    cpu_axis.set_title("CPU per execution, per process")

    saturated = sorted((c for c in configs if c["rate"] is None), key=lambda c: c["workers"])
    rates = [_median(c["executions_per_s"]) for c in saturated]
    saturation_axis.bar([c["variant"] for c in saturated], rates,
                        color=["tab:gray" if c["workers"] == 0 else "tab:blue" for c in saturated])
    for index, (value, config) in enumerate(zip(rates, saturated, strict=True)):
        per_core = _median(config["executions_per_busy_core"])
        saturation_axis.annotate(f"{value:,.0f}/s\n{per_core:,.0f} per busy core", (index, value),
                                 ha="center", va="bottom", fontsize=8)
    saturation_axis.set_title("saturation: executions/s")
    saturation_axis.set_ylabel("filled reports per second")

    figure.suptitle(f"Trident benchmark — {document['started_utc']} — {document['host']['cpu_count']} CPUs")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m bench.plot RESULTS.json OUT.png", file=sys.stderr)
        return 2
    plot(json.loads(Path(args[0]).read_text(encoding="utf-8")), Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
