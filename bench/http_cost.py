"""Per-request cost of an order call on a warm aiohttp session, against a raw pre-built POST.

    python -m bench.http_cost [--calls 2000] [--repeats 3] [--json OUT]

One simulator (the suite's, in its own process) answers; this process sends `calls` sequential
order-test POSTs on one warm keep-alive connection per variant and reports, per call, the wall
time until the answer is read (p50) and this process's CPU (utime+stime): the client's share
of the round trip, what the worker pays per leg. Variants, interleaved in rounds so drifting
machine load hits each alike:

- `KucoinRest.order_test` on `make_session()`: the worker's call, as shipped;
- `aiohttp, default session`: the same signed request through a plain `aiohttp.ClientSession`
  (cookie jar, auto headers, a URL parsed and a timeout object built per call) — what the
  worker's call cost before the session was trimmed;
- `raw pre-built POST`: the request bytes written to a warm socket and the answer read with
  asyncio streams — the floor any HTTP client on this loop can approach.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bench.stack import open_stack
from shared.credentials import Credentials
from shared.kucoin.auth import Signer
from shared.kucoin.constants import PLACE_ORDER_TEST
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from sim import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET

__all__ = ["measure_http_cost", "VARIANTS"]

VARIANTS = ("KucoinRest.order_test", "aiohttp, default session", "raw pre-built POST")
_BODY = {"clientOid": "", "side": "buy", "symbol": "BTC-USDT", "type": "market", "funds": "10"}


async def _rounds(calls: int, rounds: int, variants: dict[str, Callable[[int], Awaitable[None]]]) -> dict[str, Any]:
    walls: dict[str, list[int]] = {name: [] for name in variants}
    cpu_ns: dict[str, int] = {name: 0 for name in variants}
    per_round = max(1, calls // rounds)
    for round_index in range(rounds):
        for name, call in variants.items():
            cpu = time.process_time_ns()
            for i in range(per_round):
                started = time.perf_counter_ns()
                await call(round_index * per_round + i)
                walls[name].append(time.perf_counter_ns() - started)
            cpu_ns[name] += time.process_time_ns() - cpu
    return {name: {"calls": len(walls[name]), "wall_p50_us": round(statistics.median(walls[name]) / 1000, 1),
                   "client_cpu_us": round(cpu_ns[name] / len(walls[name]) / 1000, 1)} for name in variants}


async def measure_http_cost(sim_url: str, calls: int = 2000, rounds: int = 10) -> dict[str, Any]:
    """Per-call wall p50 and client CPU for each of VARIANTS against the simulator at `sim_url`."""
    credentials = Credentials(DEMO_API_KEY, DEMO_API_SECRET, DEMO_API_PASSPHRASE)
    signer = Signer(credentials)
    session = make_session(10.0)
    plain = aiohttp.ClientSession()
    client = KucoinRest(session, sim_url, credentials)
    host = urlsplit(sim_url)
    reader, writer = await asyncio.open_connection(host.hostname, host.port)
    path = PLACE_ORDER_TEST.path
    timeout = aiohttp.ClientTimeout(total=10.0, sock_connect=5.0)

    def body(i: int) -> bytes:
        return json.dumps({**_BODY, "clientOid": f"http-cost-{i}"}, separators=(",", ":")).encode()

    async def trident(i: int) -> None:
        await client.order_test("BTC-USDT", "buy", funds=Decimal(10), client_oid=f"http-cost-t{i}")

    async def default_session(i: int) -> None:
        data = body(i)
        async with plain.request("POST", sim_url + path, data=data, headers=signer.headers("POST", path, data),
                                 timeout=timeout) as response:
            await response.read()

    async def raw(i: int) -> None:
        data = body(i)
        headers = signer.headers("POST", path, data)
        lines = [f"POST {path} HTTP/1.1", f"Host: {host.netloc}", f"Content-Length: {len(data)}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)

    try:
        for call in (trident, default_session, raw):  # warm each connection
            for i in range(20):
                await call(-1 - i)
        return await _rounds(calls, rounds, dict(zip(VARIANTS, (trident, default_session, raw), strict=True)))
    finally:
        writer.close()
        await session.close()
        await plain.close()


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    async with open_stack(0) as stack:
        return await measure_http_cost(stack.sim_url, args.calls)


def main(argv: list[str] | None = None) -> int:
    import uvloop  # noqa: PLC0415 - the command line only

    from bench.common import host_info, write_json  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.http_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per variant")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    result = uvloop.run(_main(args))
    print("| variant | calls | wall p50 µs | client CPU µs per call |\n|---|--:|--:|--:|")
    for name, row in result.items():
        print(f"| {name} | {row['calls']} | {row['wall_p50_us']:,.1f} | {row['client_cpu_us']:,.1f} |")
    if args.json:
        write_json(args.json, {"host": host_info(), "parameters": vars(args), "variants": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
