"""Commands packed by hiredis are byte for byte what redis-py's own asyncio packer writes."""

from __future__ import annotations

import pytest
import redis.asyncio.connection as aioconnection

from shared.settings import load_settings
from shared.store.connect import connect
from shared.store.packing import PackedConnection, PackedSSLConnection, PackedUnixConnection

_REPORT_XADD = ("XADD", "trident:reports", "MAXLEN", "~", 100000, "*",
                *(part for i in range(100) for part in (f"field_{i}", f"välue-{i}")), b"raw", b"\x00\xff")


def _packed(connection: aioconnection.AbstractConnection, *args: object) -> bytes:
    return b"".join(connection.pack_command(*args))


@pytest.mark.parametrize("args", [
    _REPORT_XADD,
    ("EVALSHA", "ab" * 20, 3, "k1", "k2", "k3", "lease-1", 30000, "0.5"),
    ("CONFIG GET", "maxmemory"),  # a two-word name: redis-py's packer splits it
    ("SET", "k", 1.5),  # a float: redis-py's repr, never hiredis's formatting
    ("SET", "k", memoryview(b"view")),
])
def test_packed_commands_are_byte_identical(args: tuple[object, ...]) -> None:
    assert _packed(PackedConnection(), *args) == _packed(aioconnection.Connection(), *args)


def test_a_report_xadd_is_one_write() -> None:
    assert len(PackedConnection().pack_command(*_REPORT_XADD)) == 1


@pytest.mark.parametrize(("url", "expected"), [
    ("unix:///tmp/redis.sock", PackedUnixConnection), ("redis://127.0.0.1:6379/0", PackedConnection),
    ("rediss://example:6380/0", PackedSSLConnection),
])
async def test_every_service_client_packs_in_c(url: str, expected: type) -> None:
    client = connect(load_settings(env={}, redis_url=url), "worker")
    try:
        assert client.connection_pool.connection_class is expected
    finally:
        await client.aclose()
