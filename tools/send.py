"""`trident send`: stream signals into a supervisor's socket, framed, at an optional steady rate.

Input is JSON lines or msgpack (length-prefixed frames as the socket speaks, or a bare msgpack
stream); `--synthetic N` builds realistic signals from an exchange's markets instead.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from struct import error as struct_error
from typing import BinaryIO

import msgpack
from tqdm import tqdm

from shared.codec import HEADER, encode_frame
from shared.runloop import run_loop

__all__ = ["build_parser", "main", "read_signals", "send_frames", "send_signals"]


def read_signals(source: BinaryIO, fmt: str = "auto") -> Iterator[object]:
    """Decoded signals from a file: `jsonl`, `msgpack`, or `auto` (JSON if it starts with `{`)."""
    head = source.peek(1)[:1] if hasattr(source, "peek") else b""
    if fmt == "auto":
        fmt = "jsonl" if head in (b"{", b" ", b"\n") else "msgpack"
    if fmt == "jsonl":
        for line in source:
            if line.strip():
                yield json.loads(line)
        return
    data = source.read()
    if _looks_framed(data):
        offset = 0
        while offset < len(data):
            (length,) = HEADER.unpack_from(data, offset)
            yield msgpack.unpackb(data[offset + 4 : offset + 4 + length], raw=False)
            offset += 4 + length
        return
    yield from msgpack.Unpacker(io.BytesIO(data), raw=False)


def _looks_framed(data: bytes) -> bool:
    """True if the bytes parse as a whole sequence of length-prefixed frames."""
    offset = 0
    while offset + 4 <= len(data):
        (length,) = HEADER.unpack_from(data, offset)
        offset += 4 + length
    return offset == len(data) and len(data) > 0


async def send_frames(
    socket_path: str, frames: Iterable[bytes], *, total: int | None = None, rate: float | None = None,
    progress: bool | None = None, on_sent: list[int] | None = None,
) -> int:
    """Write pre-encoded frames; paces to `rate` per second on an absolute schedule (no drift).

    `on_sent`, when given, receives the monotonic ns of each write (benchmarks use it).
    """
    _, writer = await asyncio.open_unix_connection(socket_path)
    interval_ns = int(1e9 / rate) if rate else 0
    start_ns = time.monotonic_ns()
    sent = 0
    bar = tqdm(total=total, unit="sig", disable=(not sys.stderr.isatty()) if progress is None else not progress,
               mininterval=0.25, file=sys.stderr)
    try:
        source = iter(frames)
        while True:
            if interval_ns:  # wait first, then take the frame: a lazily stamped frame is stamped as it goes out
                delay_ns = start_ns + sent * interval_ns - time.monotonic_ns()
                if delay_ns > 0:
                    await asyncio.sleep(delay_ns / 1e9)
            frame = next(source, None)
            if frame is None:
                break
            if on_sent is not None:
                on_sent.append(time.monotonic_ns())
            writer.write(frame)
            if writer.transport.get_write_buffer_size() > 1 << 20 or interval_ns:
                await writer.drain()
            sent += 1
            bar.update(1)
        await writer.drain()
    finally:
        bar.close()
        writer.close()
        await writer.wait_closed()
    return sent


async def send_signals(socket_path: str, signals: Iterable[object], *, total: int | None = None,
                       rate: float | None = None, progress: bool | None = None) -> int:
    """Frame and send decoded signals (length-prefixed msgpack)."""
    return await send_frames(socket_path, (encode_frame(s) for s in signals), total=total, rate=rate,
                             progress=progress)


async def _synthetic(exchange_url: str, count: int, prefix: str, seed: int) -> list[object]:
    """Signals built from the exchange's books now; each is stamped again as it is sent (below)."""
    from shared.kucoin.rest import KucoinRest  # noqa: PLC0415 - only --synthetic needs the exchange client
    from shared.kucoin.session import make_session  # noqa: PLC0415
    from tools.synthetic import fetch_markets, synthetic_signals  # noqa: PLC0415

    async with make_session() as session:
        markets = await fetch_markets(KucoinRest(session, exchange_url))
    return list(synthetic_signals(markets, count, now_ms=int(time.time() * 1000), prefix=prefix, seed=seed,
                                  spread_pairs=1, min_predicted_bps=0.0))


