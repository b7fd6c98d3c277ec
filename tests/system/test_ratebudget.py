"""The fleet's exchange rate budget: its Lua against a real redis-server, then the whole service
(supervisors, worker processes, the simulator with a small Spot pool) never earning a 429."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis

from shared.codec import encode_frame
from shared.kucoin.constants import SPOT_POOL as SPOT
from shared.store import keys
from shared.store.ratebudget import LIVE_TRIANGLE_WEIGHT, TRIANGLE_WEIGHT, RateBudget
from shared.store.registry import Registry
from sim.config import SimConfig
from sim.server import RunningSimulator, start_simulator
from supervisor.app import Supervisor
from tests.support.budget import stored, take
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tools.send import send_frames
from tools.synthetic import find_triangles, restamped

WINDOW_MS = 60_000  # longer than any test here: no refill happens unless a test forces one


async def _budget_hash(client: aioredis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in (await client.hgetall(keys.RATE_BUDGET)).items()}


async def _server_ms(client: aioredis.Redis) -> int:
    seconds, micros = await client.time()
    return seconds * 1000 + micros // 1000


# --- the scripts -------------------------------------------------------------------------------


async def test_take_spends_the_window_then_refuses_without_taking(redis_client: aioredis.Redis) -> None:
    budget = RateBudget(redis_client, limit=10, window_ms=WINDOW_MS)
    answers = [await take(redis_client, budget, 3) for _ in range(4)]
    assert [a.granted for a in answers] == [True, True, True, False]
    assert [a.remaining for a in answers] == [7, 4, 1, 1]  # the refused take left the 1 there
    assert 0 < answers[-1].reset_ms <= WINDOW_MS
    assert (await take(redis_client, budget, 1)).granted  # a smaller take still fits
    assert (await stored(redis_client, budget)).remaining == 0


async def test_a_spent_window_is_refilled_whole_when_it_ends(redis_client: aioredis.Redis) -> None:
    budget = RateBudget(redis_client, limit=5, window_ms=WINDOW_MS)
    assert (await take(redis_client, budget, 5)).granted
    assert not (await take(redis_client, budget, 1)).granted
    assert budget.exhausted()  # known locally, no Redis call needed for the next refusals
    await redis_client.hset(keys.RATE_BUDGET, "window_end_ms", await _server_ms(redis_client) - 1)
    answer = await take(redis_client, budget, 2)
    assert (answer.granted, answer.remaining) == (True, 3)
    assert WINDOW_MS - 1000 < answer.reset_ms <= WINDOW_MS


async def test_concurrent_takes_from_many_connections_never_exceed_the_limit(redis_url: str) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(4)]
    try:
        budgets = [RateBudget(client, limit=50, window_ms=WINDOW_MS) for client in clients]
        answers = await asyncio.gather(*(take(clients[i % 4], budgets[i % 4], 1) for i in range(200)))
    finally:
        for client in clients:
            await client.aclose()
    assert sum(a.granted for a in answers) == 50


async def test_headers_only_ever_lower_what_is_left_and_cap_the_limit(redis_client: aioredis.Redis) -> None:
    budget = RateBudget(redis_client, limit=100, window_ms=WINDOW_MS)
    first = await take(redis_client, budget, 10)  # our window: 90 left
    # the exchange counts calls from elsewhere too: it has 40 left in the same window
    after = await budget.observe(limit=60, remaining=40, reset_ms=first.reset_ms)
    assert after.remaining == 40
    state = await stored(redis_client, budget)
    assert (state.limit, state.remaining) == (60, 40)
    # a header saying more is left than we know (our reservations not yet at the exchange) changes nothing
    assert (await budget.observe(limit=60, remaining=55, reset_ms=first.reset_ms)).remaining == 40
    # an exchange pool larger than the configured limit does not raise ours
    await redis_client.delete(keys.RATE_BUDGET)
    await budget.observe(limit=4000, remaining=3990, reset_ms=20_000)
    assert (await stored(redis_client, budget)).limit == 100
    assert (await stored(redis_client, budget)).remaining == 100


async def test_the_window_ends_at_the_later_of_ours_and_the_exchanges(redis_client: aioredis.Redis) -> None:
    budget = RateBudget(redis_client, limit=100, window_ms=WINDOW_MS)
    await take(redis_client, budget, 1)
    ours = (await stored(redis_client, budget)).window_end_ms
    later = await budget.observe(limit=100, remaining=99, reset_ms=WINDOW_MS + 5000)
    assert later.reset_ms > WINDOW_MS
    assert (await stored(redis_client, budget)).window_end_ms >= ours + 4000
    # an exchange window ending a little earlier than ours does not shorten ours
    await budget.observe(limit=100, remaining=99, reset_ms=WINDOW_MS - 5000)
    assert (await stored(redis_client, budget)).window_end_ms >= ours + 4000


async def test_a_late_header_from_the_previous_window_is_ignored(redis_client: aioredis.Redis) -> None:
    budget = RateBudget(redis_client, limit=100, window_ms=WINDOW_MS)
    await take(redis_client, budget, 10)
    # an answer sent just before the previous window reset: nothing left, reset in 5 ms
    assert not (await budget.observe(limit=100, remaining=0, reset_ms=5)).granted
    assert (await stored(redis_client, budget)).remaining == 90


async def test_when_our_window_is_over_the_exchanges_current_one_is_adopted(redis_client: aioredis.Redis) -> None:
    budget = RateBudget(redis_client, limit=100, window_ms=WINDOW_MS)
    await take(redis_client, budget, 10)
    await redis_client.hset(keys.RATE_BUDGET, "window_end_ms", await _server_ms(redis_client) - 1)
    answer = await budget.observe(limit=100, remaining=7, reset_ms=2000)
    assert answer.remaining == 7
    assert 1000 < answer.reset_ms <= 2000
    assert not (await take(redis_client, budget, 8)).granted  # not refilled: the exchange's window is still on


# --- the service ---------------------------------------------------------------------------------


async def _small_pool_simulator(spot_limit: int) -> RunningSimulator:
    return await start_simulator(config=SimConfig(spot_limit=spot_limit, rate_window_ms=WINDOW_MS))


def _distinct_triangles(markets: dict) -> list[int]:
    """Indices of triangles with pairwise distinct triangle ids (the reverse direction is the same one)."""
    seen: set[frozenset[str]] = set()
    picked = []
    for index, triangle in enumerate(find_triangles(markets)):
        if frozenset(triangle.pairs) not in seen:
            seen.add(frozenset(triangle.pairs))
            picked.append(index)
    return picked


async def _send_wave(supervisors: list[Supervisor], signals: list[dict]) -> None:
    """Signals spread over the supervisors at once, stamped as sent; returns when all are handled and idle."""
    per: list[list[bytes]] = [[] for _ in supervisors]
    for i, signal in enumerate(signals):
        per[i % len(supervisors)].append(encode_frame(restamped(signal)))
    before = [s.frames for s in supervisors]
    await asyncio.gather(*(send_frames(s.settings.socket_path, frames, progress=False)
                           for s, frames in zip(supervisors, per)))
    for supervisor, frames, start in zip(supervisors, per, before):
        await supervisor.wait_frames(start + len(frames), 10)
    for supervisor in supervisors:
        await supervisor.wait_idle(10)


async def test_two_supervisors_share_one_budget_and_refuse_instead_of_earning_429s(
    redis_url: str, redis_client: aioredis.Redis, workdir: Path
) -> None:
    spot_limit = 30  # ten triangles' worth, for four worker processes on two supervisors
    simulator = await _small_pool_simulator(spot_limit)
    try:
        await Registry(redis_client, owner="test").set_config(slots=50, enforce_pair=False)
        markets = await markets_of(simulator)
        triangles = _distinct_triangles(markets)
        assert len(triangles) >= 5
        common = dict(rate_budget_limit=spot_limit, rate_budget_window_ms=WINDOW_MS)
        one = e2e_settings(redis_url, simulator.url, workdir / "a", **common)
        two = e2e_settings(redis_url, simulator.url, workdir / "b", **common)
        waves, sent = 4, 0
        async with running_supervisor(one) as first, running_supervisor(two) as second:
            for wave in range(waves):
                signals = [fresh_signal(markets, t, f"rb-{wave}-{t}") for t in triangles]
                await _send_wave([first, second], signals)
                sent += len(signals)
            admitted = first.admission.admitted + second.admission.admitted
            refusals = first.admission.refusals + second.admission.refusals
            leases = await first.registry.leases()
        log = simulator.sim.order_log.entries()
    finally:
        await simulator.stop()
    assert admitted == spot_limit // TRIANGLE_WEIGHT
    assert refusals == Counter(rate_budget=sent - admitted)
    assert Counter(e.code for e in log) == Counter({"200000": spot_limit})  # not one 429
    reports = await stream_reports(redis_url)
    assert len(reports) == admitted and all(r.status == "filled" for r in reports)
    assert leases == []  # refused signals gave their lease back
    assert (await _budget_hash(redis_client))["remaining"] == 0


async def test_headers_correct_a_budget_that_does_not_know_about_other_spending(
    redis_url: str, redis_client: aioredis.Redis, workdir: Path
) -> None:
    simulator = await _small_pool_simulator(30)
    try:
        simulator.sim.rate_limiter.charge(SPOT, 24)  # another client of the account: 6 left
        markets = await markets_of(simulator)
        budget = RateBudget(redis_client, limit=4000, window_ms=WINDOW_MS)
        # the default 4000 budget; paper keep-alive pings are order tests that spend this tiny Spot
        # pool too (test_keepalive.py), so they stay out of the way here
        settings = e2e_settings(redis_url, simulator.url, workdir, workers=1, keepalive_s=3600)
        outcomes = []
        async with running_supervisor(settings) as supervisor:
            for i in range(4):
                await _send_wave([supervisor], [fresh_signal(markets, 0, f"ext-{i}")])
                # the worker reports the headers right after its Done: wait for them to land
                async with asyncio.timeout(10):
                    while i < 2 and (await stored(redis_client, budget)).limit != 30:
                        await asyncio.sleep(0.005)
                outcomes.append((supervisor.admission.admitted, dict(supervisor.admission.refusals)))
        log = simulator.sim.order_log.entries()
    finally:
        await simulator.stop()
    assert outcomes == [(1, {}), (2, {}), (2, {"rate_budget": 1}), (2, {"rate_budget": 2})]
    assert Counter(e.code for e in log) == Counter({"200000": 6})
    state = await stored(redis_client, budget)
    assert state.limit == 30 and state.remaining < TRIANGLE_WEIGHT


async def test_a_live_triangle_reserves_what_it_may_spend_not_the_paper_weight(
    redis_url: str, redis_client: aioredis.Redis, simulator: RunningSimulator, workdir: Path
) -> None:
    """Place + query per leg, plus headroom to resolve, retry and unwind: 18, not 3."""
    assert LIVE_TRIANGLE_WEIGHT == 3 * (1 + 2) + 2 + 1 + 2 * (1 + 2)
    markets = await markets_of(simulator)
    triangles = _distinct_triangles(markets)
    settings = e2e_settings(redis_url, simulator.url, workdir, mode="live", workers=1,
                            rate_budget_limit=2 * LIVE_TRIANGLE_WEIGHT + 10, rate_budget_window_ms=WINDOW_MS)
    async with running_supervisor(settings) as supervisor:
        for n, triangle in enumerate(triangles[:3], 1):  # one at a time: the budget is the only refusal
            signal = {**fresh_signal(markets, triangle, f"lb-{n}"), "live": True}
            await send_frames(settings.socket_path, [encode_frame(restamped(signal))], progress=False)
            await supervisor.wait_frames(n, 10)
            await supervisor.wait_idle(10)
        admitted, refusals = supervisor.admission.admitted, dict(supervisor.admission.refusals)
    assert (admitted, refusals) == (2, {"rate_budget": 1})
    assert (await _budget_hash(redis_client))["remaining"] <= 10
