"""The `trident` command as an operator runs it: real subprocesses, a real Redis, the simulator."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal as signals
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack
import pytest
import redis

from shared.codec import encode_frame
from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from sim.server import RunningSimulator
from tests.support.e2e import wait_until
from tools.cli import main
from tools.send import read_signals

SIGNALS = [{"correlation_id": f"c{i}", "n": i} for i in range(3)]


@pytest.mark.parametrize(
    "data",
    [
        b"".join(json.dumps(s).encode() + b"\n" for s in SIGNALS) + b"\n",
        b"".join(encode_frame(s) for s in SIGNALS),
        b"".join(msgpack.packb(s) for s in SIGNALS),
    ],
    ids=["jsonl", "msgpack-frames", "msgpack-stream"],
)
def test_read_signals_understands_every_input_format(data: bytes) -> None:
    assert list(read_signals(io.BufferedReader(io.BytesIO(data)))) == SIGNALS


def test_run_without_credentials_refuses_to_start_with_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("TRIDENT_"):
            monkeypatch.delenv(name)
    assert main(["run", "--socket", "/tmp/never-created.sock"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TRIDENT_API_KEY" in err
    assert not Path("/tmp/never-created.sock").exists()


async def test_run_and_send_as_subprocesses_then_sigterm_stops_cleanly(
    redis_url: str, simulator: RunningSimulator
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tri-cli-"))
    sock = workdir / "signals.sock"
    env = {**os.environ, "TRIDENT_API_KEY": DEMO_API_KEY, "TRIDENT_API_SECRET": DEMO_API_SECRET,
           "TRIDENT_API_PASSPHRASE": DEMO_API_PASSPHRASE, "TRIDENT_SOCKET": str(sock),
           "TRIDENT_REDIS_URL": redis_url, "TRIDENT_SPOOL_DIR": str(workdir / "spool")}
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "run", "--workers", "1", "--exchange-url", simulator.url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        await wait_until(lambda: sock.exists(), 30)
        client = redis.Redis.from_url(redis_url)
        client.hset("trident:{reg}:config", mapping={"enforce_pair": 0})
        # the simulator runs in this event loop, so the sender must not block it
        send = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tools.cli", "send", "--socket", str(sock), "--synthetic", "5",
            "--exchange-url", simulator.url, "--rate", "50", env=env, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(send.communicate(), 60)
        assert send.returncode == 0, err
        assert b"sent 5 signals" in err
        await wait_until(lambda: client.xlen("trident:reports") + _refused(client) == 5, 30)
    finally:
        supervisor.send_signal(signals.SIGTERM)
        started = time.monotonic()
        out, _ = supervisor.communicate(timeout=10)
    assert supervisor.returncode == 0, out.decode()[-2000:]
    assert time.monotonic() - started < 5
    assert not sock.exists()
    assert b"supervisor_stopped" in out


def _refused(client: redis.Redis) -> int:
    for key in client.scan_iter("trident:status:*"):
        status = client.hgetall(key)
        return sum(int(v) for k, v in status.items() if k.startswith(b"refused:"))
    return 0
