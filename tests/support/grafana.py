"""Grafana's view of Trident's data, for the dashboard tests.

`plugin_frames` runs one Redis-data-source target and builds its data frame the way the plugin's
backend does (grafana-redis-datasource ≥ 1.3, `pkg/redis-hash.go`, `pkg/redis-stream.go`,
`pkg/query.go`): HGETALL is ONE row with a column per hash field; XRANGE/XREVRANGE is `$streamId`,
`$time` (the entry id's milliseconds) and one column per entry field in order of first
appearance, typed float64 when its first value parses as a Go float, and a field an entry lacks
filled with 0 or ""; HLEN, XLEN, GET, … are one `Value`.

`transform` hands panels and frames to Grafana's own transformation code (`@grafana/data`,
installed from the npm registry into the pytest cache on first use) in Node, and returns the
frames each panel would draw.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

__all__ = ["GRAFANA_DATA_VERSION", "Frame", "go_float", "grafana_data_dir", "plugin_frames", "transform"]

# The oldest @grafana/data with every transformation and reducer the dashboards use: the p50/p90/p99
# reducers first ship in 11.1.0 (11.0.0 has none). The README's minimum Grafana is this version.
GRAFANA_DATA_VERSION = "11.1.0"
RUNNER = Path(__file__).with_name("grafana_transform.cjs")

Frame = dict[str, Any]  # {"fields": [{"name", "type": "string"|"number"|"time", "values", "config"?}]}


def go_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64)'s verdict (the plugin's typing rule); Python's float() is laxer."""
    if not text or text != text.strip() or "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float.fromhex(text) if text.lower().lstrip("+-").startswith("0x") and "p" in text.lower() else None
    except ValueError:
        return None


def _s(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(name: str, value: str) -> dict[str, Any]:
    number = go_float(value)
    return {"name": name, "type": "number", "values": [number]} if number is not None \
        else {"name": name, "type": "string", "values": [value]}


def _range_frame(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> Frame:
    """createFrameFromRangeResponse, field for field."""
    ids: list[str] = []
    times: list[int] = []
    columns: dict[str, dict[str, Any]] = {}
    for entry_id, pairs in entries:
        ids.append(_s(entry_id))
        times.append(int(_s(entry_id).split("-")[0]))
        seen = set()
        for raw_name, raw_value in pairs.items():  # redis-py keeps the entry's field order
            name, value = _s(raw_name), _s(raw_value)
            number = go_float(value)
            if name not in columns:
                kind = "number" if number is not None else "string"
                columns[name] = {"name": name, "type": kind, "values": [0.0 if kind == "number" else ""] * (len(ids) - 1)}
            column = columns[name]
            if column["type"] == "number":  # Go appends ParseFloat's result, 0 when it failed
                column["values"].append(number if number is not None else 0.0)
            else:
                column["values"].append(value)
            seen.add(name)
        for name, column in columns.items():
            if name not in seen:
                column["values"].append(0.0 if column["type"] == "number" else "")
    fields = [{"name": "$streamId", "type": "string", "values": ids},
              {"name": "$time", "type": "time", "values": times, "config": {"unit": "µs"}}]
    return {"fields": fields + list(columns.values())}


async def plugin_frames(client: aioredis.Redis, target: dict[str, Any], from_ms: int, to_ms: int) -> list[Frame]:
    """The frames the plugin returns for one target over the dashboard's time range [from, to]."""
    command, key = target["command"], target["keyName"]
    if command in ("xrange", "xrevrange"):
        start, end = target.get("start") or f"{from_ms}-0", target.get("end") or f"{to_ms}-0"
        count = int(target.get("count") or 0) or None
        if command == "xrevrange":  # XREVRANGE key end start [COUNT n]
            entries = await client.xrevrange(key, end, start, count=count)
        else:
            entries = await client.xrange(key, start, end, count=count)
        return [_range_frame(entries)]
    if command == "hgetall":
        return [{"fields": [_field(_s(name), _s(value)) for name, value in (await client.hgetall(key)).items()]}]
    if command == "hget":
        value = await client.hget(key, target["field"])
        return [{"fields": [_field(target["field"], _s(value or b""))]}]
    if command in ("hlen", "xlen", "llen", "scard", "get", "ttl", "type"):
        return [{"fields": [_field("Value", _s(await client.execute_command(command.upper(), key)))]}]
    raise AssertionError(f"the test does not know the plugin's command {command!r}; port its frame builder first")


def grafana_data_dir(cache: Path) -> Path:
    """A directory holding @grafana/data at GRAFANA_DATA_VERSION, installed once with npm."""
    home = cache / f"grafana-data-{GRAFANA_DATA_VERSION}"
    if (home / "node_modules" / "@grafana" / "data" / "package.json").exists():
        return home
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("node is installed but npm is not: install Debian's npm (.ci/run does)")
    home.mkdir(parents=True, exist_ok=True)
    (home / "package.json").write_text('{"private": true}\n')
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", f"@grafana/data@{GRAFANA_DATA_VERSION}"],
                   cwd=home, check=True, timeout=600)
    return home


def _jsonable(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def transform(modules: Path, panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each panel ({title, transformations, frames}) through Grafana's transformDataFrame, in Node."""
    for panel in panels:
        for frame in panel["frames"]:
            for field in frame["fields"]:
                field["values"] = [_jsonable(v) for v in field["values"]]
    request = json.dumps({"modules": str(modules), "panels": panels})
    done = subprocess.run(["node", str(RUNNER)], input=request, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"@grafana/data failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)
