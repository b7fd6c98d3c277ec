"""`trident demo` end to end (private Redis, simulator, supervisor, workers) on a small signal set."""

from __future__ import annotations

import re

import pytest

from tools.demo import run_demo


async def test_demo_accounts_for_every_signal_and_shows_each_refusal_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo(redis_url=None, signals=200, workers=2) == 0
    out = capsys.readouterr().out
    sent = int(re.search(r"signals sent\s+(\d+)", out).group(1))
    reported = int(re.search(r"executions reported\s+(\d+)", out).group(1))
    refused = int(re.search(r"refused\s+(\d+)", out).group(1))
    assert sent == 200 and reported + refused == sent
    assert "(all)" in out
    for reason in ("live_in_paper", "stale", "missing_field"):
        assert re.search(rf"\b{reason}\s+[1-9]", out), reason
    assert re.search(r"\bfilled\s+[1-9]", out)
    share = float(re.search(r"incidentally\s+\d+\s+\(([\d.]+) % of", out).group(1))
    assert share <= 20.0, out  # isolation refusals a minority of the valid signals
    positive, filled = map(int, re.search(r"positive effective bps\s+(\d+) of (\d+)", out).groups())
    assert positive > filled / 2, out  # the default markets carry edges that pay after fees


async def test_demo_against_an_existing_redis_leaves_its_reports(redis_url: str) -> None:
    import redis.asyncio as aioredis

    assert await run_demo(redis_url=redis_url, signals=60, workers=1) == 0
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.xlen("trident:reports") > 0
    finally:
        await client.aclose()
