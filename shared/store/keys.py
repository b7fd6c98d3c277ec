"""Every Redis key name Trident uses, in one place.

The registry keys share the hash tag ``{reg}``, so all of them live in one Cluster slot and the
Lua scripts in ``shared/store/lua/`` (which receive every key they touch through ``KEYS``) also run on
Redis Cluster. Keys outside the registry (reports, status, health) need no tag: no script
touches them together with registry keys.

Outside the registry: ``REPORTS`` (stream of execution reports), ``STATUS_PREFIX + <host>:<pid>``
(one supervisor's status hash, TTL 5 s, refreshed every second), ``FLEET`` (zset: supervisor
name -> epoch ms last seen, an index so nobody needs ``KEYS``), ``REFUSALS`` (hash: reason ->
signals refused fleet-wide, added to by every supervisor each second), and one string per worker,
``worker_health_key(<host>:<pid>, index)``, with a short TTL (arq's health-check key).

Registry layout (times are epoch milliseconds of the Redis server's clock):

==============  =======  =====================================================================
key             type     contents
==============  =======  =====================================================================
CONFIG          hash     operator settings read by every acquire (see ``shared.store.registry``)
LEASES          zset     lease id -> expiry ms
LEASE_DATA      hash     lease id -> JSON record (token, triangle, quote, pairs, notional,
                         owner, started_ms), all values strings
CLAIM_TRI       hash     triangle id -> id of the lease holding it
CLAIM_QUOTE     hash     primary quote -> comma-separated ids of the leases holding it
CLAIM_PAIR      hash     pair symbol -> comma-separated ids of the leases holding it
CAPITAL         hash     quote -> notional in use, exact decimal string (absent = 0)
LAST_TRADE      hash     triangle id -> ms of its latest finished trade (the stale rule)
TOKEN           string   fencing-token counter (INCR)
CANCEL          hash     correlation id -> 1 while a cancellation is requested
RATE_BUDGET     hash     the fleet's exchange rate budget: limit, remaining, window_end_ms
                         (see ``shared.store.ratebudget``)
INV_CLAIM       hash     currency -> amount claimed by parallel live leases, exact decimal
INVENTORY       hash     currency -> what the live workers' balance view last showed available
                         (a parallel claim is checked against the lower of it and ``target:<CUR>``)
SEEN:<id>       string   one per correlation id ever granted: ``running`` until its release
                         records the outcome (``filled``, ``lost``, ...); TTL = the retention
                         window, so an id executes at most once fleet-wide within it
==============  =======  =====================================================================
"""

from __future__ import annotations

__all__ = [
    "REG",
    "CONFIG",
    "LEASES",
    "LEASE_DATA",
    "CLAIM_TRI",
    "CLAIM_QUOTE",
    "CLAIM_PAIR",
    "CAPITAL",
    "LAST_TRADE",
    "TOKEN",
    "CANCEL",
    "RATE_BUDGET",
    "INV_CLAIM",
    "INVENTORY",
    "SEEN_PREFIX",
    "seen_key",
    "JOURNAL_PREFIX",
    "REPORTS",
    "STATUS_PREFIX",
    "WORKER_HEALTH_PREFIX",
    "FLEET",
    "REFUSALS",
    "REFUSAL_LOG",
    "worker_health_key",
]

REG = "trident:{reg}"
CONFIG = REG + ":config"
LEASES = REG + ":leases"
LEASE_DATA = REG + ":lease_data"
CLAIM_TRI = REG + ":claim:tri"
CLAIM_QUOTE = REG + ":claim:quote"
CLAIM_PAIR = REG + ":claim:pair"
CAPITAL = REG + ":capital"
LAST_TRADE = REG + ":last_trade"
TOKEN = REG + ":token"
CANCEL = REG + ":cancel"
RATE_BUDGET = REG + ":rate_budget"
INV_CLAIM = REG + ":inventory_claimed"
INVENTORY = REG + ":inventory"
JOURNAL_PREFIX = REG + ":journal:"
SEEN_PREFIX = REG + ":seen:"

REPORTS = "trident:reports"
STATUS_PREFIX = "trident:status:"
WORKER_HEALTH_PREFIX = "trident:health:"
FLEET = "trident:fleet"
REFUSALS = "trident:refusals"
REFUSAL_LOG = "trident:refusals:log"  # stream: one entry per refused signal (supervisor/refusal_trail.py)


def worker_health_key(supervisor_name: str, index: int) -> str:
    """Per worker of one supervisor (``<host>:<pid>``), so two supervisors on a host never share one."""
    return f"{WORKER_HEALTH_PREFIX}{supervisor_name}:w{index}"


def seen_key(correlation_id: str) -> str:
    """The once-per-id marker of `correlation_id` (in the ``{reg}`` slot: acquire and release set it)."""
    return SEEN_PREFIX + correlation_id
