"""The live execution journal: one Redis hash per execution, written before every order and after it.

Why: a live triangle moves money in several steps, and the process running it can die between
any two. The journal (``trident:{reg}:journal:<correlation id>``) says, at every moment, which
orders were about to be placed (their deterministic clientOid, pair, side and amount) and what
each one did once settled, so an operator — or a restarted worker — can resolve every order by
clientOid without guessing, and an execution can never be started twice for one correlation id.

Fields are flat strings (``redis-cli HGETALL`` reads them): ``state`` (running | done),
``status``, ``started_ms``, ``updated_ms``, ``triangle``, and per order a prefix — ``leg0_`` ..
``leg2_``, ``unwind1_``/``unwind2_`` — with ``state`` (placing | done | rejected | unknown),
``client_oid``, ``pair``, ``side``, ``amount``, ``amount_kind`` (size | funds), and once
settled ``order_id``, ``filled_size``, ``filled_funds``, ``fee``, ``fee_currency``, ``error``.
A running journal has no TTL; a finished one expires after ``ttl_s``. ``state`` done with
``status`` reconciled (and ``reconciled_ms``) means reconciliation resolved its orders at the
exchange afterwards; ``status`` lost means its worker died with every order resolved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import redis.asyncio as aioredis

from shared import clock
from shared.codec import as_text
from shared.money import fmt_decimal
from shared.report import LegFill, Unwind, order_movement
from shared.store.keys import JOURNAL_PREFIX

__all__ = ["Journal", "PlacingOrder", "SettledOrder", "UNRESOLVED", "journal_key", "journal_legs", "journal_summary",
           "leg_slot", "unresolved_slots", "unwind_slot"]

# Order states whose outcome at the exchange is not known: resolve them by clientOid.
UNRESOLVED = frozenset(("placing", "unknown"))

DEFAULT_TTL_S = 7 * 24 * 3600

# Create the hash only if it does not exist: one round trip, and a second execution of the same
# correlation id finds the first one's journal instead of overwriting it.
_CREATE_IF_ABSENT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


def journal_key(correlation_id: str) -> str:
    return JOURNAL_PREFIX + correlation_id


def leg_slot(leg: int) -> str:
    """The journal's name for leg `leg`'s order (``leg0`` .. ``leg2``)."""
    return f"leg{leg}"


def unwind_slot(leg: int) -> str:
    """The journal's name for the order unwinding leg `leg`'s stranded input (``unwind1``, ``unwind2``)."""
    return f"unwind{leg}"


@dataclass(frozen=True, slots=True)
class PlacingOrder:
    """An order about to be placed: journaled before the exchange sees it, so it can be resolved
    by its clientOid whatever happens next."""

    slot: str
    client_oid: str
    pair: str
    side: str
    amount: Decimal
    by_funds: bool

    def fields(self) -> dict[str, str]:
        prefix = self.slot + "_"
        return {
            prefix + "state": "placing", prefix + "client_oid": self.client_oid, prefix + "pair": self.pair,
            prefix + "side": self.side, prefix + "amount": fmt_decimal(self.amount),
            prefix + "amount_kind": "funds" if self.by_funds else "size",
        }


@dataclass(frozen=True, slots=True)
class SettledOrder:
    """What a placed order did: `state` done | rejected | unknown, and the exchange's figures when
    it answered with an order (`order_id` None: it did not)."""

    slot: str
    state: str
    error: str = ""
    order_id: str | None = None
    filled_size: Decimal = Decimal(0)
    filled_funds: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    fee_currency: str = ""

    def fields(self) -> dict[str, str]:
        prefix = self.slot + "_"
        fields = {prefix + "state": self.state, prefix + "error": self.error}
        if self.order_id is not None:
            fields.update({
                prefix + "order_id": self.order_id, prefix + "filled_size": fmt_decimal(self.filled_size),
                prefix + "filled_funds": fmt_decimal(self.filled_funds), prefix + "fee": fmt_decimal(self.fee),
                prefix + "fee_currency": self.fee_currency,
            })
        return fields


def _settled_fields(settled: SettledOrder | None) -> dict[str, str]:
    return settled.fields() if settled is not None else {}


def _now_ms() -> str:
    """Redis's clock as this process estimates it: reconciliation on another host compares it."""
    return str(clock.redis_ms())


