"""`trident sim` (also `python -m sim`): serve the simulator until SIGINT or SIGTERM.

Prints its URL and the credentials to sign with at start, so the demo and a human with curl
can use it at once.
"""

from __future__ import annotations

import argparse
import shlex
import asyncio
import signal
import sys
from pathlib import Path

from shared.credentials import Credentials
from sim.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEMO_API_KEY,
    DEMO_API_PASSPHRASE,
    DEMO_API_SECRET,
    SimConfig,
)
from sim.knobs import Knobs
from sim.server import start_simulator

__all__ = ["main", "build_parser", "config_from_args"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trident sim", description="KuCoin-compatible exchange simulator.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--markets", type=Path, help="JSON or TOML market file (default: built-in markets)")
    parser.add_argument("--api-key", default=DEMO_API_KEY)
    parser.add_argument("--api-secret", default=DEMO_API_SECRET)
    parser.add_argument("--api-passphrase", default=DEMO_API_PASSPHRASE)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added before every answer")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform extra latency, 0..N ms")
    parser.add_argument("--consume-liquidity", action="store_true", help="fills take liquidity off the books")
    parser.add_argument("--fee-inside-funds", action="store_true", help="a funds buy's fee comes out of funds")
    parser.add_argument("--test-checks-balance", action="store_true", help="/hf/orders/test also checks balance")
    parser.add_argument("--spot-limit", type=int, default=4000, help="Spot pool quota per window")
    parser.add_argument("--public-limit", type=int, default=2000, help="Public pool quota per window")
    parser.add_argument("--rate-window-ms", type=int, default=30_000)
    parser.add_argument("--seed", type=int, help="seed for probabilistic faults and jitter")
    parser.add_argument("--env", action="store_true",
                        help="print the account's `export TRIDENT_API_…` lines and exit (eval \"$(trident sim --env)\")")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the parsed flags describe."""
    return SimConfig(
        credentials=Credentials(args.api_key, args.api_secret, args.api_passphrase),
        markets_path=args.markets,
        knobs=Knobs(
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            consume_liquidity=args.consume_liquidity,
            fee_inside_funds=args.fee_inside_funds,
            test_checks_balance=args.test_checks_balance,
        ),
        spot_limit=args.spot_limit,
        public_limit=args.public_limit,
        rate_window_ms=args.rate_window_ms,
        rng_seed=args.seed,
    )


async def _serve(args: argparse.Namespace) -> None:
    running = await start_simulator(args.host, args.port, config=config_from_args(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"KuCoin simulator listening on {running.url}", flush=True)
    print(_exports(args), flush=True)
    print(f"# admin API: {running.url}/_sim/knobs  /_sim/orders  /_sim/balances  /_sim/reset", flush=True)
    try:
        await stop.wait()
    finally:
        await running.stop()
    print("simulator stopped", flush=True)


def _exports(args: argparse.Namespace) -> str:
    """The demo account as shell lines to paste (or `eval "$(trident sim --env)"`)."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in (
        ("TRIDENT_API_KEY", args.api_key), ("TRIDENT_API_SECRET", args.api_secret),
        ("TRIDENT_API_PASSPHRASE", args.api_passphrase)))


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.env:
        print(_exports(args))
        return 0
    if args.markets is not None and not args.markets.is_file():
        print(f"trident sim: markets file not found: {args.markets}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:  # uvloop does not exist on Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(_serve(args))
    except (OSError, ValueError) as exc:  # port taken, unreadable or invalid market file
        print(f"trident sim: {exc}", file=sys.stderr)
        return 1
    return 0
