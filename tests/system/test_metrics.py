"""The Prometheus endpoint: scraped over HTTP from a running supervisor and parsed, checked against the reports."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.channel import Done, decode_message
from shared.codec import encode_frame
from shared.kucoin.errors import TransportError, error_from_response
from shared.settings import SettingsError, load_settings
from sim.server import RunningSimulator
from supervisor.metrics import SupervisorMetrics
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tools.send import send_frames
from tools.synthetic import restamped
from worker.context import exchange_error_code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by (sample name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(address: str) -> tuple[str, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}/metrics") as response:
        assert response.status == 200
        return response.headers["Content-Type"], await response.text()


async def test_scrape_counts_every_outcome_and_refusal_with_latency_histograms(
    redis_url: str, simulator: RunningSimulator
) -> None:
    markets = await markets_of(simulator)
    port = free_port()
    settings = e2e_settings(redis_url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-m-")), metrics_port=port)
    good = [restamped(fresh_signal(markets, index, f"m-{index}")) for index in (0, 8)]
    broken = {**good[0], "correlation_id": "m-bad", "primary_quote": "BTC"}
    async with running_supervisor(settings) as supervisor:
        assert supervisor.metrics_address == f"127.0.0.1:{port}"
        await send_frames(settings.socket_path, [encode_frame(s) for s in [*good, broken]], progress=False)
        await supervisor.wait_frames(3, 10)
        await supervisor.wait_idle(10)
        simulator.sim.update_knobs(reject={"next_n": 1, "code": "200004"})  # one leg refused by the exchange
        rejected = restamped(fresh_signal(markets, 4, "m-rejected"))
        await send_frames(settings.socket_path, [encode_frame(rejected)], progress=False)
        await supervisor.wait_frames(4, 10)
        await supervisor.wait_idle(10)
        content_type, text = await scrape(supervisor.metrics_address)
    reports = {r.correlation_id: r for r in await stream_reports(redis_url)}
    assert {cid: r.status for cid, r in reports.items()} == {"m-0": "filled", "m-8": "filled", "m-rejected": "failed"}

    assert content_type.startswith("text/plain")
    got = samples(text)
    assert got[("trident_signals_admitted_total", ())] == 3
    assert got[("trident_signals_refused_total", (("reason", "broken_chain"),))] == 1
    assert got[("trident_signals_refused_total", (("reason", "no_slot"),))] == 0  # known reasons start at 0
    assert got[("trident_executions_total", (("status", "filled"),))] == 2
    assert got[("trident_executions_total", (("status", "failed"),))] == 1
    assert got[("trident_executions_total", (("status", "lost"),))] == 0
    assert got[("trident_in_flight", ())] == 0
    assert got[("trident_workers_alive", ())] == 2
    assert got[("trident_exchange_errors_total", (("code", "200004"),))] == 1
    # histograms: one observation per execution that fired orders, equal to the reports' own timings
    fired = [r for r in reports.values() if r.first_order_ms > 0]
    assert len(fired) == 3
    assert got[("trident_signal_to_first_order_seconds_count", ())] == 3
    assert got[("trident_signal_to_first_order_seconds_sum", ())] == pytest.approx(
        sum(r.first_order_ms for r in fired) / 1000)
    filled = [r for r in reports.values() if r.status == "filled"]
    assert got[("trident_execution_seconds_count", (("status", "filled"),))] == 2
    assert got[("trident_execution_seconds_sum", (("status", "filled"),))] == pytest.approx(
        sum(r.total_ms for r in filled) / 1000)
    for leg in range(3):
        assert got[("trident_leg_latency_seconds_count", (("leg", str(leg)),))] == 2
        assert got[("trident_leg_latency_seconds_sum", (("leg", str(leg)),))] == pytest.approx(
            sum(r.fills[leg].latency_ms for r in filled) / 1000)
    assert got[("trident_leg_latency_seconds_bucket", (("le", "+Inf"), ("leg", "0")))] == 2
    # money per quote, so PnL needs no stream reads: profit = returned − spent, fees by currency
    assert got[("trident_spent_total", (("quote", "USDT"),))] == pytest.approx(float(sum(r.spent for r in reports.values())))
    assert got[("trident_returned_total", (("quote", "USDT"),))] == pytest.approx(
        float(sum(r.returned for r in reports.values())))
    fees: dict[str, float] = {}
    for report in reports.values():
        for fill in report.fills:
            fees[fill.fee_currency] = fees.get(fill.fee_currency, 0.0) + float(fill.fee)
    assert fees and {currency: got[("trident_fees_total", (("currency", currency),))] for currency in fees} == \
        pytest.approx(fees)
    assert got[("trident_redis_reachable", ())] == 1
    assert got[("trident_paused", ())] == 0 and got[("trident_halted", ())] == 0
    assert 0 < got[("trident_rate_budget_remaining", ())] <= settings.rate_budget_limit


async def test_port_zero_disables_and_a_taken_port_does_not_stop_the_service(
    redis_url: str, simulator: RunningSimulator
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tri-m-"))
    async with running_supervisor(e2e_settings(redis_url, simulator.url, workdir, workers=1, metrics_port=0)) as sup:
        assert sup.metrics_server is None and sup.status()["metrics"] == "off"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = e2e_settings(redis_url, simulator.url, workdir, workers=1, metrics_port=port)
        async with running_supervisor(settings) as sup:
            assert sup.status()["metrics"].startswith(f"unavailable (127.0.0.1:{port}")
            assert sup.pool.alive == 1  # still serving


def test_metrics_port_setting() -> None:
    assert load_settings(env={}).metrics_port == 9464
    assert load_settings(env={}).metrics_host == "127.0.0.1"
    assert load_settings(env={"TRIDENT_METRICS_PORT": "0"}).metrics_port == 0
    for bad in ("-1", "65536", "http"):
        with pytest.raises(SettingsError, match="metrics_port"):
            load_settings(env={"TRIDENT_METRICS_PORT": bad})


def test_done_carries_timings_and_still_decodes_the_short_form() -> None:
    done = Done("c-1", "failed", 1_700_000_000_000, 0.41, 12.5, 3.25, 0.0, 0.0, "200004")
    assert decode_message(done.to_wire()) == done
    assert decode_message([2, "c-1", "filled", 5]) == Done("c-1", "filled", 5)  # an older worker's message


def test_zero_timings_are_not_observed() -> None:
    metrics = SupervisorMetrics(lambda: {})
    metrics.observe(Done("c-1", "aborted", 1))  # cancelled before any order: nothing to time
    metrics.observe(Done("c-2", "filled", 2, 0.5, 20.0, 4.0, 5.0, 6.0))
    got = samples(metrics.render().decode())
    assert got[("trident_signal_to_first_order_seconds_count", ())] == 1
    assert got[("trident_signal_to_first_order_seconds_sum", ())] == pytest.approx(0.0005)
    assert ("trident_execution_seconds_count", (("status", "aborted"),)) not in got
    assert got[("trident_leg_latency_seconds_sum", (("leg", "2"),))] == pytest.approx(0.006)
    assert not any(name == "trident_exchange_errors_total" for name, _ in got)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (error_from_response(200, {"code": "200004", "msg": "Insufficient balance."}, {}), "200004"),
        (error_from_response(429, {"code": "429000", "msg": "Too Many Requests"}, {}), "429000"),
        (error_from_response(502, b"<html>bad gateway</html>", {}), "http_502"),
        (TransportError("", "Cannot connect to host"), "transport"),
        (ValueError("a bug, not the exchange"), ""),
    ],
)
def test_exchange_error_code_comes_from_the_exchange_error(error: Exception, code: str) -> None:
    assert exchange_error_code(error) == code
