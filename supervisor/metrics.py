"""Prometheus metrics for one supervisor and all of its worker processes, served over HTTP.

Counters and gauges are read at scrape time from `Supervisor.snapshot()` (the numbers the status
hash shows as text, so the two never disagree and the hot path pays nothing for them). Latency
histograms are fed from the `Done` messages every worker sends, so one endpoint per supervisor
covers every process it runs, without a multiprocess registry directory.

The endpoint is served from the supervisor's event loop by aiohttp and binds 127.0.0.1 unless
told otherwise: it has no authentication. All durations are in seconds (Prometheus' base unit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.channel import Done
from shared.report import Status
from shared.store.registry import REFUSAL_REASONS

__all__ = ["StatusValue", "SupervisorMetrics", "MetricsServer", "FIRST_ORDER_BUCKETS_S", "LEG_BUCKETS_S", "EXECUTION_BUCKETS_S"]

log = structlog.get_logger(__name__)

# Signal read → first order fired: hundreds of µs when healthy, so the buckets start at 100 µs.
FIRST_ORDER_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# One exchange round trip: a few ms to the simulator, tens to hundreds of ms to KuCoin.
LEG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EXECUTION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


# One snapshot value: counters and gauges are numbers, identity fields (version, mode, host) text.
StatusValue = int | float | str


def _number(fields: Mapping[str, StatusValue], name: str) -> float:
    value = fields.get(name, 0)
    return float(value) if isinstance(value, (int, float)) else 0.0


def _amount(text: str) -> float:
    """A decimal string from a worker as a counter increment; never negative (counters only rise)."""
    try:
        return max(float(text), 0.0)
    except ValueError:
        return 0.0


class _StatusCollector(Collector):
    """Turns one `Supervisor.snapshot()` into metric families at each scrape."""

    def __init__(self, status: Callable[[], Mapping[str, StatusValue]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        fields = self._status()
        admitted = CounterMetricFamily("trident_signals_admitted", "Signals admitted and dispatched to a worker.")
        admitted.add_metric([], _number(fields, "admitted"))
        yield admitted
        refused = CounterMetricFamily("trident_signals_refused", "Signals refused, by reason.", labels=["reason"])
        reasons = dict.fromkeys(REFUSAL_REASONS, 0.0)  # known reasons start at 0, so rate() sees the first one
        reasons.update({name[8:]: _number(fields, name) for name in fields if name.startswith("refused:")})
        for reason, count in sorted(reasons.items()):
            refused.add_metric([reason], count)
        yield refused
        outcomes = CounterMetricFamily("trident_executions", "Executions ended, by report status.", labels=["status"])
        statuses = dict.fromkeys((str(s) for s in Status), 0.0)
        statuses.update({name[8:]: _number(fields, name) for name in fields if name.startswith("outcome:")})
        for status, count in sorted(statuses.items()):
            outcomes.add_metric([status], count)
        yield outcomes
        respawns = CounterMetricFamily("trident_worker_respawns", "Worker processes replaced after an exit.")
        respawns.add_metric([], _number(fields, "respawns"))
        yield respawns
        for name, doc, field in (
            ("trident_in_flight", "Executions this supervisor holds a lease for.", "in_flight"),
            ("trident_workers", "Worker processes configured.", "workers"),
            ("trident_workers_alive", "Worker processes ready for jobs.", "workers_alive"),
            ("trident_paused", "1 while the fleet is paused (or halted).", "paused"),
            ("trident_halted", "1 while the fleet is halted.", "halted"),
            ("trident_uptime_seconds", "Seconds since this supervisor started.", "uptime_s"),
            ("trident_redis_reachable", "1 while this supervisor's last Redis poll (every 0.1 s) succeeded.",
             "redis_reachable"),
            ("trident_rate_budget_remaining", "Exchange weight left in the fleet's current rate window.",
             "rate_budget_remaining"),
        ):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], _number(fields, field))
            yield gauge
        spooled = GaugeMetricFamily("trident_spooled_reports", "Reports waiting in a local spool for Redis, by spool "
                                    "(worker-N, inline, supervisor).", labels=["spool"])
        for name in sorted(fields):
            if name.startswith("spooled:"):
                spooled.add_metric([name[8:]], _number(fields, name))
        yield spooled
        info = GaugeMetricFamily("trident_info", "Constant 1, labelled with what this supervisor is.",
                                 labels=["version", "mode", "host"])
        info.add_metric([str(fields.get("version", "")), str(fields.get("mode", "")), str(fields.get("host", ""))], 1.0)
        yield info


class SupervisorMetrics:
    """One registry per supervisor (never the global one: tests run several supervisors per process)."""

    def __init__(self, status: Callable[[], Mapping[str, StatusValue]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StatusCollector(status))
        self.first_order = Histogram(
            "trident_signal_to_first_order_seconds", "Signal frame read to the first order fired.",
            buckets=FIRST_ORDER_BUCKETS_S, registry=self.registry,
        )
        self.leg_latency = Histogram(
            "trident_leg_latency_seconds", "One leg's exchange round trip.", ["leg"],
            buckets=LEG_BUCKETS_S, registry=self.registry,
        )
        self.execution = Histogram(
            "trident_execution_seconds", "Signal frame read to the execution's report, by status.", ["status"],
            buckets=EXECUTION_BUCKETS_S, registry=self.registry,
        )
        # Profit is returned − spent: two counters, because a counter never goes down.
        self.spent = Counter("trident_spent", "Primary quote that left the account, fees included, by quote.",
                             ["quote"], registry=self.registry)
        self.returned = Counter("trident_returned", "Primary quote that came back to the account, by quote.",
                                ["quote"], registry=self.registry)
        self.fees = Counter("trident_fees", "Exchange fees charged, by the currency they were charged in.",
                            ["currency"], registry=self.registry)
        self.exchange_errors = Counter(
            "trident_exchange_errors", "Executions ended by an exchange error, by KuCoin code.", ["code"],
            registry=self.registry,
        )

    def observe(self, done: Done) -> None:
        """Record one finished execution; a 0 timing means the step never happened and is skipped."""
        if done.first_order_ms > 0:
            self.first_order.observe(done.first_order_ms / 1000)
        for leg, elapsed_ms in enumerate((done.leg0_ms, done.leg1_ms, done.leg2_ms)):
            if elapsed_ms > 0:
                self.leg_latency.labels(str(leg)).observe(elapsed_ms / 1000)
        if done.total_ms > 0:
            self.execution.labels(done.status).observe(done.total_ms / 1000)
        if done.error_code:
            self.exchange_errors.labels(done.error_code).inc()
        if done.primary_quote:
            self.spent.labels(done.primary_quote).inc(_amount(done.spent))
            self.returned.labels(done.primary_quote).inc(_amount(done.returned))
        for currency, fee in done.fees:
            self.fees.labels(currency).inc(_amount(fee))

    def render(self) -> bytes:
        """The text exposition format, as Prometheus scrapes it."""
        return generate_latest(self.registry)


class MetricsServer:
    """`GET /metrics` on host:port; port 0 asks the OS for a free one (see `port` once started)."""

    def __init__(self, render: Callable[[], bytes], host: str, port: int) -> None:
        self._render = render
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; raises OSError when the address is taken."""
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("metrics_listening", address=self.address)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        return web.Response(body=self._render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
