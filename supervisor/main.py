"""`trident run`: the service's process entry (the supervisor and, through it, its workers).

Every option is also a `TRIDENT_*` setting (see shared/settings.py); command-line values win over
the environment, which wins over the TOML file named by `--config`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal as signals
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.logs import configure_logging
from shared.runloop import run_loop
from shared.settings import Settings, SettingsError, load_settings

__all__ = ["CliError", "build_parser", "check_can_start", "main", "prepare_paths"]


class CliError(Exception):
    """A start-up problem the operator can fix; printed as one line, exit code 2."""


def check_can_start(settings: Settings) -> None:
    """Refuse to start with one clear error rather than fail on the first signal."""
    if settings.credentials is None:
        why = (
            "live mode places real orders, which needs API credentials"
            if settings.mode == "live"
            else "paper mode validates every leg with KuCoin's order-test endpoint, which is signed"
        )
        raise CliError(
            f"{why}: set TRIDENT_API_KEY, TRIDENT_API_SECRET and TRIDENT_API_PASSPHRASE (or the *_FILE variants)"
        )


def prepare_paths(settings: Settings) -> None:
    """The spool directory and the signal socket's path, checked before anything starts: a
    path that cannot be used is one line and exit 2, not a traceback after workers spawned."""
    from supervisor.server import SocketInUse, prepare_socket_path  # noqa: PLC0415 - keeps --help fast

    try:
        Path(settings.spool_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create spool_dir {settings.spool_dir}: {exc.strerror or exc}") from None
    try:
        prepare_socket_path(Path(settings.socket_path))
    except SocketInUse as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot use socket_path {settings.socket_path}: {exc.strerror or exc}") from None


async def _redis_answers(settings: Settings) -> None:
    """Refuse to start on a Redis that does not answer: every admission would be refused
    (`registry_unavailable`), which is better said once at start. Once running, an outage is
    logged at ERROR while it lasts and the service recovers when Redis returns."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    from shared.store.connect import connect  # noqa: PLC0415

    client = connect(settings, "tool")
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise CliError(f"Redis does not answer at start ({exc}); start it or fix redis_url") from None
    finally:
        await client.aclose()


async def _serve(settings: Settings) -> int:
    from supervisor.app import Supervisor  # noqa: PLC0415 - keeps `trident run --help` fast
    from supervisor.server import SocketInUse  # noqa: PLC0415

    try:
        await _redis_answers(settings)
    except CliError as exc:
        print(f"trident: {exc}", file=sys.stderr)
        return 2
    supervisor = Supervisor(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signals.SIGINT, signals.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await supervisor.start()
    except (SocketInUse, OSError) as exc:  # lost a race with another process for the socket path
        await supervisor.stop()
        print(f"trident run: cannot serve {settings.socket_path}: {exc}", file=sys.stderr)
        return 2
    await stop.wait()
    await supervisor.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    run = argparse.ArgumentParser(prog="trident run", description="run the supervisor and its workers")
    run.add_argument("--config", help="TOML settings file (also TRIDENT_CONFIG)")
    run.add_argument("--redis-url", help="redis://, rediss:// or unix:// (TRIDENT_REDIS_URL)")
    run.add_argument("--socket", help="Unix socket for signals (TRIDENT_SOCKET_PATH)")
    run.add_argument("--workers", type=int, help="worker processes, default one per core (TRIDENT_WORKERS)")
    run.add_argument("--exchange-url", help="KuCoin base URL (TRIDENT_EXCHANGE_URL)")
    run.add_argument("--mode", choices=("paper", "live"), help="paper (default) or live (TRIDENT_MODE)")
    run.add_argument("--fill-model", choices=("depth", "top"), help="paper fill model (TRIDENT_FILL_MODEL)")
    run.add_argument("--spool-dir", help="local report spool for Redis outages (TRIDENT_SPOOL_DIR)")
    run.add_argument("--log-level", help="debug, info, warning, error (TRIDENT_LOG_LEVEL)")
    run.add_argument("--metrics-host", help="Prometheus endpoint address, default 127.0.0.1 (TRIDENT_METRICS_HOST)")
    run.add_argument("--metrics-port", help="Prometheus endpoint port, default 9464, 0 disables (TRIDENT_METRICS_PORT)")
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(
            config_file=args.config,
            redis_url=args.redis_url,
            socket_path=args.socket,
            workers=args.workers,
            exchange_url=args.exchange_url,
            mode=args.mode,
            fill_model=args.fill_model,
            spool_dir=args.spool_dir,
            log_level=args.log_level,
            metrics_host=args.metrics_host,
            metrics_port=args.metrics_port,
        )
        check_can_start(settings)
        prepare_paths(settings)
    except (CliError, SettingsError) as exc:
        print(f"trident run: {exc}", file=sys.stderr)
        return 2
    configure_logging("supervisor", settings.log_level, settings.log_file, settings.secrets(), cache_loggers=True)
    return run_loop(_serve(settings))


if __name__ == "__main__":
    sys.exit(main())
