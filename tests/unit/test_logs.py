"""Logging: real rendered output (stdout JSON, console, file) never contains a secret."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from shared.credentials import Credentials
from shared.logs import close_log_file, configure_logging

CREDENTIALS = Credentials("key-abc", "SECRET-5f4e3d2c", "PASS-9a8b7c")
SECRET, PASSPHRASE = CREDENTIALS.api_secret, CREDENTIALS.api_passphrase


class TTYBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


class Leaky:
    def __str__(self) -> str:
        return f"Leaky({SECRET})"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    close_log_file()
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def emit_everything() -> None:
    log = structlog.get_logger()
    log.info("plain", api_secret=SECRET, value=SECRET, passphrase="not-the-real-one")
    log.info(f"signing with {SECRET} and {PASSPHRASE}")
    log.info("formatted %s", PASSPHRASE)
    log.warning(
        "nested",
        headers={"KC-API-SIGN": "c2lnbmF0dXJl", "KC-API-PASSPHRASE": "ZW5jcnlwdGVk", "KC-API-KEY": "key-abc"},
        deep={"a": [1, {"b": (f"x{SECRET}y", [PASSPHRASE])}]},
        blob=SECRET.encode(),
        by_key={SECRET: 1, 7: PASSPHRASE},
        obj=Leaky(),
    )
    try:
        raise RuntimeError(f"auth failed for passphrase {PASSPHRASE} / {SECRET}")
    except RuntimeError:
        log.exception("request_failed")


def assert_clean(text: str) -> None:
    assert SECRET not in text
    assert PASSPHRASE not in text
    assert "not-the-real-one" not in text  # a sensitive key is masked whatever its value
    assert "c2lnbmF0dXJl" not in text and "ZW5jcnlwdGVk" not in text


def test_json_stdout_and_file_never_contain_secrets(tmp_path: Path) -> None:
    stream, log_file = io.StringIO(), tmp_path / "trident.log"
    configure_logging("supervisor", "info", log_file=str(log_file), secrets=CREDENTIALS.secrets(), stream=stream)
    emit_everything()
    close_log_file()

    output = stream.getvalue()
    assert_clean(output)
    events = [json.loads(line) for line in output.splitlines()]
    assert [e["event"] for e in events] == ["plain", "signing with *** and ***", "formatted ***", "nested", "request_failed"]
    assert events[0]["api_secret"] == "***" and events[0]["value"] == "***" and events[0]["passphrase"] == "***"
    assert events[3]["headers"]["KC-API-KEY"] == "key-abc"  # identifiers stay readable
    assert events[3]["deep"] == {"a": [1, {"b": ["x***y", ["***"]]}]}
    assert "RuntimeError: auth failed for passphrase *** / ***" in events[4]["exception"]
    assert all(e["process"] == "supervisor" and e["timestamp"].endswith("Z") for e in events)
    assert [e["level"] for e in events] == ["info", "info", "info", "warning", "error"]

    written = log_file.read_text()
    assert_clean(written)
    assert "signing with *** and ***" in written
    assert "RuntimeError: auth failed for passphrase *** / ***" in written
    assert written.count("supervisor") == 5


def test_console_renderer_on_a_terminal_is_redacted_too() -> None:
    stream = TTYBuffer()
    configure_logging("worker-0", "debug", secrets=CREDENTIALS.secrets(), stream=stream)
    emit_everything()
    output = stream.getvalue()
    assert_clean(output)
    assert "request_failed" in output and "auth failed for passphrase ***" in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output.splitlines()[0])  # human format, not JSON


def test_level_filtering_applies_to_stdout_and_file(tmp_path: Path) -> None:
    stream, log_file = io.StringIO(), tmp_path / "trident.log"
    configure_logging("supervisor", "warning", log_file=str(log_file), stream=stream)
    log = structlog.get_logger()
    log.debug("hidden-debug")
    log.info("hidden-info")
    log.warning("shown-warning")
    log.error("shown-error")
    close_log_file()
    for text in (stream.getvalue(), log_file.read_text()):
        assert "hidden" not in text
        assert "shown-warning" in text and "shown-error" in text


def test_contextvars_are_merged() -> None:
    stream = io.StringIO()
    configure_logging("supervisor", stream=stream)
    structlog.contextvars.bind_contextvars(correlation_id="c-42")
    structlog.get_logger().info("admitted")
    assert json.loads(stream.getvalue())["correlation_id"] == "c-42"


def test_reconfiguring_moves_output_and_closes_the_old_file(tmp_path: Path) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("p", stream=first, log_file=str(tmp_path / "a.log"))
    log = structlog.get_logger()  # module-level style logger, created before reconfiguring
    log.info("one")
    configure_logging("p", stream=second)
    log.info("two")
    assert "one" in first.getvalue() and "two" not in first.getvalue()
    assert "two" in second.getvalue()
    assert "one" in (tmp_path / "a.log").read_text()


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="loud"):
        configure_logging("p", "loud", stream=io.StringIO())
