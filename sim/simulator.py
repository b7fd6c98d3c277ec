"""The simulator's state and its Python API: exchange, knobs, order log, rate limits, WebSocket.

Tests and benchmarks running in the same process steer it directly (`sim.update_knobs(...)`,
`sim.set_balances(...)`, `sim.order_log.entries()`); other processes use the same operations
through the `/_sim/` admin API.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.kucoin.constants import MANAGEMENT_POOL, PUBLIC_POOL, SPOT_POOL
from shared.money import parse_decimal
from sim.auth import Verifier
from sim.config import SimConfig
from sim.exchange import Exchange
from sim.knobs import Knobs
from sim.market import MarketSpec, load_markets
from sim.orderlog import OrderLog
from sim.ratelimit import RateLimiter
from sim.ws_hub import PrivateWsHub

__all__ = ["Simulator"]


class Simulator:
    """One simulated KuCoin account and market; `reset()` returns to the loaded state."""

    def __init__(self, config: SimConfig | None = None, *, markets: MarketSpec | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self._markets = markets if markets is not None else load_markets(self.config.markets_path)
        self.knobs: Knobs = self.config.knobs.copy()
        self.rng = random.Random(self.config.rng_seed)
        self.exchange = Exchange(self._markets)
        self.order_log = OrderLog(self.config.order_log_max)
        self.rate_limiter = RateLimiter(
            {SPOT_POOL: self.config.spot_limit, PUBLIC_POOL: self.config.public_limit,
             MANAGEMENT_POOL: self.config.management_limit},
            self.config.rate_window_ms,
        )
        self.verifier = Verifier(self.config.credentials, self.config.timestamp_window_ms)
        # Tokens handed out by bullet-private, for the private WebSocket: token -> issued at (ms).
        self.ws_tokens: dict[str, int] = {}
        # The private WebSocket's connections and knobs; outlives reset(), as its knobs do.
        self.ws_hub = PrivateWsHub(self)
        self._stopping = asyncio.Event()

    def update_knobs(self, changes: Mapping[str, Any] | None = None, **more: Any) -> Knobs:
        """Change knobs while running, e.g. `update_knobs(hang_after_match=1, latency_ms=5)`."""
        self.knobs.update({**(changes or {}), **more})
        return self.knobs

    def balances(self) -> dict[str, Decimal]:
        """Available balance per currency."""
        ledger = self.exchange.ledger
        return {cur: ledger.available(cur) for cur in ledger.currencies()}

    def set_balances(self, amounts: Mapping[str, Decimal | str | int]) -> None:
        """Set the available balance of the given currencies (others are left alone)."""
        parsed = {str(cur): parse_decimal(amount) for cur, amount in amounts.items()}
        if any(amount < 0 for amount in parsed.values()):
            raise ValueError("balances cannot be negative")
        for cur, amount in parsed.items():
            self.exchange.ledger.set_available(cur, amount)

    def reset(self) -> None:
        """Loaded books and balances, no orders, empty log, full rate pools, initial knobs."""
        self.exchange = Exchange(self._markets)
        self.order_log.clear()
        self.rate_limiter.reset()
        self.knobs.update(self.config.knobs.to_dict())
        self.ws_tokens.clear()

    def issue_ws_token(self) -> str:
        token = secrets.token_urlsafe(48)
        self.ws_tokens[token] = time.time_ns() // 1_000_000
        return token

    async def wait_until_stopping(self) -> None:
        """Where hung requests wait: they are let go (unanswered) when the server stops."""
        await self._stopping.wait()

    def stopping(self) -> None:
        self._stopping.set()
