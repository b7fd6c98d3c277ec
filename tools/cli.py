"""The `trident` command: a thin dispatcher that imports only the subcommand it runs.

Each subcommand owns its options (`trident <command> --help`), so `trident ctl` never loads the
simulator, the service or matplotlib, and an option may come before or after a subcommand's own
positional arguments. The global options (`--redis-url`, `--config`) may also come before the
subcommand: `trident --redis-url URL ctl status` is `trident ctl status --redis-url URL`.

Nothing a user types ends in a Python traceback: subcommands turn the mistakes they know into one
line (exit 2 for usage and configuration, 1 at run time); a closed pipe (`trident ctl status |
head`) ends quietly; anything else is a bug, reported in one line with the traceback written to
a file for the bug report.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence

from shared.settings import unknown_env_warnings

__all__ = ["COMMANDS", "GLOBAL_OPTIONS", "main"]

# name -> (module with a `main(argv) -> int`, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("supervisor.main", "run the supervisor and its workers (the service)"),
    "ctl": ("tools.ctl", "operate the fleet through Redis: status, check, pause, cancel, ..."),
    "demo": ("tools.demo", "self-contained demo: Redis, simulator, supervisor, workers, signals"),
    "send": ("tools.send", "send signals (JSONL or msgpack, or --synthetic N) to a supervisor's socket"),
    "sim": ("sim.cli", "the KuCoin-compatible exchange simulator"),
    "redis": ("tools.redis_server", "a scratch redis-server on 127.0.0.1 for trying Trident by hand"),
    "bench": ("bench.__main__", "the performance suite (see bench/RESULTS.md); --quick for a smoke test"),
}
# Options that take a value and may precede the subcommand (moved after it).
GLOBAL_OPTIONS = ("--redis-url", "--config")
# Modules only the bench extra installs: their absence is an install step, not a bug.
_BENCH_EXTRA = frozenset(("matplotlib", "psutil"))


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return ("usage: trident [--redis-url URL] [--config FILE] <command> [options]   (trident <command> --help)"
            "\n\ncommands:\n" + "\n".join(lines))


def _hoist_globals(argv: list[str]) -> tuple[list[str], str | None]:
    """Global options before the subcommand, moved after it; an error line if one lacks its value."""
    leading: list[str] = []
    while argv and argv[0].split("=", 1)[0] in GLOBAL_OPTIONS:
        option = argv.pop(0)
        if "=" in option:
            leading.append(option)
            continue
        if not argv or argv[0].startswith("-"):
            return argv, f"trident: {option} needs a value"
        leading += [option, argv.pop(0)]
    if not argv:
        return argv, "trident: a command is missing after the global options"
    return [argv[0], *argv[1:], *leading], None


def _closed_pipe() -> int:
    """stdout's reader went away (`| head`): stop quietly, and keep Python's exit flush from failing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 1


def _bug(command: str, exc: BaseException) -> int:
    fd, path = tempfile.mkstemp(prefix="trident-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as file:
        traceback.print_exception(exc, file=file)
    print(f"trident {command}: internal error {type(exc).__name__}: {exc} (a bug; traceback in {path})",
          file=sys.stderr)
    return 1


def _load(command: str) -> object:
    try:
        return importlib.import_module(COMMANDS[command][0])
    except ModuleNotFoundError as exc:
        if command == "bench" and (exc.name or "").split(".")[0] in _BENCH_EXTRA:
            raise SystemExit(f"trident bench: {exc.name} is missing: install the bench extra "
                             "(`make bench`, or `pip install -e '.[bench]'`)") from None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for line in unknown_env_warnings():
        print(f"trident: {line}", file=sys.stderr)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    argv, problem = _hoist_globals(argv)
    if problem:
        print(f"{problem}\n{_usage()}", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"trident: unknown command {command!r}\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = _load(command)
        return int(module.main(rest) or 0)  # type: ignore[attr-defined]
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
            return 2
        return int(exit_.code or 0)
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print(f"trident {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        return _bug(command, exc)


if __name__ == "__main__":
    sys.exit(main())
