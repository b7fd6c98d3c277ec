"""The execution log: one INFO line per outcome with money in its currency, live orders one line
each, and in the human file log the seed's readable lines."""

from __future__ import annotations

import io
import json
from decimal import Decimal as D
from pathlib import Path

import structlog

from shared.logs import close_log_file, configure_logging
from shared.report import Status, Unwind
from tests.unit.test_report import report
from worker.context import client_oid
from worker.execution_log import log_execution


def test_a_paper_outcome_is_one_line_with_every_amount_in_its_currency() -> None:
    with structlog.testing.capture_logs() as logs:
        log_execution(report(3))
    (entry,) = logs
    assert entry["event"] == "execution" and entry["log_level"] == "info"
    assert entry["correlation_id"] == "c-1" and entry["status"] == "filled"
    assert entry["triangle"] == "BTC-USDT→ETH-BTC→ETH-USDT"
    assert (entry["spent"], entry["returned"], entry["profit"]) == ("100 USDT", "99.969 USDT", "-0.031 USDT")
    assert entry["effective_bps"] == -3.125 and entry["first_order_ms"] == 0.412 and entry["total_ms"] == 97.0
    assert entry["line"].startswith("FILLED c-1 BTC-USDT→ETH-BTC→ETH-USDT spent 100 USDT returned 99.969 USDT")


def test_a_live_execution_logs_each_order_then_the_outcome() -> None:
    unwind = Unwind(1, "BTC", D("0.002"), "BTC-USDT", "sell", "o-u", D("0.002"), D("99.8"), D("0.1"), "USDT")
    failed = report(1, mode="live", status=Status.UNWOUND, error="leg 1 rejected: 200004 balance",
                    unwinds=(unwind,))
    with structlog.testing.capture_logs() as logs:
        log_execution(failed, "200004")
    assert [e["event"] for e in logs] == ["order_filled", "order_rejected", "order_unwound", "execution"]
    filled, rejected, unwound, outcome = logs
    assert filled["client_oid"] == client_oid("c-1", 0) and filled["pair"] == "BTC-USDT" and filled["side"] == "buy"
    assert (filled["filled_size"], filled["fee"], filled["fee_currency"], filled["latency_ms"]) == (
        "0.002", "0.000002", "BTC", 12.5)
    assert filled["line"] == "FILL BTC-USDT buy 0.002 @ 50000 fee 0.000002 BTC"
    assert rejected["leg"] == 1 and rejected["pair"] == "ETH-BTC" and rejected["error_code"] == "200004"
    assert unwound["line"] == "UNWIND BTC-USDT sell 0.002 BTC → 99.8 fee 0.1 USDT"
    assert outcome["status"] == "unwound" and outcome["error_code"] == "200004"


def test_the_file_log_reads_like_the_seed_and_stdout_stays_json(tmp_path: Path) -> None:
    path = tmp_path / "trident.log"
    out = io.StringIO()
    configure_logging("worker-0", "info", str(path), stream=out)
    log_execution(report(3, mode="live"))
    close_log_file()
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    assert lines[0].endswith("[INFO    ] worker-0 FILL BTC-USDT buy 0.002 @ 50000 fee 0.000002 BTC")
    assert " worker-0 FILLED c-1 BTC-USDT→ETH-BTC→ETH-USDT spent 100 USDT" in lines[3]
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["order_filled"] * 3 + ["execution"]
