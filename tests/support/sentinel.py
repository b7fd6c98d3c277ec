"""A real Sentinel deployment on loopback: one primary, one replica, three sentinels, private ports.

Sentinel speaks TCP only (it announces host:port), so these servers listen on free loopback
ports instead of the Unix sockets the other fixtures use. `kill_primary()` is a SIGKILL;
`wait_failover()` returns once a majority of sentinels name the replica as the new primary.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import redis as syncredis

from tests.support.polling import poll_until
from tools.embedded_redis import find_redis_server

__all__ = ["SentinelDeployment", "MASTER_NAME"]

MASTER_NAME = "trident"
DOWN_AFTER_MS = 1500  # how long a silent primary is "down" for a sentinel: the fail-closed window


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SentinelDeployment:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.binary = find_redis_server()
        self.primary_port, self.replica_port = _free_port(), _free_port()
        self.sentinel_ports = [_free_port() for _ in range(3)]
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def _server(self, name: str, port: int, *extra: str) -> None:
        workdir = self.directory / name
        workdir.mkdir(exist_ok=True)
        args = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(workdir), "--logfile", str(workdir / "redis.log"), *extra]
        self._procs[name] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        poll_until(lambda: self.client(port).ping(), 10, f"{name} did not answer")

    def client(self, port: int) -> syncredis.Redis:
        return syncredis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1,
                              decode_responses=True)

    def start(self) -> "SentinelDeployment":
        self._server("primary", self.primary_port)
        self._server("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        poll_until(lambda: self.client(self.replica_port).info("replication")["master_link_status"] == "up", 10,
              "the replica did not sync")
        for index, port in enumerate(self.sentinel_ports):
            config = self.directory / f"sentinel-{index}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            name = f"sentinel-{index}"
            self._procs[name] = subprocess.Popen(
                [self.binary, str(config), "--sentinel", "--logfile", str(self.directory / f"{name}.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        for port in self.sentinel_ports:  # each sentinel knows the replica and the two others
            poll_until(lambda port=port: self._discovered(port), 30,
                  f"sentinel on {port} did not discover the deployment ({self._discovery(port)})")
        return self

    def _discovery(self, port: int) -> tuple[int, int]:
        client = self.client(port)
        return len(client.sentinel_slaves(MASTER_NAME)), len(client.sentinel_sentinels(MASTER_NAME))

    def _discovered(self, port: int) -> bool:
        return self._discovery(port) == (1, 2)

    def primary_address(self) -> tuple[str, int]:
        """What a majority of sentinels currently name as the primary."""
        answers = [self.client(port).sentinel_get_master_addr_by_name(MASTER_NAME) for port in self.sentinel_ports]
        host, port = max(set(answers), key=answers.count)
        return host, int(port)

    def kill_primary(self) -> None:
        self._procs["primary"].kill()
        self._procs["primary"].wait()

    def wait_failover(self, timeout_s: float = 30.0) -> None:
        poll_until(lambda: self.primary_address() == ("127.0.0.1", self.replica_port)
              and self.client(self.replica_port).info("replication")["role"] == "master",
              timeout_s, "no failover to the replica")

    def restart_old_primary_as_replica(self) -> None:
        """The killed primary back (as its service manager would restart it), following the new one."""
        self._server("primary", self.primary_port, "--replicaof", "127.0.0.1", str(self.replica_port))
        poll_until(lambda: self.client(self.primary_port).info("replication")["master_link_status"] == "up", 20,
              "the old primary did not rejoin as a replica")

    def stop(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
