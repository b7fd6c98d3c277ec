"""The Grafana dashboards against data from a real run, through Grafana's own code.

Every Redis panel query is run against a Redis filled by a supervisor, its workers and the
simulator, and framed as the Redis data source plugin's backend frames it (`tests/support/grafana.py`,
a port of the plugin's Go frame builders ≥ 1.3); each panel's transformations then run in Node with
`@grafana/data` at the oldest version the README names, and what the panel would draw is checked:
the fields it needs exist with the type it needs, time series sit at each report's own `ts_ms`,
and the numbers equal what the reports say. Every Prometheus panel query must name metrics,
labels and label values that a real scrape of that supervisor exposes.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shared.codec import encode_frame
from shared.store.rollup import GRACE_MS, MINUTE_MS, RollupWriter
from sim.server import RunningSimulator
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tests.support.grafana import grafana_data_dir, plugin_frames, transform
from tools.send import send_frames
from tools.synthetic import find_triangles, make_signal, restamped

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROMETHEUS_TARGET_LABELS = {"instance", "job"}  # added by Prometheus when it scrapes, not in the exposition
PLOTS_NUMBERS = {"timeseries", "barchart", "piechart", "stat", "bargauge", "gauge"}


@pytest.fixture(scope="session")
def grafana_data(request: pytest.FixtureRequest) -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed, so Grafana's transformations cannot run (.ci/run installs nodejs and npm)")
    return grafana_data_dir(Path(str(request.config.cache.mkdir("grafana"))))


def _columns(frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {field["name"]: field for field in frame["fields"]}


def check_drawn(panel: dict[str, Any], frames: list[dict[str, Any]]) -> None:
    """What any panel of this type needs from its transformed frames."""
    title, kind = panel["title"], panel["type"]
    assert frames, f"{title}: no frame"
    for frame in frames:
        columns = _columns(frame)
        assert columns and all(field["values"] for field in columns.values()), f"{title}: no data {columns}"
        times = [name for name, field in columns.items() if field["type"] == "time"]
        if kind == "timeseries":
            assert len(times) == 1 and times[0] != "$time", f"{title}: plotted at {times}, not at the report's ts_ms"
        if kind == "barchart":
            x_field = panel["options"]["xField"]
            assert columns.get(x_field, {}).get("type") == "string", f"{title}: x field {x_field!r} missing"
            times.append(x_field)
        if kind in PLOTS_NUMBERS:
            for name, field in columns.items():
                if name not in times and not (kind == "piechart" and field["type"] == "string"):
                    assert field["type"] == "number", f"{title}: plots {name!r}, typed {field['type']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def targets(dashboard: dict, datasource_type: str) -> list[tuple[dict, dict]]:
    return [(panel, target) for panel in dashboard["panels"] for target in panel["targets"]
            if target["datasource"]["type"] == datasource_type]


async def test_every_dashboard_query_reads_what_a_real_run_writes(
    redis_url: str, redis_client: aioredis.Redis, simulator: RunningSimulator, grafana_data: Path
) -> None:
    markets = await markets_of(simulator)
    await redis_client.hset("trident:{reg}:config", mapping={"slots": "10", "enforce_pair": "0"})
    settings = e2e_settings(redis_url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-g-")), metrics_port=free_port())
    start_ms = int(time.time() * 1000)
    async with running_supervisor(settings) as supervisor:
        signals_ = [restamped(fresh_signal(markets, index, f"g-{index}")) for index in (0, 8)]
        twin = {**signals_[0], "correlation_id": "g-twin"}  # same triangle while g-0 runs: refused
        busy = [set(find_triangles(markets)[index].pairs) for index in (0, 8)]
        btc = next(t for t in find_triangles(markets, "BTC") if set(t.pairs) not in busy)
        in_btc = make_signal(btc, markets, Decimal("0.002"),
                             correlation_id="g-btc", now_ms=int(time.time() * 1000))
        await send_frames(settings.socket_path, [encode_frame(s) for s in [*signals_, twin, in_btc]], progress=False)
        await supervisor.wait_frames(4, 10)
        await supervisor.wait_idle(10)
        simulator.sim.update_knobs(reject={"next_n": 1, "code": "200004"})
        await send_frames(settings.socket_path, [encode_frame(restamped(fresh_signal(markets, 4, "g-rej")))],
                          progress=False)
        await supervisor.wait_frames(5, 10)
        await supervisor.wait_idle(10)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{supervisor.metrics_address}/metrics") as response:
                exposition = await response.text()
    # the stop published the last refusals; the run left filled and failed reports in two quotes
    reports = await stream_reports(redis_url)
    assert {r.status for r in reports} == {"filled", "failed"}
    assert {r.primary_quote for r in reports} == {"USDT", "BTC"}
    refusals = {k.decode(): float(v) for k, v in (await redis_client.hgetall("trident:refusals")).items()}
    assert refusals["triangle_busy"] == 1

    # the fleet's roll-up writer, made to roll the current minute too
    await RollupWriter(redis_client, "test").roll(now_ms=int(time.time() * 1000) + MINUTE_MS + GRACE_MS)
    now_ms = int(time.time() * 1000)
    panels = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            redis_targets = [t for t in panel["targets"] if t["datasource"]["type"] == "redis-datasource"]
            if redis_targets:
                frames = [f for t in redis_targets for f in await plugin_frames(redis_client, t, now_ms - 3_600_000, now_ms)]
                panels.append({"title": panel["title"], "transformations": panel.get("transformations", []),
                               "frames": frames, "panel": panel})
    drawn = transform(grafana_data, [{k: v for k, v in p.items() if k != "panel"} for p in panels])
    by_title: dict[str, list[dict[str, Any]]] = {}
    for spec, result in zip(panels, drawn, strict=True):
        assert "error" not in result, f"{spec['title']}: {result.get('error')}"
        check_drawn(spec["panel"], result["frames"])
        by_title[spec["title"].split(" (")[0]] = result["frames"]
    assert len(drawn) >= 12

    # what the panels show is what the reports say
    status = _columns(by_title["Executions by status"][0])
    assert dict(zip(status["status"]["values"], status["correlation_id (count)"]["values"])) == Counter(
        str(r.status) for r in reports)
    reasons = _columns(by_title["Refusals by reason"][0])
    assert dict(zip(reasons["Field"]["values"], next(f for n, f in reasons.items() if n != "Field")["values"])) == refusals
    profit = _columns(by_title["Profit per primary quote"][0])
    per_quote = {quote: profit["profit (sum)"]["values"][i] for i, quote in enumerate(profit["primary_quote"]["values"])}
    assert per_quote.keys() == {"USDT", "BTC"}
    for quote, shown in per_quote.items():
        assert shown == pytest.approx(float(sum(r.profit for r in reports if r.primary_quote == quote)), abs=1e-9)
    filled_ts = sorted(r.ts_ms for r in reports if r.status == "filled")
    for title in ("Predicted vs effective bps", "Latency over time"):
        times = next(f for f in by_title[title][0]["fields"] if f["type"] == "time")["values"]
        assert sorted(times) == filled_ts and start_ms <= filled_ts[0], title
    per_minute = _columns(by_title["Executions per minute by status"][0])
    assert sum(sum(f["values"]) for name, f in per_minute.items() if f["type"] == "number") == len(reports)
    minute_profit = _columns(by_title["Profit per minute per primary quote"][0])
    assert {name for name in minute_profit if minute_profit[name]["type"] == "number"} == {"profit_USDT", "profit_BTC"}
    for quote, shown in per_quote.items():
        assert sum(minute_profit[f"profit_{quote}"]["values"]) == pytest.approx(shown, abs=1e-9)
    percentiles = _columns(by_title["Latency percentiles, filled executions"][0])
    assert set(percentiles["Field"]["values"]) >= {"first_order_ms", "total_ms"}
    assert {"50th %", "90th %", "99th %", "Max"} <= percentiles.keys()
    assert all(v > 0 for v in percentiles["99th %"]["values"])

    families = list(text_string_to_metric_families(exposition))
    labels: dict[str, set[str]] = {}
    values: dict[str, set[str]] = {}
    for family in families:
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
            for name, value in sample.labels.items():
                values.setdefault(name, set()).add(value)
    checked = 0
    for path in DASHBOARDS:
        for panel, target in targets(json.loads(path.read_text()), "prometheus"):
            expr = target["expr"]
            metrics = set(re.findall(r"\btrident_\w+", expr))
            assert metrics and metrics <= set(labels), f"{panel['title']}: unknown {metrics - set(labels)}"
            available = set().union(*(labels[m] for m in metrics)) | PROMETHEUS_TARGET_LABELS
            for group in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr):
                used = {name.strip() for name in group.split(",")}
                assert used <= available, f"{panel['title']}: labels {used - available} not exposed"
            for name, value in re.findall(r'(\w+)="([^"]*)"', expr):
                assert value in values.get(name, set()), f"{panel['title']}: no sample has {name}={value}"
            checked += 1
    assert checked >= 10


def test_provisioning_points_grafana_at_the_dashboards_and_their_data_sources() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "trident.yaml").read_text())
    by_uid = {source["uid"]: source for source in sources["datasources"]}
    assert by_uid["trident-redis"]["type"] == "redis-datasource"
    assert by_uid["trident-redis"]["url"].startswith("redis://")
    assert by_uid["trident-prometheus"]["type"] == "prometheus"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "trident.yaml").read_text())["providers"]
    assert [p["type"] for p in providers] == ["file"] and providers[0]["options"]["path"]
    assert {path.stem for path in DASHBOARDS} == {"trident-reports", "trident-service"}
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
            assert {t["datasource"]["uid"] for t in panel["targets"]} <= set(by_uid), panel["title"]
            assert all(t["datasource"]["type"] == by_uid[t["datasource"]["uid"]]["type"] for t in panel["targets"])
    assert len(uids) == len(DASHBOARDS)
