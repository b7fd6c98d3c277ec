"""Sharded routing with real worker processes: every execution of a triangle runs in its home worker."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from shared.codec import encode_frame
from shared.pool import Member
from shared.store.registry import Registry
from sim.server import RunningSimulator
from supervisor.routing import shard_home
from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor, stream_reports
from tools.send import send_frames
from tools.synthetic import find_triangles, restamped


async def test_shard_routing_runs_each_triangle_in_its_home_worker(
    redis_url: str, simulator: RunningSimulator, workdir: Path, redis_client
) -> None:
    await Registry(redis_client, owner="test").set_config(slots=50, enforce_pair=False)
    markets = await markets_of(simulator)
    settings = e2e_settings(redis_url, simulator.url, workdir, workers=2, routing="shard", shard_spill=50)
    rounds, triangles = 3, 6
    distinct: dict[str, int] = {}  # one orientation of each pair set (the registry's triangle id)
    for index, triangle in enumerate(find_triangles(markets)):
        distinct.setdefault(",".join(sorted(triangle.pairs)), index)
    chosen = list(distinct.values())[:triangles]
    async with running_supervisor(settings) as supervisor:
        for round_ in range(rounds):  # one execution per triangle at a time: the registry refuses a second
            frames = [encode_frame(restamped(fresh_signal(markets, t, f"r{round_}-t{t}"))) for t in chosen]
            await send_frames(settings.socket_path, frames, progress=False)
            await supervisor.wait_frames((round_ + 1) * triangles, 10)
            await supervisor.wait_idle(10)
        host = supervisor.name.rsplit(":", 1)[0]
        assert not supervisor.admission.refusals, supervisor.admission.refusals
    reports = await stream_reports(redis_url)
    assert len(reports) == rounds * triangles
    workers_of: dict[str, set[str]] = defaultdict(set)
    for report in reports:
        workers_of[",".join(sorted(report.triangle))].add(report.worker)
    pool = [Member(index=0), Member(index=1)]
    expected = {t: {f"{host}/w{shard_home(pool, t).index}"} for t in workers_of}
    assert len(workers_of) == triangles and workers_of == expected
