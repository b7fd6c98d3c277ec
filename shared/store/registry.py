"""The fleet-wide slot and isolation registry: leases in Redis, granted by atomic Lua.

One lease = one execution's right to run: a slot, claims on its triangle, primary quote and
pair symbols, and its notional counted against the quote's capital cap. ``acquire`` is one
EVALSHA that drops expired leases and then grants or refuses, so supervisors on any number of
hosts share one set of slots and claims (the seed's ``_is_blocked`` made global). Every grant
carries a fencing token from a counter; ``renew`` and ``release`` act only for the holder of the
lease's current token, so an owner that lost its lease (expired, then reclaimed) cannot release
or extend someone else's. All lease times come from the Redis server's clock (``TIME``).

Refusal reasons, first failing one wins: ``paused``, ``duplicate`` (this lease id was granted
before, within the retention window: a correlation id runs at most once fleet-wide; the refusal's
``detail`` is the first execution's outcome, ``running`` until its release records it), ``stale`` (the book is older than the
triangle's last trade: a fact about the signal, so it outranks the reasons below, which depend on
what else runs), ``no_slot``, ``triangle_busy``, ``quote_busy``, ``pair_busy``, ``capital_cap``,
``no_inventory``, ``inventory_busy`` (parallel live strategy: a leg's spend is more than the
inventory held / than what other leases left unclaimed of it), ``rate_budget`` (with a rate
budget: the triangle's exchange weight, taken in the same call).
``bad_config`` (a ``slots``, ``live_strategy``, ``cap:<QUOTE>`` or ``target:<CUR>`` value the
scripts cannot read; the refusal's detail names the field and its value; every other field a
supervisor reads is checked by ``config_problem``, which its control watcher applies to each
signal). Other Redis errors (connection, timeout) propagate as
``redis`` exceptions.

Operator settings: hash ``trident:{reg}:config``, read by every acquire, so a change binds the
whole fleet from the next signal on. Leases already held are never revoked by a change.

====================  =======  ================================================================
field                 default  meaning
====================  =======  ================================================================
paused                0        1: refuse every acquire (``paused``)
slots                 4        most leases held at once, fleet-wide (``no_slot``)
enforce_same_quote    0        1: one lease per primary quote at a time (``quote_busy``)
enforce_pair          1        1: a pair symbol in at most one lease at a time (``pair_busy``)
cap:<QUOTE>           none     most notional in QUOTE held by that quote's leases
                               (``capital_cap``): a decimal string, at most 18 places
live_strategy         seq.     ``sequential`` (legs one after another) or ``parallel`` (the
                               three legs at once from inventory; the spends are claimed)
target:<CUR>          none     inventory of CUR the account is meant to hold; parallel claims
                               of CUR stay within it, or within what the live workers last
                               saw available (hash ``INVENTORY``) if that is less
====================  =======  ================================================================

Flags (``paused``, ``halt``, ``enforce_same_quote``, ``enforce_pair``): absent means the default,
``1`` on, ``0`` or empty off. Any other value of a field Trident reads — a flag such as ``true``,
a ``slots`` that is not a non-negative whole number, a cap that is not a plain decimal or whose
currency is not upper case (no quote would match it) — makes every supervisor refuse signals
``bad_config`` with an ERROR naming the field and its value (fail closed; ``config_problem``).
Until a supervisor's watcher reads it (every 0.1 s) the scripts read such a flag as on, which
pauses or enforces, and refuse a bad ``slots`` or cap themselves.
With plain redis-cli (quote the key: it contains braces)::

    redis-cli HSET 'trident:{reg}:config' paused 1            # pause the fleet
    redis-cli HSET 'trident:{reg}:config' paused 0            # resume
    redis-cli HSET 'trident:{reg}:config' slots 3
    redis-cli HSET 'trident:{reg}:config' enforce_same_quote 1
    redis-cli HSET 'trident:{reg}:config' enforce_pair 0
    redis-cli HSET 'trident:{reg}:config' cap:USDT 1000.50
    redis-cli HDEL 'trident:{reg}:config' cap:USDT            # no cap for USDT
    redis-cli HSET 'trident:{reg}:config' live_strategy parallel target:BTC 0.5 target:USDT 20000
    redis-cli HGETALL 'trident:{reg}:inventory_claimed'       # per currency, spends in flight
    redis-cli HGETALL 'trident:{reg}:config'
    redis-cli ZRANGE 'trident:{reg}:leases' 0 -1 WITHSCORES   # live leases -> expiry ms
    redis-cli HGETALL 'trident:{reg}:lease_data'              # what each lease holds
    redis-cli HGETALL 'trident:{reg}:capital'                 # notional in use per quote

Once per id: every grant also sets ``SEEN:<id>`` (``shared.store.keys``) with a TTL of the
retention window (``retention_ms``, the ``correlation_retention_s`` setting, 24 h by default); a
release records the report status in it, keeping the TTL. A release with no outcome (the grant
was never dispatched: no worker) deletes it, since nothing ran. Past the window an id may run
again: the engine must not reuse ids within a day. Cost: one GET and one SET per acquire.

Capital is exact: the scripts add and compare amounts as integers of 10^-18 units held in
digit strings (Lua numbers are doubles, where 0.1 + 0.2 > 0.3), so notionals and caps may have
up to 18 decimal places and any size. Claim hashes hold comma-separated lease ids: with a rule
off, several leases may share a quote or pair, and releasing one removes only its own id; pair
claims are always written, so switching ``enforce_pair`` on binds leases already held.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from shared.codec import as_text
from shared.store import keys
from shared.store.connect import is_cluster
from shared.store.ratebudget import BUDGET_LUA, RateBudget

__all__ = [
    "LeaseRequest", "Grant", "Refusal", "RegistryConfig", "LeaseInfo", "Registry", "REFUSAL_REASONS",
    "DEFAULT_RETENTION_MS", "NotReplicated", "CONFIG_FLAGS", "ConfigProblem", "config_problem", "STRATEGIES",
]


class NotReplicated(RedisError):
    """A grant no replica acknowledged in time: undone, and the signal refused ``registry_unavailable``."""

REFUSAL_REASONS = (
    "paused", "duplicate", "stale", "no_slot", "triangle_busy", "quote_busy", "pair_busy", "capital_cap",
    "rate_budget", "bad_config", "no_inventory", "inventory_busy",
)
STRATEGIES = ("sequential", "parallel")
_MAX_PLACES = 18  # must match SCALE in lua/common.lua
_AMOUNT = re.compile(r"([0-9]*)\.?([0-9]*)")
_DEFAULT_SLOTS = 4
DEFAULT_RETENTION_MS = 86_400_000  # a correlation id runs at most once within a day
# The scripts' error() for a config value they cannot read: 'trident: config slots is ...' or
# 'trident: cap:USDT is ...' (lua/acquire.lua, lua/common.lua's amount_to_limbs).
_BAD_CONFIG = re.compile(r'trident: (?:config )?(slots|live_strategy|cap:[^ ]+|target:[^ ]+) (is not .*"[^"]*")')

_LUA_DIR = Path(__file__).with_name("lua")
_COMMON_LUA = (_LUA_DIR / "common.lua").read_text()
_SCRIPT_SOURCES = {name: _COMMON_LUA + (_LUA_DIR / f"{name}.lua").read_text()
                   for name in ("renew", "release", "sweep")}
# acquire also takes the triangle's exchange weight in the same round trip (shared/store/ratebudget.py)
_SCRIPT_SOURCES["acquire"] = _COMMON_LUA + BUDGET_LUA + (_LUA_DIR / "acquire.lua").read_text()
# Every script gets the same KEYS in this order (lua/common.lua names them).
_SCRIPT_KEYS = [
    keys.CONFIG, keys.LEASES, keys.LEASE_DATA, keys.CLAIM_TRI, keys.CLAIM_QUOTE, keys.CLAIM_PAIR,
    keys.CAPITAL, keys.LAST_TRADE, keys.TOKEN, keys.RATE_BUDGET, keys.INV_CLAIM, keys.INVENTORY,
]
_FLAG_DEFAULTS = {"paused": False, "enforce_same_quote": False, "enforce_pair": True}
# Every flag of the config hash a supervisor or the scripts read (`halt`: supervisor.control).
CONFIG_FLAGS = ("paused", "halt", "enforce_same_quote", "enforce_pair")
_FLAG_VALUES = frozenset(("0", "1", ""))
_WHOLE = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """A config hash field Trident cannot read as the operator meant: every signal is refused."""

    field: str
    value: str
    why: str

    @property
    def detail(self) -> str:
        return f'{keys.CONFIG} field {self.field} {self.why}: "{self.value}"'


def config_problem(raw: Mapping[str, str]) -> ConfigProblem | None:
    """The first field of the config hash (decoded) that is not a valid setting, None if all are.

    Stricter than the scripts, on purpose: they read any flag value but `0` and "" as on and
    accept `4.0` as a slot count; a value that is not exactly what `ctl` writes is a mistake.
    """
    for name in CONFIG_FLAGS:
        value = raw.get(name)
        if value is not None and value not in _FLAG_VALUES:
            return ConfigProblem(name, value, "is not a flag (1 on, 0 or empty off)")
    slots = raw.get("slots")
    if slots is not None and _WHOLE.fullmatch(slots) is None:
        return ConfigProblem("slots", slots, "is not a whole number")
    strategy = raw.get("live_strategy")
    if strategy is not None and strategy not in ("", *STRATEGIES):
        return ConfigProblem("live_strategy", strategy, "is not sequential or parallel")
    for name, value in sorted(raw.items()):
        if not name.startswith(("cap:", "target:")):
            continue
        currency = name.partition(":")[2]
        if not currency or currency != currency.upper():
            return ConfigProblem(name, value, "names no upper-case currency (no signal's quote would match it)")
        try:
            _parse_amount(value, name)
        except ValueError:
            return ConfigProblem(name, value, f"is not a non-negative decimal with at most {_MAX_PLACES} places")
    return None


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """What one execution wants to hold. Ids and pairs travel comma-joined, so none has a comma."""

    lease_id: str
    triangle_id: str
    quote: str
    pairs: tuple[str, ...]
    notional: Decimal
    book_ts_ms: int
    # What each currency's legs spend, for the parallel strategy's inventory claim (live only)
    spends: tuple[tuple[str, Decimal], ...] = ()

    def __post_init__(self) -> None:
        if not self.lease_id or "," in self.lease_id:
            raise ValueError(f"lease_id must be non-empty without commas: {self.lease_id!r}")
        if not self.triangle_id or not self.quote or "," in self.quote:
            raise ValueError(f"triangle_id and quote must be non-empty: {self.triangle_id!r}, {self.quote!r}")
        for pair in self.pairs:
            if not pair or "," in pair:
                raise ValueError(f"pair symbols must be non-empty without commas: {self.pairs!r}")


@dataclass(frozen=True, slots=True)
class Grant:
    lease_id: str
    token: int
    # how the worker must run it: ``parallel`` only when the grant claimed the spends' inventory
    strategy: str = "sequential"


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    # What blocked it, raw from the script: for ``duplicate`` the first execution's outcome
    # (``running`` while it runs), else the holder's id, the last trade's ms, … (the refusal trail);
    # not part of equality, so a refusal still compares by its reason
    detail: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    paused: bool
    slots: int
    enforce_same_quote: bool
    enforce_pair: bool
    caps: dict[str, Decimal]
    live_strategy: str = "sequential"
    targets: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """One stored lease; ``expires_ms`` may be past for a lease not yet swept."""

    lease_id: str
    token: int
    triangle_id: str
    quote: str
    pairs: tuple[str, ...]
    notional: Decimal
    owner: str
    started_ms: int
    expires_ms: int


# Refusals are immutable, so one instance per reason serves every call, whichever way the
# client decodes replies.
_REFUSALS: dict[str | bytes, Refusal] = {}
for _reason in REFUSAL_REASONS:
    _REFUSALS[_reason] = _REFUSALS[_reason.encode()] = Refusal(_reason)



def _amount_text(value: Decimal, what: str) -> str:
    """The plain decimal string the scripts accept: no sign, no exponent, at most 18 places."""
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(f"{what} must be a finite non-negative Decimal, got {value!r}")
    text = format(value.copy_abs(), "f")  # copy_abs only turns -0 into 0 here
    point = text.find(".")
    if point >= 0 and len(text) - point - 1 > _MAX_PLACES:
        text = text.rstrip("0").rstrip(".")  # trailing zeros carry no value
        if "." in text and len(text) - point - 1 > _MAX_PLACES:
            raise ValueError(f"{what} has more than {_MAX_PLACES} decimal places: {value}")
    return text


def _parse_amount(text: str, what: str) -> Decimal:
    """Read an amount exactly as the scripts do (so config() fails where acquire would)."""
    match = _AMOUNT.fullmatch(text)
    if match is None or not (match[1] or match[2]) or len(match[2]) > _MAX_PLACES:
        raise ValueError(f"{what} is not a non-negative decimal with at most {_MAX_PLACES} places: {text!r}")
    return Decimal(text)


def _flag(raw: dict[str, str], name: str) -> bool:
    value = raw.get(name)
    return _FLAG_DEFAULTS[name] if value is None else value not in ("0", "")


class Registry:
    """Async client of the registry scripts; one per supervisor, safe to share between tasks."""

    __slots__ = ("_redis", "_owner", "_ttl_ms", "_retention_ms", "_budget", "_acquire", "_renew", "_release",
                 "_sweep", "_wait_replicas", "_wait_timeout_ms")

    def __init__(
        self, redis: aioredis.Redis, *, owner: str, ttl_ms: int = 30_000, budget: RateBudget | None = None,
        retention_ms: int = DEFAULT_RETENTION_MS, wait_replicas: int = 0, wait_timeout_ms: int = 100,
    ) -> None:
        if ttl_ms <= 0 or retention_ms <= 0:
            raise ValueError(f"ttl_ms and retention_ms must be positive, got {ttl_ms}, {retention_ms}")
        self._redis = redis
        self._owner = owner
        self._ttl_ms = ttl_ms
        self._retention_ms = retention_ms
        self._budget = budget
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = wait_timeout_ms
        # register_script runs EVALSHA and reloads the source on NOSCRIPT (restart, SCRIPT FLUSH).
        self._acquire = redis.register_script(_SCRIPT_SOURCES["acquire"])
        self._renew = redis.register_script(_SCRIPT_SOURCES["renew"])
        self._release = redis.register_script(_SCRIPT_SOURCES["release"])
        self._sweep = redis.register_script(_SCRIPT_SOURCES["sweep"])

    async def acquire(self, request: LeaseRequest, weight: int = 0) -> Grant | Refusal:
        """Grant a lease for ``ttl_ms`` with a fresh fencing token, or refuse with the first reason.

        With a rate budget, ``weight`` (the triangle's exchange weight) is taken from it in the
        same script, after every isolation check: one round trip, and refusals spend nothing.
        """
        budget = self._budget
        if budget is None:
            weight = 0
        try:
            answer = await self._acquire([*_SCRIPT_KEYS, keys.seen_key(request.lease_id)], (
                request.lease_id, self._ttl_ms, request.triangle_id, request.quote, ",".join(request.pairs),
                _amount_text(request.notional, "notional"), request.book_ts_ms, self._owner,
                weight, budget.limit if budget else 0, budget.window_ms if budget else 0, self._retention_ms,
                ",".join(f"{currency}:{_amount_text(amount, 'spend')}" for currency, amount in request.spends),
            ))
        except ResponseError as exc:
            bad = _BAD_CONFIG.search(str(exc))
            if bad is None:
                raise
            return Refusal("bad_config", f"{keys.CONFIG} field {bad[1]} {bad[2]}")
        granted, detail = answer[0], answer[1]
        if granted == 1:
            if self._wait_replicas:
                await self._replicated(request.lease_id, detail)
            return Grant(request.lease_id, detail, as_text(answer[2])) if len(answer) > 2 else \
                Grant(request.lease_id, detail)
        refusal = _REFUSALS.get(detail) or Refusal(as_text(detail))
        if len(answer) > 2:
            if refusal.reason == "rate_budget":
                if budget is not None:
                    budget.note_refused(int(answer[2]))
            else:
                refusal = Refusal(refusal.reason, as_text(answer[2]))
        return refusal

    async def _replicated(self, lease_id: str, token: int) -> None:
        """WAIT until `wait_replicas` replicas hold the grant, or undo it and raise NotReplicated.

        Replication is asynchronous: a grant the primary acknowledged but no replica received is
        lost if that primary dies, and the promoted replica would grant the same triangle (or the
        same correlation id, re-sent) again. A grant is only used once a replica holds it.
        """
        try:
            if is_cluster(self._redis):  # WAIT is per connection: ask the primary of the {reg} slot
                node = self._redis.get_node_from_key(keys.LEASES)
                acked = await self._redis.execute_command("WAIT", self._wait_replicas, self._wait_timeout_ms,
                                                          target_nodes=node)
            else:
                acked = await self._redis.wait(self._wait_replicas, self._wait_timeout_ms)
        except (RedisError, OSError):
            acked = -1  # unknown: treated as not replicated
        if acked < self._wait_replicas:
            try:
                await self.release(lease_id, token)
            except (RedisError, OSError):
                pass  # the lease then expires by TTL, on whichever primary kept it
            raise NotReplicated(f"lease reached {max(acked, 0)} of {self._wait_replicas} replica(s) within "
                                f"{self._wait_timeout_ms} ms; refused rather than risk a grant a failover loses")

    async def renew(self, lease_id: str, token: int) -> bool:
        """Extend a live lease to now + ttl_ms; False if it expired or the token is not current."""
        return await self._renew(_SCRIPT_KEYS, (lease_id, token, self._ttl_ms)) == 1

    async def release(self, lease_id: str, token: int, last_trade_ms: int = 0, outcome: str = "") -> bool:
        """Free the lease; False (and nothing changed) if the token is not current or it is gone.

        ``outcome`` (the report status) is kept as the id's first outcome for the retention
        window; an empty one means the execution never started and lets the id be sent again.
        """
        keys_ = [*_SCRIPT_KEYS, keys.seen_key(lease_id)]
        return await self._release(keys_, (lease_id, token, last_trade_ms, outcome)) == 1

    async def sweep(self) -> list[str]:
        """Drop expired leases with their claims; the ids dropped."""
        return [as_text(lease_id) for lease_id in await self._sweep(_SCRIPT_KEYS)]

    async def config(self) -> RegistryConfig:
        """The settings in force, defaults filled in; ValueError for values acquire would reject."""
        raw = {as_text(k): as_text(v) for k, v in (await self._redis.hgetall(keys.CONFIG)).items()}
        problem = config_problem(raw)
        if problem is not None:
            raise ValueError(problem.detail)
        slots = int(raw.get("slots", str(_DEFAULT_SLOTS)))
        caps = {field[4:]: _parse_amount(value, field) for field, value in raw.items() if field.startswith("cap:")}
        targets = {field[7:]: _parse_amount(value, field) for field, value in raw.items()
                   if field.startswith("target:")}
        strategy = raw.get("live_strategy") or "sequential"
        if strategy not in STRATEGIES:
            raise ValueError(f"config live_strategy is not 'sequential' or 'parallel': {strategy!r}")
        return RegistryConfig(
            paused=_flag(raw, "paused"),
            slots=slots,
            enforce_same_quote=_flag(raw, "enforce_same_quote"),
            enforce_pair=_flag(raw, "enforce_pair"),
            caps=caps,
            live_strategy=strategy,
            targets=targets,
        )

    async def set_config(self, **fields: object) -> None:
        """Change settings atomically, e.g. ``paused=True, slots=3, caps={"USDT": Decimal("1000")}``.

        ``caps`` and ``targets`` (inventory per currency) merge: listed currencies are set, one
        mapped to ``None`` loses its value, others keep theirs.
        """
        updates: dict[str, str] = {}
        removals: list[str] = []
        for name, value in fields.items():
            if name in _FLAG_DEFAULTS:
                if not isinstance(value, bool):
                    raise TypeError(f"{name} must be a bool, got {value!r}")
                updates[name] = "1" if value else "0"
            elif name == "slots":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"slots must be a non-negative int, got {value!r}")
                updates[name] = str(value)
            elif name == "live_strategy":
                if value not in STRATEGIES:
                    raise ValueError(f"live_strategy must be one of {STRATEGIES}, got {value!r}")
                updates[name] = str(value)
            elif name in ("caps", "targets"):
                prefix = "cap:" if name == "caps" else "target:"
                if not isinstance(value, dict):
                    raise TypeError(f"{name} must be a dict of currency -> Decimal | None, got {value!r}")
                for currency, amount in value.items():
                    if amount is None:
                        removals.append(prefix + currency)
                    else:
                        updates[prefix + currency] = _amount_text(amount, prefix + currency)
            else:
                raise TypeError(f"unknown registry config field {name!r}")
        async with self._redis.pipeline(transaction=True) as pipe:
            if updates:
                pipe.hset(keys.CONFIG, mapping=updates)
            if removals:
                pipe.hdel(keys.CONFIG, *removals)
            await pipe.execute()

    async def leases(self) -> list[LeaseInfo]:
        """Every stored lease, soonest expiry first, read in one MULTI snapshot."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrange(keys.LEASES, 0, -1, withscores=True)
            pipe.hgetall(keys.LEASE_DATA)
            expiries, records = await pipe.execute()
        records = {as_text(k): v for k, v in records.items()}
        infos = []
        for member, expires_ms in expiries:
            lease_id = as_text(member)
            record = records.get(lease_id)
            if record is None:
                continue
            lease = json.loads(record)
            infos.append(LeaseInfo(
                lease_id=lease_id,
                token=int(lease["token"]),
                triangle_id=lease["triangle"],
                quote=lease["quote"],
                pairs=tuple(lease["pairs"].split(",")) if lease["pairs"] else (),
                notional=Decimal(lease["notional"]),
                owner=lease["owner"],
                started_ms=int(lease["started_ms"]),
                expires_ms=int(expires_ms),
            ))
        return infos
