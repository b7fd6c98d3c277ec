"""`trident ctl config --effective`: every process setting in force and where it came from.

The same resolution `trident run` does (defaults < TOML file < environment < flags) for the
environment ctl runs in, plus the fleet's registry settings from Redis. Secrets are masked: the
API secret and passphrase are never printed, the key only as its first 4 characters, and the
Redis URL without its password.
"""

from __future__ import annotations

import json
from dataclasses import fields

from shared.settings import Settings, setting_sources
from supervisor.redis_watch import safe_url

__all__ = ["effective"]


def _shown(settings: Settings, name: str) -> str:
    if name == "credentials":
        creds = settings.credentials
        return f"api_key {creds.api_key[:4]}… (secret and passphrase ***), key version {creds.key_version}" \
            if creds else "(none)"
    value = getattr(settings, name)
    if name == "redis_url":
        return safe_url(value)
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(any)"
    return "(none)" if value is None else str(value)


def effective(settings: Settings, config_file: str | None, flags: dict[str, object], registry_line: str,
              *, as_json: bool = False) -> str:
    sources = setting_sources(config_file=config_file, **flags)
    rows = [(f.name, _shown(settings, f.name), sources.get(f.name, "default")) for f in fields(Settings)]
    if as_json:
        return json.dumps({"settings": {n: {"value": v, "source": s} for n, v, s in rows},
                           "registry": registry_line}, indent=2)
    width = max(len(name) for name, _, _ in rows)
    value_width = min(60, max(len(value) for _, value, _ in rows))
    lines = [f"{name:<{width}}  {value:<{value_width}}  {source}" for name, value, source in rows]
    return "\n".join(["settings (this environment; `trident run` resolves them the same way):", *lines,
                      "", f"registry (Redis, fleet-wide): {registry_line}"])