class Journal:
    """Reads and writes execution journals; every write stamps `updated_ms`.

    Each write carries the previous order's result together with the next order's intent: one
    Redis write per order, never an order placed without its intent journaled first.
    """

    def __init__(self, redis: aioredis.Redis, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._create = redis.register_script(_CREATE_IF_ABSENT)

    @property
    def redis(self) -> aioredis.Redis:
        """The registry's Redis the journal lives in (the live worker's other registry writes use it)."""
        return self._redis

    async def begin(self, correlation_id: str, triangle: Sequence[str], primary_quote: str,
                    first: PlacingOrder, *more: PlacingOrder) -> bool:
        """Open the journal (state running) with the first order's intent (a parallel triangle's:
        every order's, `more`); False if this execution already has one."""
        now = _now_ms()
        intents = {k: v for placing in (first, *more) for k, v in placing.fields().items()}
        entry = {"triangle": ",".join(triangle), "primary_quote": primary_quote, **intents,
                 "state": "running", "started_ms": now, "updated_ms": now}
        args = [part for pair in entry.items() for part in pair]
        return bool(await self._create(keys=[journal_key(correlation_id)], args=args))

    async def place(self, correlation_id: str, placing: PlacingOrder, settled: SettledOrder | None) -> None:
        """The next order's intent, with what the previous one did (`settled`, if not yet written)."""
        fields = {**_settled_fields(settled), **placing.fields(), "updated_ms": _now_ms()}
        await self._redis.hset(journal_key(correlation_id), mapping=fields)

    async def finish(self, correlation_id: str, status: str, settled: SettledOrder | None) -> None:
        """Final state, then the TTL: a finished journal is history, kept `ttl_s`."""
        key = journal_key(correlation_id)
        fields = {**_settled_fields(settled), "state": "done", "status": status, "updated_ms": _now_ms()}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def close(self, correlation_id: str, status: str, settled: Sequence[SettledOrder] = ()) -> None:
        """Close a journal its worker could not finish (dead worker, reconciliation): what each
        order was found to have done, state done, `status`, then the TTL."""
        fields: dict[str, str] = {}
        for order in settled:
            fields.update(order.fields())
        now = _now_ms()
        fields.update({"state": "done", "status": status, "updated_ms": now})
        if status == "reconciled":
            fields["reconciled_ms"] = now
        key = journal_key(correlation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def ids(self) -> list[str]:
        """Every journaled correlation id (SCAN: never blocks Redis, however many there are)."""
        prefix = journal_key("")
        return [as_text(key)[len(prefix):] async for key in self._redis.scan_iter(match=prefix + "*", count=500)]

    async def read(self, correlation_id: str) -> dict[str, str]:
        raw = await self._redis.hgetall(journal_key(correlation_id))
        return {as_text(key): as_text(value) for key, value in raw.items()}


_ORDER_PREFIXES = tuple(slot + "_" for slot in (*map(leg_slot, range(3)), unwind_slot(1), unwind_slot(2)))


def journal_summary(fields: Mapping[str, str]) -> str:
    """One line of what a journal says each order did, for the `lost` report of a dead worker.

    Orders still `placing` or `unknown` are named with their clientOid: they must be resolved by
    querying it (never by placing again).
    """
    parts = []
    for prefix in _ORDER_PREFIXES:
        state = fields.get(prefix + "state")
        if state is None:
            continue
        order = f"{prefix[:-1]} {fields.get(prefix + 'side', '')} {fields.get(prefix + 'pair', '')} {state}"
        if state == "done":
            order += (f" filled_size={fields.get(prefix + 'filled_size', '')}"
                      f" filled_funds={fields.get(prefix + 'filled_funds', '')}"
                      f" fee={fields.get(prefix + 'fee', '')} {fields.get(prefix + 'fee_currency', '')}".rstrip())
        elif state in ("placing", "unknown"):
            order += f" (resolve clientOid {fields.get(prefix + 'client_oid', '')})"
        parts.append(order)
    return "; ".join(parts)


def unresolved_slots(fields: Mapping[str, str]) -> list[str]:
    """The orders of a journal whose outcome at the exchange is not known (placing, unknown)."""
    return [prefix[:-1] for prefix in _ORDER_PREFIXES if fields.get(prefix + "state") in UNRESOLVED]


def _decimal(fields: Mapping[str, str], name: str) -> Decimal:
    return Decimal(fields.get(name) or 0)


def journal_legs(fields: Mapping[str, str]) -> tuple[tuple[LegFill, ...], tuple[Unwind, ...]]:
    """What a journal's settled orders moved, as report legs and unwinds: the fills of legs 0, 1, 2
    up to the first that did not fill, and the unwind orders that did. A `lost` or `reconciled`
    report carries these as fields, so a consumer never parses them out of an error text."""
    fills: list[LegFill] = []
    held: dict[str, Decimal] = {}
    primary = fields.get("primary_quote", "")
    for leg in range(3):
        prefix = leg_slot(leg) + "_"
        size = _decimal(fields, prefix + "filled_size")
        if fields.get(prefix + "state") != "done" or size == 0:
            break
        pair, side = fields.get(prefix + "pair", ""), fields.get(prefix + "side", "")
        funds, fee, fee_currency = _decimal(fields, prefix + "filled_funds"), _decimal(fields, prefix + "fee"), \
            fields.get(prefix + "fee_currency", "")
        source, target, spent, received = order_movement(pair, side, size, funds, fee, fee_currency)
        fills.append(LegFill(leg=leg, pair=pair, side=side, order_id=fields.get(prefix + "order_id", ""),
                             input_currency=source, output_currency=target, spent=spent, received=received,
                             filled_size=size, filled_funds=funds, avg_price=funds / size, fee=fee,
                             fee_currency=fee_currency, latency_ms=0.0))
        held[source] = held.get(source, Decimal(0)) - spent
        held[target] = held.get(target, Decimal(0)) + received
    unwinds: list[Unwind] = []
    for leg in (1, 2):
        prefix = unwind_slot(leg) + "_"
        size = _decimal(fields, prefix + "filled_size")
        if fields.get(prefix + "state") != "done" or size == 0:
            continue
        pair, side = fields.get(prefix + "pair", ""), fields.get(prefix + "side", "")
        funds, fee, fee_currency = _decimal(fields, prefix + "filled_funds"), _decimal(fields, prefix + "fee"), \
            fields.get(prefix + "fee_currency", "")
        source, target, spent, received = order_movement(pair, side, size, funds, fee, fee_currency)
        if target != primary:
            continue  # an unwind always converts back to the primary quote; anything else is not one
        unwinds.append(Unwind(leg=leg, currency=source, stranded=max(held.get(source, Decimal(0)), spent),
                              pair=pair, side=side, order_id=fields.get(prefix + "order_id", ""), spent=spent,
                              recovered=received, fee=fee, fee_currency=fee_currency))
    return tuple(fills), tuple(unwinds)
