"""Every refused signal lands in `trident:refusals:log` with a detail a person can act on; the
log says each reason's first occurrence and then a summary, never one line per refusal."""

from __future__ import annotations

from pathlib import Path

import structlog

from shared.codec import HEADER, as_text, encode_frame
from shared.store import keys
from sim.server import RunningSimulator
from supervisor.refusal_trail import RefusalTrail
from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor, wait_until
from tools.send import send_frames
from tools.synthetic import restamped


async def _trail(redis_client) -> dict[str, dict[str, str]]:
    entries = await redis_client.xrange(keys.REFUSAL_LOG)
    return {as_text(f[b"correlation_id"]) or f"frame-{i}": {as_text(k): as_text(v) for k, v in f.items()}
            for i, (_, f) in enumerate(entries)}


async def test_refusals_are_streamed_with_actionable_details(
    redis_url: str, simulator: RunningSimulator, workdir: Path, redis_client
) -> None:
    markets = await markets_of(simulator)
    settings = e2e_settings(redis_url, simulator.url, workdir, workers=0, metrics_port=0)
    await redis_client.hset(keys.CONFIG, mapping={"cap:USDT": "150", "enforce_pair": "0"})
    with structlog.testing.capture_logs() as logs:
        async with running_supervisor(settings) as supervisor:
            first = restamped(fresh_signal(markets, 0, "trail-run", volume="100"))
            busy = restamped(fresh_signal(markets, 0, "trail-busy", volume="10"))
            capped = restamped(fresh_signal(markets, 2, "trail-cap", volume="100"))
            live = {**restamped(fresh_signal(markets, 3, "trail-live")), "live": True}
            broken = {**restamped(fresh_signal(markets, 3, "trail-bad")), "starting_volume": "-5"}
            garbage = HEADER.pack(3) + b"\xc1\xc1\xc1"
            frames = [encode_frame(s) for s in (first, busy, capped, live, broken)] + [garbage]
            await send_frames(settings.socket_path, frames, progress=False)
            await supervisor.wait_frames(6, 10)
            await supervisor.wait_idle(10)
            stale = restamped(fresh_signal(markets, 0, "trail-stale"), book_age_ms=60_000)
            await send_frames(settings.socket_path, [encode_frame(stale)], progress=False)
            await supervisor.wait_frames(7, 10)
            await wait_until(lambda: supervisor.refusal_trail.written >= 6, 5)
            trail = await _trail(redis_client)
    assert set(trail) >= {"trail-busy", "trail-cap", "trail-live", "trail-bad", "trail-stale"}
    assert trail["trail-busy"]["reason"] == "triangle_busy" and "trail-run" in trail["trail-busy"]["detail"]
    cap = trail["trail-cap"]
    assert cap["reason"] == "capital_cap" and "cap 150 USDT" in cap["detail"] and "this signal 100" in cap["detail"]
    assert trail["trail-live"]["reason"] == "live_in_paper"
    assert trail["trail-stale"]["reason"] == "stale" and "before the triangle's last trade" in trail["trail-stale"]["detail"]
    assert trail["trail-bad"]["reason"] not in ("", "triangle_busy")
    assert all(e["supervisor"] == supervisor.name and int(e["ts_ms"]) > 0 for e in trail.values())
    assert trail["trail-busy"]["triangle"] == ",".join(busy["triangle_key"])
    assert any("undecodable frame" in e["detail"] for e in trail.values())  # the garbage frame's sample
    first_seen = [e["reason"] for e in logs if e["event"] == "refusal_first_seen"]
    assert len(first_seen) == len(set(first_seen)) and "capital_cap" in first_seen


async def test_the_summary_counts_each_reason_of_the_window(redis_client) -> None:
    trail = RefusalTrail(redis_client, "test:1", summary_s=3600)
    with structlog.testing.capture_logs() as logs:
        for _ in range(312):
            trail.record("pair_busy", "", "x", None)
        for _ in range(4):
            trail.record("stale", "", "y", None)
        assert trail.summarise() is None  # the window is not over
        text = trail.summarise(force=True)
        assert await trail.flush() == 316
    assert text is not None and text.startswith("refusals in the last ") and text.endswith("pair_busy 312, stale 4")
    assert [e["event"] for e in logs] == ["refusal_first_seen", "refusal_first_seen", "refusals_summary"]
    assert await redis_client.xlen(keys.REFUSAL_LOG) == 316
