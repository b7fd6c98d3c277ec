"""The Prometheus deployment files, checked by Prometheus' own tool.

`promtool check config` / `check rules` validate the scrape config and the alert rules;
`promtool test rules` runs deploy/prometheus/trident-alerts.test.yml, which makes every alert
fire on the failure it names and stay quiet on a healthy fleet. The rules must also follow the
house rules: a severity and a runbook on each, and only metrics a supervisor really exposes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from supervisor.metrics import SupervisorMetrics

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "trident-alerts.yml"
RULE_TESTS = PROMETHEUS / "trident-alerts.test.yml"
SEVERITIES = {"critical", "warning"}


def _alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus package)")
    return subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [("check", "config", "prometheus.yml"), ("check", "rules", RULES.name),
                                  ("test", "rules", RULE_TESTS.name)])
def test_promtool_accepts_the_config_and_every_alert_unit_test_passes(args: tuple[str, ...]) -> None:
    done = _promtool(*args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_severity_a_runbook_and_tests_that_fire_and_stay_quiet() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [check for test in tests for check in test.get("alert_rule_test", [])]
    fired = {check["alertname"] for check in checks if check.get("exp_alerts")}
    quiet = {check["alertname"] for check in checks if not check.get("exp_alerts")}
    names = [alert["alert"] for alert in _alerts()]
    assert len(names) == len(set(names))
    for alert in _alerts():
        name = alert["alert"]
        assert alert.get("labels", {}).get("severity") in SEVERITIES, name
        assert alert["annotations"].get("summary") and alert["annotations"].get("runbook"), name
        assert "\n" not in alert["annotations"]["runbook"].strip(), f"{name}: the runbook is one line"
        assert name in fired, f"{name}: no test makes it fire"
    expected = {"TridentRedisUnreachable", "TridentBadConfig", "TridentHaltedTooLong", "TridentSpoolGrowing",
                "TridentRateBudgetRefusals", "TridentExecutionsLost", "TridentStrandedInventory",
                "TridentNoSupervisorAlive"}
    assert expected <= set(names) and expected <= quiet


def test_alerts_use_only_metrics_a_supervisor_exposes() -> None:
    exposition = SupervisorMetrics(lambda: {}).render().decode()
    exposed = set()
    for family in text_string_to_metric_families(exposition):
        suffixes = ("_bucket", "_sum", "_count") if family.type == "histogram" else ("_total",) \
            if family.type == "counter" else ("",)
        exposed.update(family.name + suffix for suffix in suffixes)
    for alert in _alerts():
        used = set(re.findall(r"\btrident_\w+", alert["expr"]))
        assert used or 'up{job="trident"}' in alert["expr"], alert["alert"]  # or Prometheus' own scrape health
        assert used <= exposed, f"{alert['alert']}: {used - exposed} not exposed"
