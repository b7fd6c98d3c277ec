"""The `trident` command: a thin dispatcher that imports only the subcommand it runs.

Each subcommand owns its options (`trident <command> --help`), so `trident ctl` never loads the
simulator, the service or matplotlib, and an option may come before or after a subcommand's own
positional arguments.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

# name -> (module with a `main(argv) -> int`, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("supervisor.main", "run the supervisor and its workers (the service)"),
    "ctl": ("tools.ctl", "operate the fleet through Redis: status, check, pause, cancel, ..."),
    "demo": ("tools.demo", "self-contained demo: Redis, simulator, supervisor, workers, signals"),
    "send": ("tools.send", "send signals (JSONL or msgpack, or --synthetic N) to a supervisor's socket"),
    "sim": ("sim.cli", "the KuCoin-compatible exchange simulator"),
    "bench": ("bench.__main__", "the performance suite (see bench/RESULTS.md); --quick for a smoke test"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: trident <command> [options]   (trident <command> --help)\n\ncommands:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"trident: unknown command {command!r}\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
