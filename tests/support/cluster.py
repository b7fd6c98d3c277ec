"""A real Redis Cluster on loopback: three primaries, no replicas, private ports in a temp dir.

Cluster nodes announce host:port to their clients (MOVED replies, CLUSTER SLOTS), so they listen
on free loopback TCP ports, like the Sentinel fixture. `flush()` empties every primary (FLUSHALL
is per node), so a session-scoped cluster serves each test clean.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from pathlib import Path

import redis as syncredis

from tests.support.polling import poll_until
from tools.embedded_redis import find_redis_server

__all__ = ["RedisClusterDeployment"]

PRIMARIES = 3


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port(taken: list[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free too, so below 55536."""
    rng = random.Random()
    while True:
        port = rng.randrange(20_000, 45_000)
        if port not in taken and port + 10_000 not in taken and _bindable(port) and _bindable(port + 10_000):
            return port


class RedisClusterDeployment:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.binary = find_redis_server()
        self.ports: list[int] = []
        for _ in range(PRIMARIES):
            self.ports.append(_free_cluster_port(self.ports))
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """Every node listed, though one would do: the client learns the others from it."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def client(self, port: int) -> syncredis.Redis:
        return syncredis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2,
                              decode_responses=True)

    def start(self) -> "RedisClusterDeployment":
        try:
            for port in self.ports:
                workdir = self.directory / str(port)
                workdir.mkdir()
                self._procs.append(subprocess.Popen(
                    [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                     "--cluster-config-file", str(workdir / "nodes.conf"), "--cluster-node-timeout", "5000",
                     "--save", "", "--appendonly", "no", "--dir", str(workdir),
                     "--logfile", str(workdir / "redis.log")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))
            for port in self.ports:
                poll_until(lambda port=port: self.client(port).ping(), 10, f"cluster node {port} did not answer")
            sibling = Path(self.binary).with_name("redis-cli")
            cli = str(sibling) if sibling.exists() else shutil.which("redis-cli") or "redis-cli"
            subprocess.run(
                [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                 "--cluster-replicas", "0", "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30,
            )
            for port in self.ports:
                poll_until(lambda port=port: self.client(port).cluster("info")["cluster_state"] == "ok", 20,
                      f"cluster node {port} did not reach cluster_state:ok")
        except BaseException:
            self.stop()
            raise
        return self

    def flush(self) -> None:
        for port in self.ports:
            client = self.client(port)
            client.flushall()
            client.close()

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
