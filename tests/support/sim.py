"""Helpers shared by the simulator tests (no tests here): a served simulator and a signed client.

The client talks plain HTTP with aiohttp and signs with shared.kucoin.auth.Signer; URLs are
sent exactly as signed (`encoded=True`), as KuCoin verifies the raw path and query.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from shared.credentials import Credentials
from shared.kucoin.auth import Signer
from sim import DEMO_CREDENTIALS, RunningSimulator, SimConfig, start_simulator
from sim.simulator import Simulator

# A tiny market whose fills are easy to work out by hand.
SIMPLE_MARKETS: dict[str, Any] = {
    "symbols": [
        {
            "symbol": "BTC-USDT", "baseMinSize": "0.00001", "quoteMinSize": "0.1",
            "baseIncrement": "0.00000001", "quoteIncrement": "0.000001", "priceIncrement": "0.1",
            "minFunds": "0.1", "takerFeeRate": "0.001", "makerFeeRate": "0.001",
            "book": {"asks": [["50000", "0.001"], ["50010", "0.01"]],
                     "bids": [["49990", "0.001"], ["49980", "0.01"]]},
        },
        {
            "symbol": "DOGE-USDT", "baseMinSize": "10", "quoteMinSize": "0.1", "baseIncrement": "1",
            "quoteIncrement": "0.000001", "priceIncrement": "0.00001", "enableTrading": False,
            "book": {"asks": [["0.1", "1000"]], "bids": [["0.09", "1000"]]},
        },
    ],
    "balances": {"USDT": "1000", "BTC": "1"},
}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str:
        return self.body["code"]

    @property
    def data(self) -> Any:
        assert self.body["code"] == "200000", self.body
        return self.body["data"]


class SimHarness:
    """A running simulator plus a session signing as the demo account (or `credentials`)."""

    def __init__(self, running: RunningSimulator, session: aiohttp.ClientSession) -> None:
        self.running = running
        self.session = session
        self.signer = Signer(DEMO_CREDENTIALS)

    @property
    def sim(self) -> Simulator:
        return self.running.sim

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | bytes | None = None,
        *,
        signer: Signer | None = None,
        signed: bool = True,
        headers: dict[str, str] | None = None,
        timeout_s: float = 5.0,
    ) -> Answer:
        raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        sent_headers = (signer or self.signer).headers(method, path, raw) if signed else {}
        sent_headers.update(headers or {})
        async with self.session.request(
            method, URL(self.running.url + path, encoded=True), data=raw or None, headers=sent_headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            text = await response.text()
            return Answer(response.status, dict(response.headers), json.loads(text) if text else None)

    async def place(self, body: dict[str, Any], kind: str = "", **kwargs: Any) -> Answer:
        path = "/api/v1/hf/orders" + (f"/{kind}" if kind else "")
        return await self.call("POST", path, body, **kwargs)

    async def get_by_client_oid(self, client_oid: str, symbol: str = "BTC-USDT") -> Answer:
        return await self.call("GET", f"/api/v1/hf/orders/client-order/{client_oid}?symbol={symbol}")

    def balance(self, currency: str) -> Decimal:
        return self.sim.balances().get(currency, Decimal(0))


def signer_for(key: str, secret: str, passphrase: str, version: int = 2) -> Signer:
    return Signer(Credentials(key, secret, passphrase, key_version=version))


def write_markets(directory: Path, markets: dict[str, Any] = SIMPLE_MARKETS) -> Path:
    path = directory / "markets.json"
    path.write_text(json.dumps(markets), encoding="utf-8")
    return path


@asynccontextmanager
async def running_sim(config: SimConfig | None = None) -> AsyncIterator[SimHarness]:
    running = await start_simulator(port=0, config=config)
    try:
        async with aiohttp.ClientSession() as session:
            yield SimHarness(running, session)
    finally:
        await running.stop()
