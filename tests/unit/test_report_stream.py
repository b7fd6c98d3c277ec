"""A report through the publisher and back out of the stream, field for field, on fakeredis.

Spooling across a real outage and its replay order are in tests/system/test_publish.py.
"""

from __future__ import annotations

from pathlib import Path

from shared.report import report_from_fields
from shared.store.reports import ReportPublisher
from tests.unit.test_report import report


async def test_a_published_report_reads_back_equal(fake_redis, tmp_path: Path) -> None:
    publisher = ReportPublisher(fake_redis, "trident:reports", 1000, tmp_path / "spool.jsonl")
    originals = [report(legs, correlation_id=f"c-{legs}") for legs in (0, 1, 3)]
    for original in originals:
        assert await publisher.publish(original)
    entries = await fake_redis.xrange("trident:reports")
    assert [report_from_fields(fields) for _, fields in entries] == originals
    assert publisher.spooled == 0 and not (tmp_path / "spool.jsonl").exists()


async def test_an_unreachable_stream_spools_and_the_replay_reads_back_equal(fake_server, tmp_path: Path) -> None:
    import fakeredis

    client = fakeredis.FakeAsyncRedis(server=fake_server)
    publisher = ReportPublisher(client, "trident:reports", 1000, tmp_path / "spool.jsonl")
    fake_server.connected = False
    assert not await publisher.publish(report(3, correlation_id="c-down"))
    assert publisher.spooled == 1
    fake_server.connected = True
    assert await publisher.replay() == 1
    [(_, fields)] = await client.xrange("trident:reports")
    assert report_from_fields(fields) == report(3, correlation_id="c-down") and publisher.spooled == 0
    await client.aclose()
