"""The thin floor: each part of the signal→wire path done by the leanest means, in the same run.

A floor taken on an idle machine flatters the path (an idle process on these VMs wakes late:
a hop costs ~70 µs back-to-back and ~300 µs to an idle receiver), so the suite measures this
floor *interleaved with the real signals*: one probe half-way between two signals, the parts
taken in turn, every process as warm or as cold as the path's own are at that rate. The parts:

- frame: a length-prefixed msgpack signal written to a Unix socket → split by `FrameDecoder`
  in another process (one way, the receiver's stamp minus the writer's);
- EVALSHA: the real acquire script with a real lease request, as one pre-built RESP write on
  the Redis Unix socket, the answer read with hiredis (the lease is released afterwards, off
  the clock, through redis-py);
- hop: one `Job` over a socketpair channel to an echo worker (`bench.hop`), one way, sent the
  moment the echo of a first job lands, so both loops are awake (the hot hop);
- POST: a pre-built, pre-signed raw HTTP/1.1 order-test POST on a warm keep-alive connection,
  from the write until the simulator's handler logs it (its order log's `arrival_ns`).

The floor's sum is the p50 of each of the four: one of each thing a signal must go through
before its first order is on the wire. Probes add a little work to the sender (this process),
the simulator and Redis; the suite's CPU figures say so.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiomultiprocess
import hiredis
import redis.asyncio as aioredis
import uvloop

from bench.floor import frame_receiver
from bench.hop import HopSamples, echo_bench
from bench.stack import Stack
from shared.codec import FrameDecoder, encode_frame
from shared.credentials import Credentials
from shared.kucoin.auth import Signer
from shared.kucoin.constants import PLACE_ORDER_TEST
from shared.store.registry import LeaseRequest, Registry
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET

__all__ = ["THIN_PARTS", "COMPLETION_PARTS", "ThinFloor", "open_thin_floor", "resp_command"]

THIN_PARTS = ("frame one-way", "EVALSHA raw RESP", "hot hop", "raw POST until seen")
# The completion run's reference (the simulator answering after an injected latency): one raw
# POST's full round trip, and three at once on three warm connections until the slowest answer.
COMPLETION_PARTS = ("raw POST round trip", "3 raw POSTs at once (slowest)")
_STAMP = struct.Struct(">Q")
_STAMP_KEY = "bench_sent_ns"  # last key of the map, so its 8 bytes end the frame
_WARMUP = 20  # probes of each part before any is recorded (connections, caches, first wake-ups)


def resp_command(*parts: bytes | str | int) -> bytes:
    """One Redis command in RESP2, as redis-server reads it from the socket."""
    encoded = [part if isinstance(part, bytes) else str(part).encode() for part in parts]
    return b"".join([b"*%d\r\n" % len(encoded), *(b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded)])


class _Captured(Exception):
    """Raised by the stand-in script to carry out the keys and args `Registry.acquire` built."""

    def __init__(self, script_keys: Sequence[Any], args: Sequence[Any]) -> None:
        super().__init__("captured")
        self.script_keys, self.args = list(script_keys), list(args)


class ThinFloor:
    """The four parts kept open for a whole run; `probe(i)` runs part i mod 4 once."""

    def __init__(self, signal: dict[str, Any]) -> None:
        self.signal = signal
        self.samples: dict[str, list[int]] = {part: [] for part in THIN_PARTS}
        self._parts: tuple[str, ...] = THIN_PARTS
        self._probes = 0
        self._post_sent: dict[str, int] = {}  # client oid → monotonic ns of the write
        self._frame: tuple[asyncio.StreamReader, asyncio.StreamWriter, FrameDecoder] | None = None
        self._frame_template = encode_frame({**signal, _STAMP_KEY: bytes(_STAMP.size)})[: -_STAMP.size]
        self._redis_io: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._registry: Registry | None = None
        self._sha = ""
        self._hop: Any = None
        self._http: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._http_more: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []  # the 3-at-once calls
        self._http_host = ""
        self._signer = Signer(Credentials(DEMO_API_KEY, DEMO_API_SECRET, DEMO_API_PASSPHRASE))
        self._tag = "thin"

    def start_run(self, tag: str, parts: tuple[str, ...] = THIN_PARTS) -> None:
        """Forget the samples of the previous run (each run reports its own floor); probe `parts`
        (THIN_PARTS, or COMPLETION_PARTS for the completion run) from now on."""
        self._parts = parts
        self.samples = {part: [] for part in parts}
        self._post_sent.clear()
        self._probes = 0
        self._tag = tag

    async def probe(self) -> None:
        """One part, the parts in turn; the first `_WARMUP` rounds record nothing."""
        index = self._probes
        self._probes += 1
        part = self._parts[index % len(self._parts)]
        record = index >= _WARMUP * len(self._parts)
        if part in COMPLETION_PARTS:
            await self._probe_round_trips(part, index, record)
        elif part == "frame one-way":
            await self._probe_frame(record)
        elif part == "EVALSHA raw RESP":
            await self._probe_evalsha(index, record)
        elif part == "hot hop":
            await self._probe_hop(record)
        else:
            await self._probe_post(index, record)

    def add_post_arrivals(self, order_log: Sequence[dict[str, Any]]) -> None:
        """The POST part's samples, from the simulator's log of when each probe arrived."""
        if "raw POST until seen" not in self.samples:
            return
        arrivals = {entry.get("client_oid"): entry.get("arrival_ns") for entry in order_log}
        self.samples["raw POST until seen"] = sorted(
            arrivals[oid] - sent for oid, sent in self._post_sent.items() if arrivals.get(oid) is not None)

    # --- the parts ---------------------------------------------------------------------------

    async def _probe_frame(self, record: bool) -> None:
        assert self._frame is not None
        reader, writer, replies = self._frame
        writer.write(self._frame_template + _STAMP.pack(time.monotonic_ns()))
        answers: list[object] = []
        while not answers:
            answers = replies.feed(await reader.read(4096))
        if record:
            self.samples["frame one-way"].append(int(answers[0]))  # type: ignore[call-overload]

    async def _acquire_command(self, lease_id: str) -> tuple[bytes, LeaseRequest]:
        """The EVALSHA `Registry.acquire` would send for this lease, as RESP bytes. Its triangle
        id is the floor's own, so a probe never contends with a real signal's triangle."""
        assert self._registry is not None
        pairs = tuple(leg["pair"] for leg in self.signal["legs"])
        request = LeaseRequest(lease_id, "thin-floor:" + ",".join(sorted(pairs)), str(self.signal["primary_quote"]), pairs,
                               Decimal(str(self.signal["starting_volume"])), int(time.time() * 1000))
        script = self._registry._acquire  # noqa: SLF001 - the real script object and its argument order

        async def capture(keys: Sequence[Any], args: Sequence[Any]) -> Any:
            raise _Captured(keys, args)

        self._registry._acquire = capture  # type: ignore[assignment]  # noqa: SLF001
        try:
            await self._registry.acquire(request)
        except _Captured as captured:
            command = resp_command(b"EVALSHA", self._sha, len(captured.script_keys), *captured.script_keys,
                                   *captured.args)
        else:
            raise RuntimeError("Registry.acquire did not call its script")
        finally:
            self._registry._acquire = script  # noqa: SLF001
        return command, request

    async def _probe_evalsha(self, index: int, record: bool) -> None:
        assert self._redis_io is not None and self._registry is not None
        reader, writer = self._redis_io
        command, request = await self._acquire_command(f"{self._tag}-lease-{index}")
        parser = hiredis.Reader()
        started = time.monotonic_ns()
        writer.write(command)
        answer: Any = False
        while answer is False:
            parser.feed(await reader.read(4096))
            answer = parser.gets()
        elapsed = time.monotonic_ns() - started
        if not isinstance(answer, list) or answer[0] != 1:
            raise RuntimeError(f"thin floor lease refused: {answer!r}")
        if record:
            self.samples["EVALSHA raw RESP"].append(elapsed)
        await self._registry.release(request.lease_id, int(answer[1]))

    async def _probe_hop(self, record: bool) -> None:
        """A job to wake the echo worker, then the measured one the moment its echo lands: a hop
        between two awake event loops, as from a busy supervisor to a busy worker."""
        samples = HopSamples("hot hop", [], [], [])
        for _ in range(2):
            self._hop.send()
            await self._hop.receive(samples)
        if record:
            self.samples["hot hop"].append(samples.to_worker[-1])

    def _post_request(self, oid: str) -> bytes:
        leg = self.signal["legs"][0]
        amount = "funds" if leg["side"] == "buy" else "size"
        body = json.dumps({"clientOid": oid, "side": leg["side"], "symbol": leg["pair"], "type": "market",
                           amount: str(leg["order_param"])}, separators=(",", ":")).encode()
        headers = self._signer.headers("POST", PLACE_ORDER_TEST.path, body)
        lines = [f"POST {PLACE_ORDER_TEST.path} HTTP/1.1", f"Host: {self._http_host}", f"Content-Length: {len(body)}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> None:
        """Read one whole HTTP/1.1 answer (headers and a Content-Length body); it must be a 200."""
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"thin floor POST answered {head[:40]!r}")

    async def _probe_post(self, index: int, record: bool) -> None:
        assert self._http is not None
        reader, writer = self._http
        oid = f"{self._tag}-post-{index}"
        request = self._post_request(oid)
        sent = time.monotonic_ns()
        writer.write(request)
        await self._answer(reader)
        if record:
            self._post_sent[oid] = sent

    async def _probe_round_trips(self, part: str, index: int, record: bool) -> None:
        """One raw POST until its answer is read, or three at once until the slowest is."""
        assert self._http is not None
        connections = [self._http] if part == "raw POST round trip" else [self._http, *self._http_more]
        requests = [self._post_request(f"{self._tag}-rt-{index}-{n}") for n in range(len(connections))]
        started = time.monotonic_ns()
        for (_, writer), request in zip(connections, requests, strict=True):
            writer.write(request)
        await asyncio.gather(*(self._answer(reader) for reader, _ in connections))
        if record:
            self.samples[part].append(time.monotonic_ns() - started)

    # --- opening -----------------------------------------------------------------------------

    async def open(self, stack: Stack, exits: AsyncExitStack) -> None:
        path = str(stack.workdir / "thin-frame.sock")
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listening.bind(path)
        listening.listen()
        process = aiomultiprocess.Process(target=frame_receiver, args=(listening,), name="bench-thin-frame",
                                          loop_initializer=uvloop.new_event_loop)
        process.start()
        listening.close()
        reader, writer = await asyncio.open_unix_connection(path)
        self._frame = (reader, writer, FrameDecoder())

        async def close_frame() -> None:
            writer.close()
            await asyncio.get_running_loop().run_in_executor(None, process.aio_process.join, 5)
            if process.is_alive():
                process.kill()

        exits.push_async_callback(close_frame)
        redis = aioredis.Redis.from_url(stack.redis.url)
        exits.push_async_callback(redis.aclose)
        self._registry = Registry(redis, owner="bench-thin")
        # loaded up front, so the raw EVALSHA never meets NOSCRIPT
        self._sha = await redis.script_load(self._registry._acquire.script)  # noqa: SLF001
        redis_reader, redis_writer = await asyncio.open_unix_connection(str(stack.redis.socket_path))
        self._redis_io = (redis_reader, redis_writer)
        exits.callback(redis_writer.close)
        self._hop = await exits.enter_async_context(echo_bench(self.signal, 50))
        url = urlsplit(stack.sim_url)
        self._http_host = url.netloc
        for _ in range(3):
            http_reader, http_writer = await asyncio.open_connection(url.hostname, url.port)
            exits.callback(http_writer.close)
            if self._http is None:
                self._http = (http_reader, http_writer)
            else:
                self._http_more.append((http_reader, http_writer))
        for _ in range(_WARMUP * len(THIN_PARTS)):
            await self.probe()


@asynccontextmanager
async def open_thin_floor(stack: Stack, signal: dict[str, Any]) -> AsyncIterator[ThinFloor]:
    """A thin floor for `signal` (wire format) against the stack, warmed up, closed on exit."""
    floor = ThinFloor(signal)
    async with AsyncExitStack() as exits:
        await floor.open(stack, exits)
        yield floor
