"""User mistakes end in one line naming what to fix, never a traceback (exit 2: usage or
configuration, 1: at run time); global options go before or after the subcommand; a closed
pipe ends quietly; a typo in a TRIDENT_* variable is named with the setting it was meant to be."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import structlog

from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from tools.cli import main


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("TRIDENT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRIDENT_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("TRIDENT_API_SECRET", DEMO_API_SECRET)
    monkeypatch.setenv("TRIDENT_API_PASSPHRASE", DEMO_API_PASSPHRASE)
    yield Path(tempfile.mkdtemp(prefix="tri-clierr-"))


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_run_refuses_a_socket_a_live_process_serves(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = clean_env / "live.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        code = main(["run", "--socket", str(path), "--spool-dir", str(clean_env / "spool")])
    assert code == 2 and "served by a live process" in one_line(capsys)


def test_run_refuses_a_socket_directory_it_cannot_create(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / "file").write_text("not a directory")
    code = main(["run", "--socket", str(clean_env / "file" / "s.sock"), "--spool-dir", str(clean_env / "spool")])
    err = one_line(capsys)
    assert code == 2 and "cannot use socket_path" in err


def test_run_refuses_an_unusable_spool_directory(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / "spool").write_text("a file")
    code = main(["run", "--socket", str(clean_env / "s.sock"), "--spool-dir", str(clean_env / "spool")])
    err = one_line(capsys)
    assert code == 2 and "cannot create spool_dir" in err


def test_send_names_the_missing_socket_and_the_missing_file(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signals = clean_env / "signals.jsonl"
    signals.write_text('{"correlation_id": "x"}\n')
    missing = clean_env / "nobody.sock"
    assert main(["send", str(signals), "--socket", str(missing)]) == 1
    assert str(missing) in one_line(capsys)
    assert main(["send", str(clean_env / "absent.jsonl"), "--socket", str(missing)]) == 2
    assert "absent.jsonl" in one_line(capsys)
    signals.write_text("{not json\n")
    assert main(["send", str(signals), "--socket", str(missing)]) == 2
    assert "not JSON lines" in one_line(capsys)


def test_send_synthetic_without_an_exchange(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    assert main(["send", "--synthetic", "5", "--exchange-url", url, "--socket", str(clean_env / "s.sock")]) == 1
    err = one_line(capsys)
    assert url in err and "trident sim" in err


def test_demo_with_an_unreachable_redis(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    assert main(["demo", "--redis-url", url]) == 1
    assert f"cannot reach Redis at {url}" in one_line(capsys)


def test_bench_without_the_bench_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m == "bench" or m.startswith("bench.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it now fails as if absent
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    assert main(["bench", "--quick"]) == 2
    assert "bench extra" in one_line(capsys)


def test_an_unknown_trident_variable_is_named_with_the_nearest_setting(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRIDENT_WORKES", "8")
    assert main(["ctl", "--help"]) == 0
    err = capsys.readouterr().err
    assert "TRIDENT_WORKES is not a Trident setting" in err and "did you mean TRIDENT_WORKERS?" in err


def test_global_options_before_or_after_the_subcommand_and_cap_upper_cases(
    clean_env: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ctl", "cap", "usdt", "100", "--redis-url", redis_url]) == 0
    assert "caps: USDT=100" in capsys.readouterr().out
    assert main(["--redis-url", redis_url, "ctl", "config"]) == 0
    assert "caps: USDT=100" in capsys.readouterr().out
    assert main([f"--redis-url={redis_url}", "ctl", "check", "--min-supervisors", "0"]) == 0
    assert redis.Redis.from_url(redis_url).hget("trident:{reg}:config", "cap:USDT") == b"100"
    assert main(["--redis-url"]) == 2 and "needs a value" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(redis_url: str) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # whoever reads (`| head`) is gone before the first line
    try:
        proc = subprocess.run([sys.executable, "-m", "tools.cli", "ctl", "status", "--redis-url", redis_url],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 1 and proc.stderr == b"", proc.stderr


async def test_a_supervisor_started_against_an_unreachable_redis_logs_an_error(clean_env: Path) -> None:
    from tests.support.e2e import e2e_settings, running_supervisor  # noqa: PLC0415

    url = f"redis://127.0.0.1:{_free_port()}/0"
    settings = e2e_settings(url, "http://127.0.0.1:9", clean_env, workers=0, metrics_port=0)
    with structlog.testing.capture_logs() as logs:
        async with running_supervisor(settings):
            pass
    errors = [entry for entry in logs if entry["event"] == "redis_unreachable"]
    assert errors and all(e["log_level"] == "error" for e in errors) and errors[0].get("redis_url", url) == url


async def test_a_non_numeric_registry_setting_refuses_bad_config_with_an_error_naming_it(
    clean_env: Path, redis_url: str, simulator, redis_client
) -> None:
    from shared.codec import encode_frame  # noqa: PLC0415
    from tests.support.e2e import e2e_settings, fresh_signal, markets_of, running_supervisor  # noqa: PLC0415
    from tools.send import send_frames  # noqa: PLC0415

    await redis_client.hset("trident:{reg}:config", "slots", "abc")
    markets = await markets_of(simulator)
    settings = e2e_settings(redis_url, simulator.url, clean_env, workers=0, metrics_port=0)
    with structlog.testing.capture_logs() as logs:
        async with running_supervisor(settings) as supervisor:
            frames = [encode_frame(fresh_signal(markets, i, f"badcfg-{i}")) for i in range(3)]
            await send_frames(settings.socket_path, frames, progress=False)
            await supervisor.wait_frames(3, 10)
            assert supervisor.admission.refusals["bad_config"] == 3
    errors = [entry for entry in logs if entry["event"] == "fleet_refusing_signals"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"  # rate-limited: one for three refusals
    assert errors[0]["reason"] == "bad_config" and 'field slots is not a whole number: "abc"' in errors[0]["detail"]
