"""`python -m sim` / `trident sim`: prints its URL and credentials, serves, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

from sim import DEMO_API_KEY
from sim.cli import build_parser, config_from_args, main

REPO = Path(__file__).resolve().parents[2]


async def test_cli_serves_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim", "--port", "0", "--latency-ms", "1",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), timeout=8)).decode()
        url = first.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        banner = (await asyncio.wait_for(process.stdout.readline(), timeout=2)).decode()
        assert DEMO_API_KEY in banner
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/api/v1/timestamp") as response:
                assert (await response.json())["code"] == "200000"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=5) == 0
        assert b"stopped" in await process.stdout.read()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_flags_become_config(tmp_path: Path) -> None:
    markets = tmp_path / "m.json"
    args = build_parser().parse_args([
        "--markets", str(markets), "--api-key", "k", "--api-secret", "s", "--api-passphrase", "p",
        "--latency-ms", "3", "--jitter-ms", "2", "--consume-liquidity", "--spot-limit", "9",
    ])
    config = config_from_args(args)
    assert (config.credentials.api_key, config.credentials.api_secret, config.credentials.api_passphrase) == (
        "k", "s", "p")
    assert (config.markets_path, config.spot_limit) == (markets, 9)
    assert (config.knobs.latency_ms, config.knobs.jitter_ms, config.knobs.consume_liquidity) == (3, 2, True)
    assert config.knobs.fee_inside_funds is False


def test_missing_markets_file_exits_nonzero(tmp_path: Path) -> None:
    assert main(["--port", "0", "--markets", str(tmp_path / "absent.json")]) == 2


def test_invalid_markets_file_exits_nonzero(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"symbols": [{"symbol": "NODASH"}]}', encoding="utf-8")
    assert main(["--port", "0", "--markets", str(broken)]) == 1
