"""The `trident` command: run, demo, send, sim, ctl, bench.

Every option of `run` is also a `TRIDENT_*` setting (see shared/settings.py); command-line
values win over the environment, which wins over the TOML file named by `--config`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal as signals
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.logs import configure_logging
from shared.settings import Settings, SettingsError, load_settings

__all__ = ["main"]


def _run_loop(coro: object) -> int:
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


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


async def _serve(settings: Settings) -> int:
    from supervisor.app import Supervisor  # noqa: PLC0415 - keeps `trident --help` fast

    supervisor = Supervisor(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signals.SIGINT, signals.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await supervisor.start()
    await stop.wait()
    await supervisor.stop()
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
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
    Path(settings.spool_dir).mkdir(parents=True, exist_ok=True)
    configure_logging("supervisor", settings.log_level, settings.log_file, settings.secrets(), cache_loggers=True)
    return _run_loop(_serve(settings))


def _cmd_demo(args: argparse.Namespace) -> int:
    from supervisor.demo import run_demo  # noqa: PLC0415

    return _run_loop(run_demo(redis_url=args.redis_url, signals=args.signals, workers=args.workers))


def _cmd_send(args: argparse.Namespace) -> int:
    from supervisor.send import read_signals, send_signals  # noqa: PLC0415

    async def go() -> int:
        if args.synthetic:
            signals_ = await _synthetic(args.exchange_url, args.synthetic)
        else:
            source = sys.stdin.buffer if args.file in (None, "-") else open(args.file, "rb")  # noqa: SIM115
            with source:
                signals_ = list(read_signals(source, args.format))
        sent = await send_signals(args.socket, signals_, total=len(signals_), rate=args.rate)
        print(f"sent {sent} signals to {args.socket}", file=sys.stderr)
        return 0

    return _run_loop(go())


async def _synthetic(exchange_url: str, count: int) -> list[object]:
    import time  # noqa: PLC0415

    from supervisor.synthetic import fetch_markets, synthetic_signals  # noqa: PLC0415
    from worker.kucoin.rest import KucoinRest  # noqa: PLC0415
    from worker.kucoin.session import make_session  # noqa: PLC0415

    async with make_session() as session:
        markets = await fetch_markets(KucoinRest(session, exchange_url))
    return list(synthetic_signals(markets, count, now_ms=int(time.time() * 1000)))


def _cmd_ctl(args: argparse.Namespace) -> int:
    from supervisor.ctl import main as ctl_main  # noqa: PLC0415

    return ctl_main(args.ctl_args)


def _cmd_sim(args: argparse.Namespace) -> int:
    from sim.cli import main as sim_main  # noqa: PLC0415

    return sim_main(args.sim_args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from bench.__main__ import main as bench_main  # noqa: PLC0415

    return bench_main(args.bench_args)


_OWN_PARSERS = {"sim": _cmd_sim, "ctl": _cmd_ctl, "bench": _cmd_bench}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trident", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the supervisor and its workers")
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
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help="self-contained demo: Redis, simulator, supervisor, workers, signals")
    demo.add_argument("--redis-url", help="use this Redis instead of a private one (reports are left there)")
    demo.add_argument("--signals", type=int, default=600, help="how many signals to replay (default 600)")
    demo.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    demo.set_defaults(func=_cmd_demo)

    send = sub.add_parser("send", help="send signals (JSONL or msgpack) to a supervisor's socket")
    send.add_argument("file", nargs="?", help="input file, '-' or absent for stdin")
    send.add_argument("--socket", default="/run/trident/signals.sock")
    send.add_argument("--format", choices=("auto", "jsonl", "msgpack"), default="auto")
    send.add_argument("--rate", type=float, help="signals per second (default: as fast as possible)")
    send.add_argument("--synthetic", type=int, metavar="N", help="generate N signals from the exchange's markets")
    send.add_argument("--exchange-url", default="http://127.0.0.1:8765", help="markets source for --synthetic")
    send.set_defaults(func=_cmd_send)

    ctl = sub.add_parser("ctl", help="operate the fleet through Redis: status, check, pause, cancel, ...",
                         add_help=False)
    ctl.add_argument("ctl_args", nargs=argparse.REMAINDER)
    ctl.set_defaults(func=_cmd_ctl)

    sim = sub.add_parser("sim", help="the KuCoin-compatible exchange simulator", add_help=False)
    sim.add_argument("sim_args", nargs=argparse.REMAINDER)
    sim.set_defaults(func=_cmd_sim)

    bench = sub.add_parser("bench", help="the performance suite (see bench/RESULTS.md); --quick for a smoke test",
                           add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `sim`, `ctl` and `bench` parse their own options: argparse's REMAINDER would reject a leading option
    # (`trident ctl --redis-url URL status`), so their arguments bypass this parser entirely.
    if argv and argv[0] in _OWN_PARSERS:
        own_args = argv[1:]
        return _OWN_PARSERS[argv[0]](argparse.Namespace(sim_args=own_args, ctl_args=own_args, bench_args=own_args))
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, SettingsError) as exc:
        print(f"trident: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
