"""Two supervisors as two hosts (distinct host identities) whose clocks are 90 s apart, one each
way, under the chaos run (tests/support via bench.chaos): what crosses hosts runs on Redis's clock.

Before: the host 90 s behind refused every book as `future_book`; the host 90 s ahead stamped
each triangle's last trade 90 s into the future (every other signal on it `stale`), evicted the
other supervisor from the fleet index (its score looked > 60 s old), and its killed supervisor's
leases would have outlived the TTL by its skew had lease times been its own."""

from __future__ import annotations

from bench.chaos import run_chaos


async def test_skewed_hosts_keep_isolation_expiry_and_the_stale_rule_on_the_redis_clock() -> None:
    figures = await run_chaos(300, rate=100, extra_env=[
        {"TRIDENT_HOST_ID": "host-behind", "TRIDENT_CLOCK_SKEW_MS": "-90000"},
        {"TRIDENT_HOST_ID": "host-ahead", "TRIDENT_CLOCK_SKEW_MS": "90000"},
    ])
    assert figures["isolation_violations"] == 0 and figures["client_oids_placed_twice"] == 0, figures
    assert figures["duplicate_reports"] == 0 and figures["executions_without_report"] == 0, figures
    # a SIGKILLed supervisor's leases expired by the TTL on Redis's clock, whichever host it was
    assert figures["leases_left"] == 0 and figures["settle_s"] < 15, figures
    by_host = figures["reports_by_host"]
    assert by_host.get("host-behind", 0) >= 5 and by_host.get("host-ahead", 0) >= 5, figures
    assert figures["executions"] >= 20, figures  # the ahead host's trades did not make every book stale
