"""Running the simulator on a TCP port, in-process (tests, demo, benchmarks) or from the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sim.app import create_app
from sim.config import DEFAULT_HOST, SimConfig
from sim.simulator import Simulator

__all__ = ["RunningSimulator", "start_simulator"]

# Hung requests are released at stop, so nothing in flight needs long to finish.
_SHUTDOWN_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on `url` (the real port, also when started on port 0)."""

    sim: Simulator
    host: str
    port: int
    _runner: web.AppRunner

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Let hung requests go unanswered and close the server."""
        self.sim.stopping()
        await self._runner.cleanup()


async def start_simulator(
    host: str = DEFAULT_HOST, port: int = 0, *, config: SimConfig | None = None
) -> RunningSimulator:
    """Serve a new Simulator on host:port (0 picks a free port)."""
    sim = Simulator(config)
    runner = web.AppRunner(create_app(sim), access_log=None, handle_signals=False,
                           shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    actual_port = runner.addresses[0][1]
    return RunningSimulator(sim=sim, host=host, port=actual_port, _runner=runner)
