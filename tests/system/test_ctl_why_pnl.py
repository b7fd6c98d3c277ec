"""`trident ctl why`, `ctl pnl` and `ctl config --effective`, run as the operator runs them."""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from shared.codec import encode_frame
from sim.server import RunningSimulator
from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor, stream_reports
from tests.system.test_ctl import ctl
from tools.send import send_frames
from tools.synthetic import restamped


async def test_why_tells_a_filled_a_refused_and_an_unknown_signal_and_pnl_adds_up_to_the_stream(
    redis_url: str, simulator: RunningSimulator, redis_client
) -> None:
    markets = await markets_of(simulator)
    settings = e2e_settings(redis_url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-why-")), workers=1,
                            metrics_port=0)
    async with running_supervisor(settings) as supervisor:
        frames = [encode_frame(restamped(fresh_signal(markets, 0, cid))) for cid in ("why-run", "why-busy")]
        await send_frames(settings.socket_path, frames, progress=False)
        await supervisor.wait_frames(2, 10)
        await supervisor.wait_idle(10)
        for index in range(1, 4):
            await send_frames(settings.socket_path, [encode_frame(restamped(fresh_signal(markets, index, f"why-{index}")))],
                              progress=False)
            await supervisor.wait_frames(2 + index, 10)
            await supervisor.wait_idle(10)
        await supervisor.refusal_trail.flush()
    reports = {r.correlation_id: r for r in await stream_reports(redis_url)}

    code, out = await ctl(redis_url, "why", "why-run")
    assert code == 0 and "report " in out and f": {reports['why-run'].status} (paper)" in out, out
    assert "leg 0:" in out and "leg 2:" in out and "profit" in out
    code, out = await ctl(redis_url, "why", "why-busy")
    assert code == 0 and "refused" in out and "triangle_busy" in out and "held by execution why-run" in out, out
    code, out = await ctl(redis_url, "why", "never-sent")
    assert code == 1 and "never seen" in out

    code, out = await ctl(redis_url, "pnl", "--json")
    assert code == 0, out
    table = json.loads(out)["groups"]
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for report in reports.values():
        expected[report.primary_quote or "?"] += report.profit
    assert {quote: Decimal(row["profit"][quote]) for quote, row in table.items()} == dict(expected)
    assert sum(row["executions"] for row in table.values()) == len(reports)
    code, out = await ctl(redis_url, "pnl", "--by", "triangle")
    assert code == 0 and "executions" in out and "best " in out, out
    code, out = await ctl(redis_url, "pnl", "--since", "yesterday")
    assert code == 2 and "--since" in out


async def test_config_effective_names_every_source_and_masks_secrets(redis_url: str) -> None:
    import asyncio  # noqa: PLC0415
    import sys  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIDENT_")}
    env.update(TRIDENT_WORKERS="3", TRIDENT_API_KEY="key-1234", TRIDENT_API_SECRET="s3cr3t-value",
               TRIDENT_API_PASSPHRASE="pass-phrase-x")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.cli", "ctl", "config", "--effective", "--redis-url", redis_url,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0, out
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("settings", "registry"))}
    assert lines["workers"].split()[1:] == ["3", "TRIDENT_WORKERS"]
    assert lines["redis_url"].endswith("flag") and lines["mode"].endswith("default")
    assert "s3cr3t-value" not in out and "pass-phrase-x" not in out and "key-" in lines["credentials"]
    assert "registry (Redis, fleet-wide): paused=no" in out


async def test_balances_reads_a_live_account_from_the_simulator_and_says_paper_has_none(
    redis_url: str, simulator: RunningSimulator
) -> None:
    import asyncio  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET  # noqa: PLC0415

    base = {k: v for k, v in os.environ.items() if not k.startswith("TRIDENT_")}
    base.update(TRIDENT_API_KEY=DEMO_API_KEY, TRIDENT_API_SECRET=DEMO_API_SECRET,
                TRIDENT_API_PASSPHRASE=DEMO_API_PASSPHRASE, TRIDENT_EXCHANGE_URL=simulator.url)

    async def run(env: dict[str, str], *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tools.cli", "ctl", "balances", "--redis-url", redis_url, *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        return proc.returncode, out.decode()

    code, out = await run(base)
    assert code == 0 and out.count("\n") == 1 and out.startswith("paper mode: no balances"), out
    code, out = await run({**base, "TRIDENT_MODE": "live"}, "--json")
    assert code == 0, out
    held = {row["currency"]: Decimal(row["balance"]) for row in json.loads(out)["accounts"]}
    expected = {a["currency"]: Decimal(a["balance"]) for a in simulator.sim.exchange.accounts() if Decimal(a["balance"])}
    assert held and held == expected
