"""The one place a Redis client is made: `connect(settings, role)`, with the timeouts of its role.

Like arq's `create_pool`, which serves its worker, its client and its health check alike, every
process of Trident gets its client here, so a timeout is decided once per kind of caller and
not at each call site:

- ``supervisor`` and ``worker`` — the service. Every command (lease acquire, report XADD, status
  write) is bounded by ``redis_timeout_s``, connect and reply alike: a Redis that stops answering
  must become an error the caller handles (refuse the signal, spool the report), never a hang
  on the trading path.
- ``tool`` — `trident ctl`, the demo, operators' scripts. Connecting is bounded by
  ``redis_timeout_s`` (a wrong address fails fast with one clear line), but a reply may take as
  long as Redis needs: a person is waiting, not a signal.

Commands are packed by hiredis in one C call (`shared.store.packing`): a report's XADD is one
packed write, not ~200 arguments encoded in Python. Responses stay bytes (no ``decode_responses``): the report stream and frames are binary-safe,
and readers turn replies into text with `shared.codec.as_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from shared.settings import Settings
from shared.store.packing import packed_connection_class

__all__ = ["Role", "ROLES", "connect"]

Role = Literal["supervisor", "worker", "tool"]


@dataclass(frozen=True, slots=True)
class _Timeouts:
    """Which of the settings' ``redis_timeout_s`` bounds apply to a role (False: wait as long as it takes)."""

    bound_connect: bool
    bound_replies: bool


_TIMEOUTS: dict[str, _Timeouts] = {
    "supervisor": _Timeouts(bound_connect=True, bound_replies=True),
    "worker": _Timeouts(bound_connect=True, bound_replies=True),
    "tool": _Timeouts(bound_connect=True, bound_replies=False),
}
ROLES: tuple[str, ...] = tuple(_TIMEOUTS)


def connect(settings: Settings, role: Role) -> aioredis.Redis:
    """A redis.asyncio client for `settings.redis_url` with `role`'s timeouts (no I/O until first use)."""
    try:
        timeouts = _TIMEOUTS[role]
    except KeyError:
        raise ValueError(f"unknown Redis client role {role!r}; expected one of {', '.join(ROLES)}") from None
    limit = settings.redis_timeout_s
    client = aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=limit if timeouts.bound_connect else None,
        socket_timeout=limit if timeouts.bound_replies else None,
    )
    # Set on the pool, not passed to from_url: a unix:// URL's own class would override it there.
    # No connection exists yet, so every one the pool opens packs in C (see shared.store.packing).
    client.connection_pool.connection_class = packed_connection_class(settings.redis_url)
    return client
