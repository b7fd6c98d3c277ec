"""Start-up settings of the simulator, and the demo account's credentials.

The demo credentials are public constants on purpose: the simulator holds no real money, and
the demo, tests and benchmarks all need to sign against it without any setup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shared.credentials import Credentials
from shared.kucoin.constants import (
    MANAGEMENT_POOL_LIMIT,
    PUBLIC_POOL_LIMIT,
    RATE_WINDOW_MS,
    SPOT_POOL_LIMIT,
    TIMESTAMP_WINDOW_MS,
)
from sim.knobs import Knobs

__all__ = [
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "DEMO_API_PASSPHRASE",
    "DEMO_CREDENTIALS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "SimConfig",
]

DEMO_API_KEY = "trident-demo-key"
DEMO_API_SECRET = "trident-demo-secret-0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e"
DEMO_API_PASSPHRASE = "trident-demo-passphrase"
DEMO_CREDENTIALS = Credentials(DEMO_API_KEY, DEMO_API_SECRET, DEMO_API_PASSPHRASE)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything fixed at start; knobs given here are the initial ones (and what reset restores).

    Rate-limit pools follow KuCoin VIP0: Spot (private trading calls, per account), Public (per
    IP) and Management (accounts), each refilled every `rate_window_ms`.
    """

    credentials: Credentials = DEMO_CREDENTIALS
    markets_path: Path | None = None
    knobs: Knobs = field(default_factory=Knobs)
    spot_limit: int = SPOT_POOL_LIMIT
    public_limit: int = PUBLIC_POOL_LIMIT
    management_limit: int = MANAGEMENT_POOL_LIMIT
    rate_window_ms: int = RATE_WINDOW_MS
    timestamp_window_ms: int = TIMESTAMP_WINDOW_MS
    order_log_max: int = 1_000_000
    rng_seed: int | None = None
