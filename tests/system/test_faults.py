"""Exchange faults from the simulator's knobs, end to end in paper mode (supervisor, worker processes).

Each fault ends its execution in one report with the exchange's reason, no call is ever made
twice (the simulator's order log holds each clientOid once), the lease is given back, and the
next signal runs normally. Live-only faults (a placement whose answer is lost, a dropped private
WebSocket) belong to live mode and are tested there.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from shared.codec import encode_frame
from sim.server import RunningSimulator
from supervisor.app import Supervisor
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tools.send import send_frames
from tools.synthetic import restamped
from worker.context import client_oid

HTTP_TIMEOUT_S = 0.5
ORDER_TEST = "/api/v1/hf/orders/test"

# knob → (what the report's error must say, the code the exchange logged for the faulty call)
FAULTS = [
    ({"force_429": {"next_n": 1, "path": ORDER_TEST}}, "KuCoin 429000: Too Many Requests (HTTP 429) [reset in", "429000"),
    ({"fail_5xx": {"next_n": 1, "path": ORDER_TEST}}, "(HTTP 500)", "500000"),
    ({"reject": {"next_n": 1, "code": "200004"}}, "KuCoin 200004: Insufficient balance.", "200004"),
    ({"reject": {"next_n": 1, "code": "400100"}}, "KuCoin 400100:", "400100"),
    ({"hang": {"next_n": 1, "path": ORDER_TEST}}, "TimeoutError", None),
]


async def _run_one(supervisor: Supervisor, signal: dict) -> None:
    before = supervisor.frames
    await send_frames(supervisor.settings.socket_path, [encode_frame(restamped(signal))], progress=False)
    await supervisor.wait_frames(before + 1, 10)
    await supervisor.wait_idle(10)


async def test_each_exchange_fault_ends_in_one_failed_report_and_nothing_is_sent_twice(
    redis_url: str, simulator: RunningSimulator
) -> None:
    markets = await markets_of(simulator)
    settings = e2e_settings(redis_url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-flt-")),
                            workers=1, http_timeout_s=HTTP_TIMEOUT_S)
    async with running_supervisor(settings) as supervisor:
        for index, (knobs, _, _) in enumerate(FAULTS):
            simulator.sim.update_knobs(knobs)
            await _run_one(supervisor, fresh_signal(markets, 0, f"fault-{index}"))
            # the service recovers by itself: the same triangle right after is filled
            await _run_one(supervisor, fresh_signal(markets, 0, f"after-{index}"))
        assert supervisor.admission.refusals == Counter()  # every lease was given back in time
        assert await supervisor.registry.leases() == []
    reports = {r.correlation_id: r for r in await stream_reports(redis_url)}
    log = simulator.sim.order_log.entries()
    assert len(reports) == 2 * len(FAULTS)
    for index, (_, message, code) in enumerate(FAULTS):
        failed, after = reports[f"fault-{index}"], reports[f"after-{index}"]
        assert failed.status == "failed" and message in failed.error, failed.error
        assert (after.status, after.error) == ("filled", "")
        faulty = [e for e in log if e.client_oid in {client_oid(f"fault-{index}", leg) for leg in range(3)}]
        assert sorted(e.code or "hung" for e in faulty) == sorted([code or "hung", "200000", "200000"])
    # no call was ever repeated: each clientOid reached the exchange exactly once
    sent = Counter(e.client_oid for e in log)
    assert set(sent.values()) == {1} and len(sent) == 3 * len(reports)