def _run_prefix() -> str:
    """Correlation ids unique to this run (`syn<base36 ms>`): a later run never reuses an earlier one's."""
    ms = int(time.time() * 1000)
    digits = ""
    while ms:
        ms, digit = divmod(ms, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return f"syn{digits}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trident send", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="input file, '-' or absent for stdin")
    parser.add_argument("--socket", default="/run/trident/signals.sock")
    parser.add_argument("--format", choices=("auto", "jsonl", "msgpack"), default="auto")
    parser.add_argument("--rate", type=float, help="signals per second (default: as fast as possible)")
    parser.add_argument("--synthetic", type=int, metavar="N", help="generate N signals from the exchange's markets")
    parser.add_argument("--exchange-url", default="http://127.0.0.1:8765", help="markets source for --synthetic")
    parser.add_argument("--id-prefix", help="--synthetic correlation ids are PREFIX-000000, … (default: unique per run)")
    parser.add_argument("--seed", type=int, default=7, help="--synthetic: the same seed gives the same triangles and sizes")
    return parser


class SendError(Exception):
    """A mistake or an absent peer, said in one line; `code` is the exit status (2 usage, 1 run time)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _read_input(path: str | None, fmt: str) -> list[object]:
    try:
        source = sys.stdin.buffer if path in (None, "-") else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise SendError(f"cannot read {path}: {exc.strerror}", 2) from None
    with source:
        try:
            return list(read_signals(source, fmt))
        except (ValueError, msgpack.UnpackException, struct_error) as exc:
            raise SendError(f"{path or 'stdin'} is not {fmt if fmt != 'auto' else 'JSON lines or msgpack'}: {exc}",
                            2) from None


async def _send(args: argparse.Namespace) -> int:
    if args.synthetic:
        try:
            signals_ = await _synthetic(args.exchange_url, args.synthetic, args.id_prefix or _run_prefix(), args.seed)
        except (OSError, *exchange_errors()) as exc:
            raise SendError(f"--synthetic needs an exchange's markets, and {args.exchange_url} did not answer "
                            f"({exc}): start `trident sim` or pass --exchange-url", 1) from None
    else:
        signals_ = _read_input(args.file, args.format)
    try:
        if args.synthetic:  # stamped as each is sent, as an engine stamps: never stale because the sender is slow
            from tools.synthetic import restamped  # noqa: PLC0415

            frames = (encode_frame(restamped(s)) for s in signals_)  # type: ignore[arg-type]
            sent = await send_frames(args.socket, frames, total=len(signals_), rate=args.rate)
        else:
            sent = await send_signals(args.socket, signals_, total=len(signals_), rate=args.rate)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise SendError(f"no supervisor is listening on {args.socket} ({exc.strerror}): start `trident run "
                        "--socket PATH` or pass the --socket it serves", 1) from None
    except PermissionError:
        raise SendError(f"not allowed to connect to {args.socket}: join the service's group", 1) from None
    ids = ""
    if args.synthetic and signals_:
        ids = f" (correlation ids {signals_[0]['correlation_id']} … {signals_[-1]['correlation_id']})"  # type: ignore[index]
    print(f"sent {sent} signals to {args.socket}{ids}", file=sys.stderr)
    return 0


def exchange_errors() -> tuple[type[Exception], ...]:
    """What an unreachable or failing exchange raises, imported only when --synthetic needs it."""
    import aiohttp  # noqa: PLC0415

    from shared.kucoin.errors import KucoinError  # noqa: PLC0415

    return (aiohttp.ClientError, KucoinError, TimeoutError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.synthetic is not None and args.synthetic <= 0:
        print("trident send: --synthetic needs a positive count", file=sys.stderr)
        return 2
    try:
        return run_loop(_send(args))
    except SendError as exc:
        print(f"trident send: {exc}", file=sys.stderr)
        return exc.code
