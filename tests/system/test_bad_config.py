"""`trident run` with bad configuration: each case one clear line on stderr and exit 2, no
traceback, no hang, nothing left running (issue 11, item 9). Real subprocesses, a real Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sim.config import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET


@pytest.fixture
def place() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tri-bad-"))
    yield path


def _run(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIDENT_")}
    env.update(TRIDENT_API_KEY=DEMO_API_KEY, TRIDENT_API_SECRET=DEMO_API_SECRET,
               TRIDENT_API_PASSPHRASE=DEMO_API_PASSPHRASE, TRIDENT_METRICS_PORT="0", TRIDENT_WORKERS="1")
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "tools.cli", "run", *args], env=env, capture_output=True,
                          text=True, timeout=30)


def _fifo(place: Path) -> str:
    path = place / "secret.fifo"
    os.mkfifo(path)
    return str(path)


def _binary(place: Path) -> str:
    path = place / "secret.bin"
    path.write_bytes(b"\xff\xfe\x00secret")
    return str(path)


def _served_socket(place: Path) -> str:
    path = place / "taken.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    _LISTENERS.append(listener)
    return str(path)


def _regular_file(place: Path) -> str:
    path = place / "plain.txt"
    path.write_text("not a socket")
    return str(path)


def _blocked_dir(place: Path) -> str:
    (place / "file").write_text("")
    return str(place / "file" / "sub")  # a directory under a regular file cannot be created


_LISTENERS: list[socket.socket] = []

CASES: list[tuple[str, Callable[[Path, str], tuple[dict[str, str], list[str]]], str]] = [
    ("http redis url", lambda p, r: ({}, ["--redis-url", "http://127.0.0.1:6379/0"]), "redis_url"),
    ("redis port not a number", lambda p, r: ({}, ["--redis-url", "redis://127.0.0.1:notaport/0"]), "port"),
    ("redis not running (tcp)", lambda p, r: ({}, ["--redis-url", "redis://127.0.0.1:1/0"]), "Redis does not answer"),
    ("redis not running (unix)", lambda p, r: ({}, ["--redis-url", f"unix://{p}/none.sock"]), "Redis does not answer"),
    ("credential file not utf-8", lambda p, r: ({"TRIDENT_API_SECRET": "", "TRIDENT_API_SECRET_FILE": _binary(p)},
                                                []), "UTF-8"),
    ("credential file a fifo", lambda p, r: ({"TRIDENT_API_SECRET": "", "TRIDENT_API_SECRET_FILE": _fifo(p)}, []),
     "regular file"),
    ("socket served by a live process", lambda p, r: ({}, ["--socket", _served_socket(p)]), "live process"),
    ("socket path a regular file", lambda p, r: ({}, ["--socket", _regular_file(p)]), "not a socket"),
    ("socket path too long", lambda p, r: ({}, ["--socket", str(p / ("s" * 120))]), "AF_UNIX"),
    ("socket dir cannot be created", lambda p, r: ({}, ["--socket", _blocked_dir(p) + "/x.sock"]), "socket_path"),
    ("spool dir cannot be created", lambda p, r: ({}, ["--spool-dir", _blocked_dir(p)]), "spool_dir"),
    ("exchange url not a url", lambda p, r: ({}, ["--exchange-url", "not a url"]), "exchange_url"),
]


@pytest.mark.parametrize(("case", "make", "named"), CASES, ids=[c[0] for c in CASES])
def test_bad_configuration_is_one_line_and_exit_2(
    case: str, make: Callable[[Path, str], tuple[dict[str, str], list[str]]], named: str, place: Path,
    redis_url: str,
) -> None:
    env, args = make(place, redis_url)
    base = ["--redis-url", redis_url, "--socket", str(place / "ok.sock"), "--spool-dir", str(place / "spool")]
    result = _run(env, *base, *args)  # later flags win
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith(("trident: ", "trident run: ")) and named in lines[0], result.stderr
