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

Redis Sentinel (high availability) is a URL too, so every role reaches it the same way:
``redis+sentinel://[[user]:password@]host:port[,host:port…]/<master name>[/<db>][?sentinel_password=…]``.
The client asks the sentinels for the current primary on every new connection (redis-py's
`Sentinel.master_for`), so after a failover the next command that fails on the old primary
drops its connection and the one after it goes to the new primary: admission refuses
``registry_unavailable`` in between, workers spool, and nobody restarts.

Redis Cluster is a URL as well: ``redis+cluster://[[user]:password@]host:port[,host:port…]``
(any reachable nodes; the client learns the rest and the slot map from them, and follows
MOVED/ASK itself). It gets redis-py's `RedisCluster`: every script receives all its keys in KEYS
and those keys share one hash slot (the registry's ``{reg}``, a report stream and its markers),
and no MULTI spans two slots (`shared.store.fleet` splits its writes by key on a cluster).
Cluster connections use redis-py's own packer (its node pools do not take a connection class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from shared.settings import Settings
from shared.store.packing import packed_connection_class

__all__ = ["Role", "ROLES", "SENTINEL_SCHEME", "CLUSTER_SCHEME", "SentinelAddress", "ClusterAddress", "connect",
           "is_cluster", "parse_sentinel_url", "parse_cluster_url"]

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


SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"


@dataclass(frozen=True, slots=True)
class SentinelAddress:
    """A ``redis+sentinel://`` URL taken apart: where the sentinels are and which primary to ask for."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse_sentinel_url(url: str) -> SentinelAddress:
    """`SentinelAddress` of `url`; ValueError naming what is wrong (never echoing a password)."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = _host_ports(hosts, "sentinel")
    path = [segment for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("redis_url: a sentinel URL's path is /<master name>[/<db number>]")
    query = parse_qs(parts.query)
    sentinel_password = query.get("sentinel_password", [None])[0]
    return SentinelAddress(
        sentinels=tuple(sentinels), master=unquote(path[0]), db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None, password=unquote(password) or None,
        sentinel_password=sentinel_password,
    )


@dataclass(frozen=True, slots=True)
class ClusterAddress:
    """A ``redis+cluster://`` URL taken apart: the nodes to learn the cluster from, and credentials."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None


def _host_ports(hosts: str, what: str) -> list[tuple[str, int]]:
    found = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"redis_url: {what} address {item.strip()!r} is not host:port")
        found.append((host.strip("[]"), int(port)))
    return found


def parse_cluster_url(url: str) -> ClusterAddress:
    """`ClusterAddress` of `url`; ValueError naming what is wrong (never echoing a password)."""
    parts = urlsplit(url)
    if parts.scheme != CLUSTER_SCHEME:
        raise ValueError(f"not a {CLUSTER_SCHEME}:// URL")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = _host_ports(hosts, "cluster node")
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError("redis_url: a cluster has only database 0 (no /<db> but /0 in a redis+cluster:// URL)")
    return ClusterAddress(nodes=tuple(nodes), username=unquote(username) or None, password=unquote(password) or None)


def is_cluster(client: object) -> bool:
    """True for a Redis Cluster client: its MULTIs must stay within one hash slot."""
    return isinstance(client, RedisCluster)


def connect(settings: Settings, role: Role) -> aioredis.Redis:
    """A redis.asyncio client for `settings.redis_url` with `role`'s timeouts (no I/O until first use)."""
    try:
        timeouts = _TIMEOUTS[role]
    except KeyError:
        raise ValueError(f"unknown Redis client role {role!r}; expected one of {', '.join(ROLES)}") from None
    limit = settings.redis_timeout_s
    connect_timeout = limit if timeouts.bound_connect else None
    reply_timeout = limit if timeouts.bound_replies else None
    if settings.redis_url.startswith(SENTINEL_SCHEME + "://"):
        return _sentinel_primary(parse_sentinel_url(settings.redis_url), connect_timeout, reply_timeout)
    if settings.redis_url.startswith(CLUSTER_SCHEME + "://"):
        address = parse_cluster_url(settings.redis_url)
        return RedisCluster(  # type: ignore[return-value]  # the same command API, routed by slot
            startup_nodes=[ClusterNode(host, port) for host, port in address.nodes],
            username=address.username, password=address.password,
            socket_connect_timeout=connect_timeout, socket_timeout=reply_timeout,
        )
    client = aioredis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=connect_timeout, socket_timeout=reply_timeout,
    )
    # Set on the pool, not passed to from_url: a unix:// URL's own class would override it there.
    # No connection exists yet, so every one the pool opens packs in C (see shared.store.packing).
    client.connection_pool.connection_class = packed_connection_class(settings.redis_url)
    return client


def _sentinel_primary(address: SentinelAddress, connect_timeout: float | None,
                      reply_timeout: float | None) -> aioredis.Redis:
    """The current primary of `address.master`, re-resolved through the sentinels on every reconnect.

    Asking a sentinel is bounded by the connect timeout whatever the role: a dead sentinel is
    skipped for the next one, not waited on.
    """
    sentinel_kwargs: dict[str, object] = {"socket_timeout": connect_timeout, "socket_connect_timeout": connect_timeout}
    if address.sentinel_password:
        sentinel_kwargs["password"] = address.sentinel_password
    manager = Sentinel(list(address.sentinels), sentinel_kwargs=sentinel_kwargs)
    return manager.master_for(
        address.master, redis_class=aioredis.Redis, db=address.db, username=address.username,
        password=address.password, socket_connect_timeout=connect_timeout, socket_timeout=reply_timeout,
    )
