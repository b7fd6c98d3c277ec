"""Shared fixtures: one real redis-server per test session on a private Unix socket, flushed per test;
a test's own durable redis-server for outages; `trident run` as real processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from sim.server import RunningSimulator, start_simulator
from supervisor.embedded_redis import EmbeddedRedis, find_redis_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """URL of the session's Redis, emptied before the test."""
    import redis as syncredis

    client = syncredis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def durable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server of the test's own, which it may `kill()` and `start()` again (outage tests).

    It runs with an append-only file synced on every write, as a production Redis should, so a
    kill -9 loses no acknowledged write and "nothing lost" is measured across the outage. The
    wrapper adds those options after EmbeddedRedis's own (Redis applies the last one given).
    """
    wrapper = tmp_path_factory.mktemp("redis-bin") / "redis-server-aof"
    wrapper.write_text(f'#!/bin/sh\nexec "{find_redis_server()}" "$@" --appendonly yes --appendfsync always\n')
    os.chmod(wrapper, 0o755)
    server = EmbeddedRedis(binary=str(wrapper)).start()
    yield server
    server.stop()


def trident_env(redis_url: str, exchange_url: str, workdir: Path, **settings: object) -> dict[str, str]:
    """TRIDENT_* variables for a `trident run` against the simulator's demo account."""
    from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET  # noqa: PLC0415

    env = {
        "TRIDENT_REDIS_URL": redis_url, "TRIDENT_EXCHANGE_URL": exchange_url,
        "TRIDENT_SOCKET_PATH": str(workdir / "signals.sock"), "TRIDENT_SPOOL_DIR": str(workdir / "spool"),
        "TRIDENT_WORKERS": "1", "TRIDENT_LOG_LEVEL": "info",
        "TRIDENT_API_KEY": DEMO_API_KEY, "TRIDENT_API_SECRET": DEMO_API_SECRET,
        "TRIDENT_API_PASSPHRASE": DEMO_API_PASSPHRASE,
    }
    env.update({f"TRIDENT_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@dataclass
class TridentProcess:
    """A `trident run` a test started, leading its own process group (itself and its workers)."""

    proc: subprocess.Popen[bytes]
    socket_path: str
    output: Path  # its stdout and stderr

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def name(self) -> str:
        """Its name in Redis (status hash, lease owner)."""
        return f"{socket.gethostname()}:{self.proc.pid}"

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until its socket accepts a connection (it listens once every worker said hello)."""
        async with asyncio.timeout(timeout_s):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"trident run exited with {self.proc.returncode}:\n{self.output.read_text()}")
                try:
                    _, writer = await asyncio.open_unix_connection(self.socket_path)
                except OSError:
                    await asyncio.sleep(0.05)  # another process: no event to wait on
                    continue
                writer.close()
                return

    def kill(self) -> None:
        """SIGKILL the supervisor alone: its workers are orphaned, as after a crash."""
        self.proc.kill()
        self.proc.wait()

    def terminate_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


@pytest.fixture
def trident_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., TridentProcess]]:
    """Factory: `start(env)` runs `python -m supervisor.cli run` with exactly these TRIDENT_* settings.

    Every process group started is SIGKILLed at teardown, orphaned workers included.
    """
    started: list[TridentProcess] = []

    def start(settings_env: Mapping[str, str]) -> TridentProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIDENT_")}
        env.update(settings_env)
        env["PYTHONUNBUFFERED"] = "1"
        output = tmp_path_factory.mktemp("trident-run") / "output.log"
        with output.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor.cli", "run"], env=env, stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        process = TridentProcess(proc, settings_env["TRIDENT_SOCKET_PATH"], output)
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate_group()


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    """The KuCoin-compatible simulator on an ephemeral loopback port, with its default markets."""
    running = await start_simulator()
    yield running
    await running.stop()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short private directory: Unix socket paths are limited to ~108 bytes, pytest's can exceed it."""
    path = Path(tempfile.mkdtemp(prefix="tri-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
