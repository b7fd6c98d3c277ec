"""`trident ctl` commands and their output, and the fleet readers behind status/check, on fakeredis.

The same commands against a running supervisor (cancel delivery, halt draining) are in
tests/system/test_ctl.py; here only what they read and write and how they print it.
"""

from __future__ import annotations

import asyncio
import json
import fakeredis
import pytest

from shared.report import report_to_fields
from shared.store import keys
from shared.store.fleet import FleetMember, fleet_problems, publish_status, read_fleet, withdraw_status
from tests.unit.test_report import report
from tools import ctl


@pytest.fixture
def run_ctl(fake_server: fakeredis.FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """`await run_ctl(*ARGS)`: `trident ctl ARGS` in-process on the test's fakeredis server -> (exit code, output)."""
    monkeypatch.setattr(ctl, "connect", lambda settings, role: fakeredis.FakeAsyncRedis(server=fake_server))

    async def run(*args: str) -> tuple[int, str]:  # ctl runs its own event loop: give it a thread
        try:
            code = await asyncio.to_thread(ctl.main, ["--redis-url", "redis://127.0.0.1:1/0", *args])
        except SystemExit as usage:  # argparse's own refusal
            code = int(usage.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


STATUS = {"host": "box", "mode": "paper", "workers": "2", "workers_alive": "2", "in_flight": "1", "admitted": "7",
          "uptime_s": "3725", "version": "0.1.0", "metrics": "127.0.0.1:9464", "refused:isolation": "3",
          "outcome:filled": "6"}


async def test_status_and_check_read_the_fleet_index_status_hashes_and_health_keys(fake_redis, run_ctl) -> None:
    assert await run_ctl("check") == (1, "CRITICAL: 0 live supervisor(s), expected at least 1\n")
    assert (await run_ctl("status"))[1].endswith("(no live supervisor)\n")
    await publish_status(fake_redis, "box:42", STATUS, refusals={"isolation": 3})
    await fake_redis.set(keys.worker_health_key("box:42", 0), "ongoing=1 done=6")
    assert await run_ctl("check") == (1, "CRITICAL: box:42: no health key from worker(s) 1\n")
    await fake_redis.set(keys.worker_health_key("box:42", 1), "ongoing=0 done=0")
    assert await run_ctl("check") == (0, "OK: 1 supervisor(s), 2 worker(s) alive\n")
    assert (await run_ctl("check", "--host", "elsewhere"))[0] == 1

    code, out = await run_ctl("status")
    assert code == 0, out
    assert out.splitlines()[0] == "fleet: 1 supervisor(s), 0 execution(s) in flight"
    row = out.splitlines()[4].split()
    assert row == ["box:42", "paper", "2/2", "1", "7", "1h02m", "0.1.0", "127.0.0.1:9464"]
    assert "  refused:  isolation=3" in out and "  outcomes: filled=6" in out and "  w1: ongoing=0 done=0" in out
    fleet = json.loads((await run_ctl("status", "--json"))[1])
    assert fleet["supervisors"][0]["workers"] == {"0": "ongoing=1 done=6", "1": "ongoing=0 done=0"}
    assert await fake_redis.hgetall(keys.REFUSALS) == {b"isolation": b"3"}

    await withdraw_status(fake_redis, "box:42", 2, refusals={"isolation": 1})
    assert await read_fleet(fake_redis) == [] and await fake_redis.hget(keys.REFUSALS, "isolation") == b"4"
    assert await fake_redis.exists(keys.worker_health_key("box:42", 0)) == 0


async def test_settings_commands_write_the_registry_config_and_refuse_bad_values(fake_redis, run_ctl) -> None:
    assert await run_ctl("config") == (0, "paused=no halted=no slots=4 same-quote=off pair-isolation=on caps: none\n")
    for args in (["slots", "3"], ["same-quote", "on"], ["pair-isolation", "off"], ["cap", "USDT", "150.5"]):
        assert (await run_ctl(*args))[0] == 0, args
    config = {k.decode(): v.decode() for k, v in (await fake_redis.hgetall(keys.CONFIG)).items()}
    assert config == {"slots": "3", "enforce_same_quote": "1", "enforce_pair": "0", "cap:USDT": "150.5"}
    assert (await run_ctl("cap", "USDT", "none"))[1].endswith("caps: none\n")
    for bad in (["slots", "-1"], ["cap", "USDT", "lots"], ["same-quote", "maybe"]):
        assert (await run_ctl(*bad))[0] == 2, bad
    assert (await run_ctl("pause"))[1].startswith("paused=yes halted=no")
    assert (await run_ctl("resume"))[1].startswith("paused=no halted=no")
    assert await fake_redis.hget(keys.CONFIG, "slots") == b"3"


async def test_halt_and_cancel_answer_no_when_nothing_takes_them(fake_redis, run_ctl) -> None:
    code, out = await run_ctl("halt", "--wait", "0.1")
    assert code == 0 and out.endswith("halted: nothing in flight\n")
    assert await fake_redis.hgetall(keys.CONFIG) == {b"paused": b"1", b"halt": b"1"}
    assert await run_ctl("cancel", "c-ghost") == (1, "c-ghost is not in flight (finished already, or never admitted)\n")
    await fake_redis.hset(keys.LEASE_DATA, "c-1", "{}")
    code, out = await run_ctl("cancel", "c-1", "--wait", "0.1")  # no supervisor to deliver it
    assert (code, out) == (1, "cancel of c-1 requested; no supervisor picked it up within 0.1s\n")
    assert (await run_ctl("halt", "--wait", "0.1"))[1].endswith("1 execution(s) still in flight after 0.1s\n")


async def test_inflight_and_reports_print_tables(fake_redis, run_ctl) -> None:
    assert await run_ctl("inflight") == (0, "nothing in flight\n")
    assert await run_ctl("reports") == (0, "no reports yet\n")
    seconds, _ = await fake_redis.time()
    now_ms = int(seconds) * 1000
    record = {"token": "9", "triangle": "BTC-USDT/ETH-BTC/ETH-USDT", "quote": "USDT", "pairs": "BTC-USDT,ETH-BTC",
              "notional": "100", "owner": "box:42", "started_ms": str(now_ms - 2000)}
    await fake_redis.hset(keys.LEASE_DATA, "c-7", json.dumps(record))
    await fake_redis.zadd(keys.LEASES, {"c-7": now_ms + 28_000})
    code, out = await run_ctl("inflight")
    header, row = out.splitlines()
    assert code == 0 and header.split()[:3] == ["CORRELATION", "ID", "SUPERVISOR"]
    assert row.split()[:5] == ["c-7", "box:42", "BTC-USDT/ETH-BTC/ETH-USDT", "USDT", "100"]

    await fake_redis.xadd(keys.REPORTS, report_to_fields(report(3, correlation_id="c-7", error="x" * 80)))
    code, out = await run_ctl("reports", "-n", "1")
    row = out.splitlines()[1].split()
    assert code == 0 and row[1:6] == ["c-7", "filled", "BTC-USDT,ETH-BTC,ETH-USDT", "-0.031", "-3.125"]
    assert row[-1] == "x" * 60  # errors are cut to the column


async def test_a_redis_error_is_one_line_and_exit_2(run_ctl, monkeypatch: pytest.MonkeyPatch) -> None:
    class Down(fakeredis.FakeAsyncRedis):
        async def hgetall(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise ConnectionError("Connection refused")

    monkeypatch.setattr(ctl, "connect", lambda settings, role: Down())
    code, out = await run_ctl("config")
    assert (code, out) == (2, "trident ctl: Redis error: Connection refused\n")


def test_fleet_problems_name_dead_workers_and_silent_health_keys() -> None:
    healthy = FleetMember("a:1", {"host": "a", "workers": "2", "workers_alive": "2", "metrics": "127.0.0.1:9464"},
                          {0: "line", 1: "line"})
    assert fleet_problems([healthy]) == []
    sick = FleetMember("b:2", {"host": "b", "workers": "2", "workers_alive": "1", "metrics": "unavailable (x)"},
                       {0: "line", 1: None})
    assert fleet_problems([healthy, sick]) == [
        "b:2: 1/2 workers alive", "b:2: no health key from worker(s) 1", "b:2: metrics endpoint unavailable (x)",
    ]
    assert fleet_problems([healthy, sick], host="a") == []
    assert fleet_problems([healthy], min_supervisors=2) == ["1 live supervisor(s), expected at least 2"]
