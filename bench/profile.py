"""py-spy profiles of the supervisor (and its workers) under the steady benchmark load.

`py-spy record --subprocesses --format raw` samples the supervisor and every worker it spawned
without stopping them (`--nonblocking`); the raw (collapsed) stacks are kept next to the results
and summarised here per process role: the functions most often on the stack (inclusive) and at
its top (self), as shares of that process's samples. Samples are taken only while a thread is
not idle by py-spy's reckoning (running, or runnable and waiting for a CPU); time in uvloop's own
C loop shows up as its Python entry frame (`Runner.run` / `Process.run_async`), and so does time
spent runnable there, which on an oversubscribed machine is most of it.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Profiler", "ProfileSummary", "summarise", "py_spy_available"]

_RATE_HZ = 250
_OWN_CODE = ("shared/", "supervisor/", "worker/")
_ENTRY_POINTS = ("tools/cli.py",)  # on every supervisor stack: says nothing about where time goes
_TOP = 12


def _py_spy() -> str | None:
    """py-spy on PATH, or beside this interpreter (a venv's bin/ is not on PATH when it is run
    as `.venv/bin/python -m bench`)."""
    beside = Path(sys.executable).with_name("py-spy")
    return shutil.which("py-spy") or (str(beside) if beside.is_file() else None)


def py_spy_available() -> bool:
    return _py_spy() is not None


class Profiler:
    """One py-spy recording of a process tree; `finish()` waits for the file."""

    def __init__(self, pid: int, output: Path, duration_s: float) -> None:
        self.output = output
        output.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [_py_spy() or "py-spy", "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--format", "raw",
             "--rate", str(_RATE_HZ), "--duration", str(max(1, math.ceil(duration_s))), "-o", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def finish(self, timeout_s: float = 60.0) -> Path | None:
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=10)
        return self.output if self.output.exists() else None


@dataclass(slots=True)
class ProfileSummary:
    """Per role ("supervisor", "worker"): samples, and (share %, frame) lists."""

    samples: Counter[str] = field(default_factory=Counter)
    inclusive: dict[str, Counter[str]] = field(default_factory=dict)
    self_time: dict[str, Counter[str]] = field(default_factory=dict)

    def top(self, role: str, table: str, own_code_only: bool = False) -> list[tuple[float, str]]:
        counts = (self.inclusive if table == "inclusive" else self.self_time).get(role, Counter())
        total = self.samples[role] or 1
        rows = [(round(100 * n / total, 1), frame) for frame, n in counts.most_common()
                if not own_code_only or _is_own(frame)]
        return rows[:_TOP]

    def to_dict(self) -> dict[str, Any]:
        return {
            role: {
                "samples": self.samples[role],
                "inclusive_trident": self.top(role, "inclusive", own_code_only=True),
                "self": self.top(role, "self"),
            }
            for role in self.samples
        }


def _is_own(frame: str) -> bool:
    location = frame.rpartition("(")[2]
    return location.startswith(_OWN_CODE) and not location.startswith(_ENTRY_POINTS)


def summarise(raw: Path) -> ProfileSummary:
    """Fold py-spy's collapsed stacks by process role (the root process is the supervisor)."""
    summary = ProfileSummary()
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        processes = sum(1 for frame in frames if frame.startswith("process "))
        role = "worker" if processes > 1 else "supervisor"
        code = [frame for frame in frames if not frame.startswith("process ")]
        if not code:
            continue
        summary.samples[role] += count
        summary.self_time.setdefault(role, Counter())[code[-1]] += count
        inclusive = summary.inclusive.setdefault(role, Counter())
        for frame in dict.fromkeys(code):  # once per stack (recursion), root first: ties stay in stack order
            inclusive[frame] += count
    return summary
