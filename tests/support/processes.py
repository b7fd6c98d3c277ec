"""`trident run` as a real process: its settings environment and a handle to its process group."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from tests.support.e2e import run_values

__all__ = ["TridentProcess", "trident_env"]


def trident_env(redis_url: str, exchange_url: str, workdir: Path, **settings: object) -> dict[str, str]:
    """`run_values` as the TRIDENT_* environment of a `trident run` process (one worker, info logs)."""
    values = run_values(redis_url, exchange_url, workdir, **{"workers": 1, "log_level": "info", **settings})
    env = {f"TRIDENT_{name.upper()}": str(value) for name, value in values.items()}
    env.update(TRIDENT_API_KEY=DEMO_API_KEY, TRIDENT_API_SECRET=DEMO_API_SECRET, TRIDENT_API_PASSPHRASE=DEMO_API_PASSPHRASE)
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
