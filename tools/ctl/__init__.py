"""`trident ctl`: the operator cheat-sheet's redis-cli commands, with friendlier output.

Every command here writes or reads the same Redis state as its redis-cli equivalent in the
README (nothing is sent to a supervisor directly), so both ways can be mixed freely and both
act on the whole fleet. Exit codes: 0 done, 1 the command ran but the answer is "no" (a failed
`check`, a cancel whose execution is not in flight), 2 a usage or connection error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.codec import as_text
from shared.settings import Settings, SettingsError, load_settings
from shared.store import keys
from shared.store.connect import connect
from shared.store.fleet import FleetMember, fleet_problems, read_fleet
from shared.store.registry import Registry, RegistryConfig
from tools.ctl.balances import BalanceError, balances
from tools.ctl.effective import effective
from tools.ctl.pnl import GROUPINGS, pnl
from tools.ctl.why import NotFound, why

__all__ = ["main"]

_POLL_S = 0.05  # how often a waiting command looks again; it waits on other processes' writes


class _No(Exception):
    """The command worked but the answer is negative: print it, exit 1."""



def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("expected on or off")
    return value == "on"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in (headers, *rows))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


async def _config_line(client: aioredis.Redis) -> str:
    config: RegistryConfig = await Registry(client, owner="ctl").config()
    halted = (await client.hget(keys.CONFIG, "halt")) not in (None, b"0", b"")
    caps = " ".join(f"{quote}={cap}" for quote, cap in sorted(config.caps.items())) or "none"
    return (f"paused={'yes' if config.paused else 'no'} halted={'yes' if halted else 'no'} slots={config.slots} "
            f"same-quote={'on' if config.enforce_same_quote else 'off'} "
            f"pair-isolation={'on' if config.enforce_pair else 'off'} caps: {caps}")


def _counters(status: dict[str, str], prefix: str) -> str:
    items = sorted((name[len(prefix):], count) for name, count in status.items() if name.startswith(prefix))
    return " ".join(f"{name}={count}" for name, count in items) or "-"


def _describe(members: list[FleetMember]) -> str:
    rows = [
        [m.name, m.status.get("mode", "?"), f"{m.status.get('workers_alive', '?')}/{m.status.get('workers', '?')}",
         m.status.get("in_flight", "?"), m.status.get("admitted", "?"),
         _duration(float(m.status.get("uptime_s", "0"))), m.status.get("version", "?"), m.status.get("metrics", "?")]
        for m in members
    ]
    lines = [_table(["SUPERVISOR", "MODE", "WORKERS", "IN-FLIGHT", "ADMITTED", "UPTIME", "VERSION", "METRICS"], rows)]
    for member in members:
        lines.append(f"{member.name}")
        lines.append(f"  refused:  {_counters(member.status, 'refused:')}")
        lines.append(f"  outcomes: {_counters(member.status, 'outcome:')}")
        for index, line in sorted(member.workers.items()):
            lines.append(f"  w{index}: {line if line is not None else '(no health key: dead or hung)'}")
    return "\n".join(lines)


async def _status(client: aioredis.Redis, args: argparse.Namespace) -> str:
    members = await read_fleet(client)
    in_flight = await client.hlen(keys.LEASE_DATA)
    if args.json:
        return json.dumps({
            "config": await _config_line(client), "in_flight": in_flight,
            "supervisors": [{"name": m.name, "status": m.status, "workers": m.workers} for m in members],
        }, indent=2, sort_keys=True)
    head = (f"fleet: {len(members)} supervisor(s), {in_flight} execution(s) in flight\n"
            f"config: {await _config_line(client)}")
    return head + ("\n\n" + _describe(members) if members else "\n(no live supervisor)")


async def _check(client: aioredis.Redis, args: argparse.Namespace) -> str:
    members = await read_fleet(client)
    problems = fleet_problems(members, min_supervisors=args.min_supervisors, host=args.host)
    if problems:
        raise _No("CRITICAL: " + "; ".join(problems))
    workers = sum(len(m.workers) for m in members if args.host is None or m.host == args.host)
    return f"OK: {len(members)} supervisor(s), {workers} worker(s) alive"


async def _set_flags(client: aioredis.Redis, **flags: str) -> str:
    await client.hset(keys.CONFIG, mapping=flags)
    return await _config_line(client)


async def _pause(client: aioredis.Redis, args: argparse.Namespace) -> str:
    return await _set_flags(client, paused="1")


async def _resume(client: aioredis.Redis, args: argparse.Namespace) -> str:
    return await _set_flags(client, paused="0", halt="0")


async def _halt(client: aioredis.Redis, args: argparse.Namespace) -> str:
    line = await _set_flags(client, paused="1", halt="1")
    deadline = time.monotonic() + args.wait
    while (left := await client.hlen(keys.LEASE_DATA)) and time.monotonic() < deadline:
        await asyncio.sleep(_POLL_S)
    if left:
        raise _No(f"{line}\nhalt requested; {left} execution(s) still in flight after {args.wait:g}s")
    return f"{line}\nhalted: nothing in flight"


async def _registry_set(client: aioredis.Redis, **fields: object) -> str:
    await Registry(client, owner="ctl").set_config(**fields)
    return await _config_line(client)


async def _slots(client: aioredis.Redis, args: argparse.Namespace) -> str:
    return await _registry_set(client, slots=args.count)


async def _same_quote(client: aioredis.Redis, args: argparse.Namespace) -> str:
    return await _registry_set(client, enforce_same_quote=args.state)


async def _pair_isolation(client: aioredis.Redis, args: argparse.Namespace) -> str:
    return await _registry_set(client, enforce_pair=args.state)


async def _cap(client: aioredis.Redis, args: argparse.Namespace) -> str:
    if args.amount == "none":
        return await _registry_set(client, caps={args.quote: None})
    try:
        amount = Decimal(args.amount)
    except InvalidOperation:
        raise ValueError(f"cap must be a decimal amount or 'none', got {args.amount!r}") from None
    return await _registry_set(client, caps={args.quote: amount})


async def _find_report(client: aioredis.Redis, stream: str, cid: str, since_ms: int = 0) -> dict[str, str] | None:
    """The newest report of `cid` added at or after `since_ms` (an id reused across runs has older ones)."""
    for _, fields in await client.xrevrange(stream, "+", f"{since_ms}-0" if since_ms else "-", count=500):
        entry = {as_text(k): as_text(v) for k, v in fields.items()}
        if entry.get("correlation_id") == cid:
            return entry
    return None


async def _cancel(client: aioredis.Redis, args: argparse.Namespace) -> str:
    cid = args.correlation_id
    if not await client.hexists(keys.LEASE_DATA, cid):
        raise _No(f"{cid} is not in flight (finished already, or never admitted)")
    seconds, micros = await client.time()
    requested_ms = int(seconds) * 1000 + int(micros) // 1000  # stream ids use the Redis clock too
    await client.hset(keys.CANCEL, cid, "1")
    deadline = time.monotonic() + args.wait
    while await client.hexists(keys.CANCEL, cid):
        if time.monotonic() >= deadline:
            raise _No(f"cancel of {cid} requested; no supervisor picked it up within {args.wait:g}s")
        await asyncio.sleep(_POLL_S)
    while ((report := await _find_report(client, args.report_stream, cid, requested_ms)) is None
           and time.monotonic() < deadline):
        await asyncio.sleep(_POLL_S)
    if report is None:
        return f"cancel of {cid} delivered to its worker; no report yet"
    error = f" ({report['error']})" if report.get("error") else ""
    return f"cancel of {cid} delivered; it ended {report.get('status')}{error}"


async def _inflight(client: aioredis.Redis, args: argparse.Namespace) -> str:
    leases = await Registry(client, owner="ctl").leases()
    seconds, micros = await client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    rows = [[lease.lease_id, lease.owner, lease.triangle_id, lease.quote, str(lease.notional),
             f"{(now_ms - lease.started_ms) / 1000:.1f}s", f"{(lease.expires_ms - now_ms) / 1000:.1f}s"]
            for lease in sorted(leases, key=lambda lease: lease.started_ms)]
    if not rows:
        return "nothing in flight"
    return _table(["CORRELATION ID", "SUPERVISOR", "TRIANGLE", "QUOTE", "NOTIONAL", "AGE", "EXPIRES IN"], rows)


async def _reports(client: aioredis.Redis, args: argparse.Namespace) -> str:
    rows = []
    for _, raw in await client.xrevrange(args.report_stream, "+", "-", count=args.count):
        entry = {as_text(k): as_text(v) for k, v in raw.items()}
        when = datetime.fromtimestamp(int(entry.get("ts_ms", "0")) / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
        rows.append([when, entry.get("correlation_id", ""), entry.get("status", ""), entry.get("triangle", ""),
                     entry.get("profit", ""), entry.get("effective_bps", ""), entry.get("total_ms", ""),
                     entry.get("error", "")[:60]])
    if not rows:
        return "no reports yet"
    return _table(["TIME (UTC)", "CORRELATION ID", "STATUS", "TRIANGLE", "PROFIT", "EFF BPS", "TOTAL MS", "ERROR"],
                  rows)


async def _config(client: aioredis.Redis, args: argparse.Namespace) -> str:
    if not args.effective:
        return await _config_line(client)
    try:
        registry = await _config_line(client)
    except (RedisError, OSError) as exc:  # the process settings are worth seeing without Redis too
        registry = f"(Redis unreachable: {exc})"
    return effective(args.settings, args.config, {"redis_url": args.redis_url}, registry, as_json=args.json)


async def _why(client: aioredis.Redis, args: argparse.Namespace) -> str:
    try:
        return await why(client, args.report_stream, args.correlation_id, as_json=args.json)
    except NotFound as exc:
        raise _No(str(exc)) from None


async def _balances(client: aioredis.Redis, args: argparse.Namespace) -> str:
    try:
        return await balances(client, args.settings, as_json=args.json)
    except BalanceError as exc:
        raise ValueError(str(exc)) from None


async def _pnl(client: aioredis.Redis, args: argparse.Namespace) -> str:
    return await pnl(client, args.report_stream, since=args.since, by=args.by, as_json=args.json)


def _add_globals(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--redis-url", default=default,
                        help="default: TRIDENT_REDIS_URL, the --config file, or redis://127.0.0.1:6379/0")
    parser.add_argument("--config", default=default,
                        help="TOML settings file (also TRIDENT_CONFIG), for its redis_url and report_stream")


class _SubParser(argparse.ArgumentParser):
    """A subcommand's parser: it also takes the global options, so they may follow the subcommand."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        _add_globals(self, argparse.SUPPRESS)  # SUPPRESS: absent here leaves the top-level value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trident ctl", description=__doc__.splitlines()[0])
    _add_globals(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_SubParser)
    status = sub.add_parser("status", help="every live supervisor, its workers and counters, and the config")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)
    check = sub.add_parser("check", help="exit 0 if the fleet is healthy, 1 otherwise (for monitoring)")
    check.add_argument("--min-supervisors", type=int, default=1)
    check.add_argument("--host", help="only this host's supervisors (as its status hash names it)")
    check.set_defaults(func=_check)
    sub.add_parser("pause", help="admit nothing, fleet-wide; running executions finish").set_defaults(func=_pause)
    sub.add_parser("resume", help="admit again (also ends a halt)").set_defaults(func=_resume)
    halt = sub.add_parser("halt", help="cancel everything in flight, fleet-wide, and stay paused")
    halt.add_argument("--wait", type=float, default=10.0, help="seconds to wait for in-flight to drain")
    halt.set_defaults(func=_halt)
    slots = sub.add_parser("slots", help="most executions in flight at once, fleet-wide")
    slots.add_argument("count", type=int)
    slots.set_defaults(func=_slots)
    same_quote = sub.add_parser("same-quote", help="on: one execution per primary quote at a time")
    same_quote.add_argument("state", type=_on_off)
    same_quote.set_defaults(func=_same_quote)
    pair = sub.add_parser("pair-isolation", help="on: a pair symbol in at most one execution at a time")
    pair.add_argument("state", type=_on_off)
    pair.set_defaults(func=_pair_isolation)
    cap = sub.add_parser("cap", help="most notional in flight in one quote currency ('none' removes it)")
    cap.add_argument("quote", type=str.upper, help="quote currency (upper-cased, as signals spell it)")
    cap.add_argument("amount")
    cap.set_defaults(func=_cap)
    cancel = sub.add_parser("cancel", help="cancel one execution by correlation id")
    cancel.add_argument("correlation_id")
    cancel.add_argument("--wait", type=float, default=5.0, help="seconds to wait for delivery and the report")
    cancel.set_defaults(func=_cancel)
    sub.add_parser("inflight", help="executions holding a lease, fleet-wide").set_defaults(func=_inflight)
    reports = sub.add_parser("reports", help="most recent execution reports")
    reports.add_argument("-n", "--count", type=int, default=10)
    reports.set_defaults(func=_reports)
    config = sub.add_parser("config", help="the registry settings in force (--effective: every setting and its source)")
    config.add_argument("--effective", action="store_true",
                        help="also every process setting, where it came from (default, file, environment, flag)")
    config.add_argument("--json", action="store_true")
    config.set_defaults(func=_config)
    why_ = sub.add_parser("why", help="what became of one signal: in flight, its report, or its refusal")
    why_.add_argument("correlation_id")
    why_.add_argument("--json", action="store_true")
    why_.set_defaults(func=_why)
    pnl_ = sub.add_parser("pnl", help="profit and loss from the report stream, per currency")
    pnl_.add_argument("--since", default="24h", help="how far back: 90s, 30m, 24h, 7d (default 24h)")
    pnl_.add_argument("--by", choices=GROUPINGS, default="quote")
    pnl_.add_argument("--json", action="store_true")
    pnl_.set_defaults(func=_pnl)
    balances_ = sub.add_parser("balances", help="live: the account's trade balances and stranded inventory")
    balances_.add_argument("--json", action="store_true")
    balances_.set_defaults(func=_balances)
    return parser


async def _run(args: argparse.Namespace, settings: Settings) -> str:
    client = connect(settings, "tool")
    try:
        return await args.func(client, args)
    finally:
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(config_file=args.config, redis_url=args.redis_url)
        args.report_stream = settings.report_stream  # `reports`, `cancel`, `why`, `pnl` read the configured stream
        args.settings = settings
        output = asyncio.run(_run(args, settings))
    except _No as answer:
        print(answer)
        return 1
    except (RedisError, OSError) as exc:
        print(f"trident ctl: Redis error: {exc}", file=sys.stderr)
        return 1 if args.command == "check" else 2
    except (SettingsError, ValueError, TypeError) as exc:
        print(f"trident ctl: {exc}", file=sys.stderr)
        return 2
    print(output)  # outside the try: a closed pipe is not a Redis error (tools/cli.py ends it quietly)
    return 0


if __name__ == "__main__":
    sys.exit(main())
