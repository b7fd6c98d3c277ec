"""Fixtures for both layers: one real redis-server per test session on a private Unix socket, flushed
per test; a test's own durable redis-server for outages; `trident run` as real processes; the
simulator. Helpers live in `tests/support/`; tests under `tests/system/` are marked `system`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import structlog

from sim.server import RunningSimulator, start_simulator
from tests.support.processes import TridentProcess
from tools.embedded_redis import EmbeddedRedis, find_redis_server


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A test that runs a tool in-process (the demo logs at "error") must not filter the next one's logs."""
    yield
    structlog.reset_defaults()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "system" in item.path.parts:
            item.add_marker(pytest.mark.system)


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


@pytest.fixture
def trident_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., TridentProcess]]:
    """Factory: `start(env)` runs `python -m tools.cli run` with exactly these TRIDENT_* settings.

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
                [sys.executable, "-m", "tools.cli", "run"], env=env, stdout=sink, stderr=subprocess.STDOUT,
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


@pytest.fixture
def sentinel_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator["SentinelDeployment"]:
    """One primary, one replica and three sentinels on private loopback ports (tests/support/sentinel.py)."""
    from tests.support.sentinel import SentinelDeployment

    deployment = SentinelDeployment(tmp_path_factory.mktemp("sentinel")).start()
    yield deployment
    deployment.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator["RedisClusterDeployment"]:
    """Three cluster primaries on private loopback ports (tests/support/cluster.py), one per session."""
    from tests.support.cluster import RedisClusterDeployment

    deployment = RedisClusterDeployment(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def cluster_url(redis_cluster: "RedisClusterDeployment") -> str:
    """The session's cluster as a ``redis+cluster://`` URL, every primary emptied before the test."""
    redis_cluster.flush()
    return redis_cluster.url
