"""KuCoin-compatible exchange simulator: signed REST, HF orders filled against books, knobs.

Entry points: `Simulator` (state and Python API), `create_app(sim)` (the aiohttp app),
`start_simulator(host, port, config=...)` (serve it), `sim.cli.main` (`trident sim`).
"""

from sim.app import create_app
from sim.config import (
    DEMO_API_KEY,
    DEMO_API_PASSPHRASE,
    DEMO_API_SECRET,
    DEMO_CREDENTIALS,
    SimConfig,
)
from sim.knobs import Knobs
from sim.server import RunningSimulator, start_simulator
from sim.simulator import Simulator

__all__ = [
    "create_app",
    "Simulator",
    "SimConfig",
    "Knobs",
    "RunningSimulator",
    "start_simulator",
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "DEMO_API_PASSPHRASE",
    "DEMO_CREDENTIALS",
]
