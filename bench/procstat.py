"""Busy cores and steal over an interval, from the kernel's `/proc/stat` (Linux).

A benchmark that reports latency without saying how busy the machine was cannot be judged: at
saturation every figure is a queue. The first line of `/proc/stat` counts, in clock ticks summed
over every CPU, the time spent in each state since boot; two snapshots give, for the interval,
how many cores were busy on average (user + nice + system + irq + softirq; guest time is already
inside user) and how many were stolen by the hypervisor (time this VM wanted a CPU and did not
get one). Where `/proc/stat` is absent both are reported as None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSnapshot", "snapshot", "busy_and_steal"]

_PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """Ticks summed over every CPU: busy, steal and every state together."""

    busy: int
    steal: int
    total: int


def snapshot() -> CpuSnapshot | None:
    """The machine's CPU counters now; None where the kernel does not expose them."""
    try:
        line = _PROC_STAT.read_text(encoding="ascii").splitlines()[0]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal, *_ = (int(v) for v in line.split()[1:])
    busy = user + nice + system + irq + softirq
    return CpuSnapshot(busy=busy, steal=steal, total=busy + idle + iowait + steal)


def busy_and_steal(before: CpuSnapshot | None, after: CpuSnapshot | None) -> dict[str, float | None]:
    """Mean busy cores and stolen cores between two snapshots (each 0 … the CPU count)."""
    if before is None or after is None or after.total <= before.total:
        return {"busy_cores": None, "steal_cores": None}
    cores = os.cpu_count() or 1
    elapsed = after.total - before.total
    return {"busy_cores": round(cores * (after.busy - before.busy) / elapsed, 3),
            "steal_cores": round(cores * (after.steal - before.steal) / elapsed, 3)}
