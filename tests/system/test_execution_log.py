"""A real `trident run` logs one INFO `execution` line per outcome (JSON on stdout), and the
human file log reads `FILLED <id> <path> spent … USDT …`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from shared.codec import encode_frame
from sim.server import RunningSimulator
from tests.support.e2e import fresh_signal, markets_of, stream_reports, wait_until
from tests.support.processes import TridentProcess, trident_env
from tools.send import send_frames
from tools.synthetic import restamped


async def test_each_outcome_is_one_info_line_on_stdout_and_a_readable_one_in_the_file(
    redis_url: str, simulator: RunningSimulator, workdir: Path, trident_process: Callable[..., TridentProcess],
) -> None:
    log_file = workdir / "trident.log"
    process = trident_process(trident_env(redis_url, simulator.url, workdir, metrics_port=0, log_file=str(log_file)))
    await process.wait_ready()
    markets = await markets_of(simulator)
    def executions() -> list[dict]:
        found = []
        for line in process.output.read_text().splitlines():
            if line.startswith("{") and '"event":"execution"' in line:
                found.append(json.loads(line))
        return found

    # triangles 0 (ADA-USDT/ADA-BTC/BTC-USDT) and 8 (ETH-USDT/KCS-ETH/KCS-USDT) share no pair, so
    # the second is admitted even if the first's lease is not yet released when its line is logged
    for i, triangle in enumerate((0, 8)):
        await send_frames(process.socket_path, [encode_frame(restamped(fresh_signal(markets, triangle, f"xlog-{i}")))],
                          progress=False)
        await wait_until(lambda: len(executions()) == i + 1, 30)
    by_id = {entry["correlation_id"]: entry for entry in executions()}
    reports = {r.correlation_id: r for r in await stream_reports(redis_url) if r.correlation_id.startswith("xlog-")}
    assert set(by_id) == set(reports) == {"xlog-0", "xlog-1"}
    for cid, entry in by_id.items():
        assert entry["status"] == str(reports[cid].status) and entry["level"] == "info"
        assert entry["spent"].endswith(" USDT") and entry["profit"].endswith(" USDT")
    await wait_until(lambda: log_file.exists() and log_file.read_text().count(" xlog-") == 2, 10)
    text = log_file.read_text()
    assert all(f"{str(reports[cid].status).upper()} {cid} " in text for cid in reports)
