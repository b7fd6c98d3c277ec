"""Live-mode safety at start: credentials are required, the live settings are validated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.credentials import Credentials
from shared.settings import SettingsError, load_settings
from supervisor.main import CliError, check_can_start
from tools.cli import main


def test_live_service_without_credentials_refuses_to_start_with_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("TRIDENT_"):
            monkeypatch.delenv(name)
    sock = tmp_path / "never.sock"
    assert main(["run", "--mode", "live", "--socket", str(sock), "--spool-dir", str(tmp_path / "spool")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "live mode places real orders" in err and "TRIDENT_API_KEY" in err
    assert not sock.exists()


def test_live_with_credentials_may_start_and_paper_without_them_may_not() -> None:
    credentials = Credentials("key", "secret", "passphrase")
    check_can_start(load_settings(env={}, mode="live", credentials=credentials))
    with pytest.raises(CliError, match="order-test"):
        check_can_start(load_settings(env={}, mode="paper"))


def test_live_settings_defaults_and_validation() -> None:
    settings = load_settings(env={})
    assert (settings.unwind_policy, settings.live_fills) == ("unwind", "sync")
    env = {"TRIDENT_UNWIND_POLICY": "HOLD", "TRIDENT_LIVE_FILLS": "ws", "TRIDENT_FILL_TIMEOUT_S": "1.5"}
    settings = load_settings(env=env)
    assert (settings.unwind_policy, settings.live_fills, settings.fill_timeout_s) == ("hold", "ws", 1.5)
    with pytest.raises(SettingsError, match="unwind_policy"):
        load_settings(env={"TRIDENT_UNWIND_POLICY": "sell-everything"})
    with pytest.raises(SettingsError, match="resolve_timeout_s"):
        load_settings(env={}, resolve_timeout_s=0)
