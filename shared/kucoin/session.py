"""The one HTTP session a worker keeps warm for its whole life.

An order's latency is dominated by TCP + TLS setup when a connection has to be opened, so each
worker shares one keep-alive pool across every call. Keep-alive is 60 s: shorter than the
exchange's idle cut-off in practice, so the pool drops a connection before the server does and
the first placement after a lull does not land on a half-closed socket. DNS is cached so a
resolver hiccup cannot stall the hot path.
"""

from __future__ import annotations

import asyncio

import aiohttp
import aiohttp.connector

__all__ = ["make_session"]

_KEEPALIVE_S = 60.0
_DNS_CACHE_S = 300
_MAX_CONNECTIONS = 64
_MAX_CONNECTIONS_PER_HOST = 32
_CONNECT_TIMEOUT_CAP_S = 5.0
# True on Pythons with the SSL-transport leak (and on aiohttp too old to know); aiohttp warns if
# cleanup is requested where the leak is fixed.
_NEEDS_CLEANUP_CLOSED: bool = getattr(aiohttp.connector, "NEEDS_CLEANUP_CLOSED", True)


def make_session(timeout_s: float = 10.0) -> aiohttp.ClientSession:
    """A keep-alive `ClientSession`; call inside the running loop that will use it.

    `timeout_s` bounds a whole call and each socket read; connecting gets at most 5 s because a
    connect that slow means the route is broken, not busy.
    """
    asyncio.get_running_loop()  # fail here, clearly, rather than bind the session to no loop
    connector = aiohttp.TCPConnector(
        limit=_MAX_CONNECTIONS,
        limit_per_host=_MAX_CONNECTIONS_PER_HOST,
        keepalive_timeout=_KEEPALIVE_S,
        ttl_dns_cache=_DNS_CACHE_S,
        enable_cleanup_closed=_NEEDS_CLEANUP_CLOSED,
    )
    timeout = aiohttp.ClientTimeout(
        total=timeout_s,
        sock_connect=min(timeout_s, _CONNECT_TIMEOUT_CAP_S),
        sock_read=timeout_s,
    )
    # No cookie jar: the API authenticates every call by its signature, and the default jar
    # filters its (empty) cookies for every request's URL — measurable on a warm order call
    # (bench.http_cost).
    return aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False,
                                 cookie_jar=aiohttp.DummyCookieJar())
