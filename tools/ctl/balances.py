"""`trident ctl balances`: what the account holds, and what failed executions left stranded.

Live mode: the account's trade balances from the exchange (signed `GET /api/v1/accounts`; it is
metered in KuCoin's Management pool, not the Spot pool the fleet's rate budget guards, so it
takes nothing from the budget the trading path relies on), then the inventory the report stream
says executions stranded and did not sell back. Paper mode: one line — a paper service never
holds anything on the exchange.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

import redis.asyncio as aioredis

from shared.money import fmt_decimal
from shared.report import Status, report_from_fields
from shared.settings import Settings
from tools.ctl.streams import newest_first

__all__ = ["balances", "BalanceError"]


class BalanceError(Exception):
    """The exchange could not be asked (no credentials, unreachable): one line, exit 2."""


async def _stranded(client: aioredis.Redis, report_stream: str) -> dict[str, Decimal]:
    held: dict[str, Decimal] = defaultdict(Decimal)
    async for _, fields in newest_first(client, report_stream):
        if fields.get("status") not in (Status.STRANDED, Status.UNWOUND):
            continue
        for unwind in report_from_fields(fields).unwinds:
            if unwind.stranded > unwind.spent:
                held[unwind.currency] += unwind.stranded - unwind.spent
    return dict(held)


async def balances(client: aioredis.Redis, settings: Settings, *, as_json: bool = False) -> str:
    if settings.mode != "live":
        return ("paper mode: no balances — a paper service never holds inventory on the exchange "
                "(set TRIDENT_MODE=live, or --config, to read a live account)")
    if settings.credentials is None:
        raise BalanceError("live balances need TRIDENT_API_KEY, TRIDENT_API_SECRET and TRIDENT_API_PASSPHRASE")
    import aiohttp  # noqa: PLC0415 - only this command needs the exchange client

    from shared.kucoin.errors import KucoinError  # noqa: PLC0415
    from shared.kucoin.rest import KucoinRest  # noqa: PLC0415
    from shared.kucoin.session import make_session  # noqa: PLC0415

    try:
        async with make_session(settings.http_timeout_s) as session:
            accounts = await KucoinRest(session, settings.exchange_url, settings.credentials,
                                        timeout_s=settings.http_timeout_s).accounts("trade")
    except (aiohttp.ClientError, KucoinError, TimeoutError, OSError) as exc:
        raise BalanceError(f"cannot read balances from {settings.exchange_url}: {exc}") from None
    stranded = await _stranded(client, settings.report_stream)
    rows = sorted((a for a in accounts if a.balance or a.holds), key=lambda a: a.currency)
    if as_json:
        return json.dumps({
            "accounts": [{"currency": a.currency, "balance": fmt_decimal(a.balance),
                          "available": fmt_decimal(a.available), "holds": fmt_decimal(a.holds)} for a in rows],
            "stranded": {c: fmt_decimal(v) for c, v in sorted(stranded.items())},
        }, indent=2)
    lines = [f"trade account at {settings.exchange_url}:"]
    lines += [f"  {a.currency:<8} balance {fmt_decimal(a.balance)}  available {fmt_decimal(a.available)}  "
              f"holds {fmt_decimal(a.holds)}" for a in rows] or ["  (empty)"]
    lines.append("stranded by executions (per reports, not sold back): " +
                 (", ".join(f"{fmt_decimal(v)} {c}" for c, v in sorted(stranded.items())) or "none"))
    return "\n".join(lines)
