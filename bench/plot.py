"""The suite's figure: latency CDFs and executions/s against workers, from the results document.

Three panels: signal→wire CDFs at the steady rate (each variant, with the floor's sum and the
1.5× / 3× target lines), signal→wire CDFs at every offered rate, and executions/s with 0
(inline), 1, 2 … workers against perfect scaling from one worker.

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


def plot(document: dict[str, Any], path: Path) -> Path:
    """Draw the figure for `document` (see bench.summary) into `path` (PNG)."""
    steady = document["parameters"]["steady_rate"]
    floor_sum = document["floor"]["sum_p50_us"]
    figure, (steady_axis, rates_axis, scaling_axis) = plt.subplots(1, 3, figsize=(18, 5.5))

    for run in document["latency"]:
        if run["rate"] == steady:
            _cdf(steady_axis, run["cdf"], run["label"], linewidth=2)
    for part in document["floor"]["sum_parts"]:
        _cdf(steady_axis, document["floor"]["cdf"][part], f"floor: {part}", linestyle=":", linewidth=1)
    for factor, style in ((1, "-"), (1.5, "--"), (3, "-.")):
        label = "floor sum" if factor == 1 else f"{factor:g}× floor sum"
        steady_axis.axvline(floor_sum * factor, color="black", linestyle=style, linewidth=1, label=label)
    steady_axis.set_title(f"signal→wire at {steady:g} signals/s")

    for run in document["latency"]:
        _cdf(rates_axis, run["cdf"], run["label"], linestyle="-" if run["workers"] else "--")
    rates_axis.set_title("signal→wire by offered rate")
    for axis in (steady_axis, rates_axis):
        axis.set_xscale("log")
        axis.set_xlabel("µs (log)")
        axis.set_ylabel("fraction of signals ≤ x")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")

    scaling = sorted(document["scaling"], key=lambda run: run["workers"])
    labels = [run["variant"] for run in scaling]
    rates = [run["executions_per_s"] for run in scaling]
    scaling_axis.bar(labels, rates, color=["tab:gray" if run["workers"] == 0 else "tab:blue" for run in scaling])
    one = next((run["executions_per_s"] for run in scaling if run["workers"] == 1), None)
    if one:
        ideal = [one * run["workers"] for run in scaling if run["workers"]]
        scaling_axis.plot([run["variant"] for run in scaling if run["workers"]], ideal, "k--", marker="o",
                          label="perfect scaling from 1 worker")
        scaling_axis.legend(fontsize=8)
    for index, value in enumerate(rates):
        scaling_axis.annotate(f"{value:,.0f}", (index, value), ha="center", va="bottom", fontsize=8)
    scaling_axis.set_title("executions/s, supervisor saturated")
    scaling_axis.set_ylabel("filled reports per second")

    figure.suptitle(f"Trident benchmark — {document['started_utc']} — {document['host']['cpu_count']} CPUs")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
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
