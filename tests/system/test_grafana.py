"""The Grafana dashboards against data from a real run.

Every Redis panel query is run as the Redis data source plugin runs it (same command, same
arguments, same column typing: a column is a number when its first value parses as one) against
a Redis filled by a supervisor, its workers and the simulator; each field a panel's
transformations use must exist with the type the panel needs. Every Prometheus panel query must
name metrics, labels and label values that a real scrape of that supervisor exposes.
"""

from __future__ import annotations

import json
import re
import socket
import tempfile
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shared.codec import encode_frame
from sim.server import RunningSimulator
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tools.send import send_frames
from tools.synthetic import restamped

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
NUMERIC_PANELS = {"timeseries", "stat", "bargauge", "gauge", "histogram", "barchart"}
PROMETHEUS_TARGET_LABELS = {"instance", "job"}  # added by Prometheus when it scrapes, not in the exposition

Frame = dict[str, tuple[str, list[object]]]  # field name -> (type, values)


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat's verdict (the plugin's typing rule); Python's float() is laxer."""
    if text != text.strip() or "_" in text or not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def run_redis_target(client: aioredis.Redis, target: dict, from_ms: int, to_ms: int) -> Frame:
    """One target, executed and framed as the plugin's backend does it."""
    command, key = target["command"], target["keyName"]
    if command in ("xrange", "xrevrange"):
        start, end = target.get("start") or f"{from_ms}-0", target.get("end") or f"{to_ms}-0"
        count = target.get("count") or None
        if command == "xrevrange":  # XREVRANGE key end start [COUNT n]
            entries = await client.xrevrange(key, end, start, count=count)
        else:
            entries = await client.xrange(key, start, end, count=count)
        frame: Frame = {"$streamId": ("string", []), "$time": ("time", [])}
        for entry_id, pairs in entries:  # redis-py keeps the entry's field order
            frame["$streamId"][1].append(_s(entry_id))
            frame["$time"][1].append(int(_s(entry_id).split("-")[0]))
            for name, value in pairs.items():
                name, value = _s(name), _s(value)
                if name not in frame:  # typed by the first value seen, as the plugin does
                    frame[name] = ("number" if _go_float(value) is not None else "string", [])
                frame[name][1].append(value)
        return frame
    if command == "hgetall":
        raw = await client.hgetall(key)
        return {"Field": ("string", [_s(k) for k in raw]), "Value": ("string", [_s(v) for v in raw.values()])}
    if command in ("hlen", "xlen", "llen", "scard", "get", "ttl", "type"):
        value = _s(str(await client.execute_command(command.upper(), key)))
        return {"Value": ("number" if _go_float(value) is not None else "string", [value])}
    raise AssertionError(f"the test does not know the plugin's command {command!r}; add it here first")


def check_panel(panel: dict, frame: Frame) -> None:
    """Walk the transformations; every field used must exist (and have the type its use needs)."""
    title = panel["title"]
    fields = dict(frame)
    text_roles: set[str] = set()
    converted: set[str] = set()
    grouped = False

    def need(name: str, kind: str | None = None) -> None:
        assert name in fields, f"{title}: field {name!r} missing (has {sorted(fields)})"
        if kind is not None:
            assert fields[name][0] == kind, f"{title}: field {name!r} is {fields[name][0]}, needs {kind}"

    for step in panel.get("transformations", []):
        kind, options = step["id"], step["options"]
        if kind == "filterFieldsByName":
            for name in options["include"]["names"]:
                need(name)
            fields = {name: fields[name] for name in options["include"]["names"]}
        elif kind == "filterByValue":
            for rule in options["filters"]:
                need(rule["fieldName"], "string")
                wanted = rule["config"]["options"]["value"]
                assert wanted in fields[rule["fieldName"]][1], f"{title}: no row has {rule['fieldName']}={wanted}"
                text_roles.add(rule["fieldName"])
        elif kind == "groupBy":
            for name, spec in options["fields"].items():
                need(name, "string" if spec["operation"] == "groupby" else None)
            grouped = True
        elif kind == "partitionByValues":
            for name in options["fields"]:
                need(name, "string")
                text_roles.add(name)
        elif kind == "sortBy":
            for rule in options["sort"]:
                need(rule["field"])
        elif kind == "calculateField":
            if options["mode"] == "cumulativeFunctions":
                need(options["cumulative"]["field"], "number")
            else:
                need(options["binary"]["left"], "number")
                need(options["binary"]["right"], "number")
        elif kind == "convertFieldType":
            for rule in options["conversions"]:
                need(rule["targetField"])
                if rule["destinationType"] == "number":
                    values = fields[rule["targetField"]][1]
                    assert all(_go_float(str(v)) is not None for v in values), f"{title}: {values} not numbers"
                    converted.add(rule["targetField"])
        elif kind == "reduce":
            for name, (field_type, _) in fields.items():
                assert field_type in ("number", "time") or name in text_roles, f"{title}: reduces text {name!r}"
        else:
            raise AssertionError(f"{title}: the test does not check transformation {kind!r}; add it here first")
    if panel["type"] == "barchart":
        need(panel["options"]["xField"], "string")
        text_roles.add(panel["options"]["xField"])
    if panel["type"] in NUMERIC_PANELS and not grouped:
        for name, (field_type, _) in fields.items():
            if name in ("$time", "$streamId") or name in text_roles or name in converted:
                continue
            assert field_type == "number", f"{title}: plots {name!r}, typed {field_type}"
    assert all(values for _, values in fields.values()), f"{title}: no data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def targets(dashboard: dict, datasource_type: str) -> list[tuple[dict, dict]]:
    return [(panel, target) for panel in dashboard["panels"] for target in panel["targets"]
            if target["datasource"]["type"] == datasource_type]


async def test_every_dashboard_query_reads_what_a_real_run_writes(
    redis_url: str, redis_client: aioredis.Redis, simulator: RunningSimulator
) -> None:
    markets = await markets_of(simulator)
    await redis_client.hset("trident:{reg}:config", mapping={"slots": "10", "enforce_pair": "0"})
    settings = e2e_settings(redis_url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-g-")), metrics_port=free_port())
    async with running_supervisor(settings) as supervisor:
        signals_ = [restamped(fresh_signal(markets, index, f"g-{index}")) for index in (0, 8)]
        twin = {**signals_[0], "correlation_id": "g-twin"}  # same triangle while g-0 runs: refused
        await send_frames(settings.socket_path, [encode_frame(s) for s in [*signals_, twin]], progress=False)
        await supervisor.wait_frames(3, 10)
        await supervisor.wait_idle(10)
        simulator.sim.update_knobs(reject={"next_n": 1, "code": "200004"})
        await send_frames(settings.socket_path, [encode_frame(restamped(fresh_signal(markets, 4, "g-rej")))],
                          progress=False)
        await supervisor.wait_frames(4, 10)
        await supervisor.wait_idle(10)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{supervisor.metrics_address}/metrics") as response:
                exposition = await response.text()
    # the stop published the last refusals; the run left filled and failed reports
    assert {r.status for r in await stream_reports(redis_url)} == {"filled", "failed"}
    assert await redis_client.hget("trident:refusals", "triangle_busy") == b"1"

    now_ms = int(time.time() * 1000)
    checked = 0
    for path in DASHBOARDS:
        for panel, target in targets(json.loads(path.read_text()), "redis-datasource"):
            frame = await run_redis_target(redis_client, target, now_ms - 3_600_000, now_ms + 60_000)
            check_panel(panel, frame)
            checked += 1
    assert checked >= 8

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
