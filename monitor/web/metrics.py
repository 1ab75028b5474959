"""/metrics: Prometheus exposition with prometheus-client.

A custom collector reads the monitor's state at scrape time (check states, latest results, its
own stats), so nothing is kept twice; only the latency histogram is observed as results arrive,
by the listener `MonitorMetrics` adds. Labels are bounded: instance, check, status, kind (and version,
one per instance, on an info metric). No secret is ever a label or a value.

Other parts' collectors (the page cache's builds, the outbox's deliveries) are handed to
`MonitorMetrics` by whoever builds it (monitor/runtime.py); each scrape calls them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from monitor.models import Kind, Result, Status
from monitor.scheduler import Monitor
from monitor.store import CheckState, Transition

disable_created_metrics()  # the _created series only add noise to every scrape
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATUSES = [str(s) for s in Status]


class MonitorCollector(Collector):
    """Check states and the monitor's own work, read when Prometheus scrapes."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        m = self.monitor
        configured = {(i.name, c) for i in m.settings.instances for c in i.enabled_checks()}
        states = m.store.states() if m.store is not None else {}
        yield from self._states(configured, states)
        yield from self._latest(configured)
        yield self._versions(states)
        yield from self._own()

    def _states(
        self, configured: set[tuple[str, str]], states: dict[tuple[str, str], CheckState]
    ) -> Iterator[Metric]:
        """Each configured check's stored state: its status, why it is not up, since when, last run."""
        status = GaugeMetricFamily(
            "twofauth_check_status",
            "1 for the check's current status (up, degraded or down), 0 for the others",
            labels=["instance", "check", "status"],
        )
        problem = GaugeMetricFamily(
            "twofauth_check_problem",
            "1 while a check is not up, labelled with why (its error kind)",
            labels=["instance", "check", "kind"],
        )
        since = GaugeMetricFamily(
            "twofauth_check_status_since_timestamp_seconds",
            "When the check's current status began (unix time)",
            labels=["instance", "check"],
        )
        last = GaugeMetricFamily(
            "twofauth_check_last_run_timestamp_seconds",
            "When the check last ran (unix time)",
            labels=["instance", "check"],
        )
        for instance, check in sorted(configured):
            state = states.get((instance, check))
            if state is None:
                continue
            for name in STATUSES:
                status.add_metric([instance, check, name], 1.0 if state.status == name else 0.0)
            if state.status != Status.UP and state.kind in _KINDS:
                problem.add_metric([instance, check, state.kind], 1.0)
            since.add_metric([instance, check], state.since)
            last.add_metric([instance, check], state.last_at)
        yield from (status, problem, since, last)

    def _latest(self, configured: set[tuple[str, str]]) -> Iterator[Metric]:
        """From the latest results in memory: clock skew, certificate and token expiry."""
        skew = GaugeMetricFamily(
            "twofauth_clock_skew_seconds",
            "The 2FAuth server's clock minus ours, from the latest TOTP flow",
            labels=["instance"],
        )
        # expiry as a timestamp, Prometheus' way: days left = (metric - time()) / 86400
        cert = GaugeMetricFamily(
            "twofauth_certificate_expiry_timestamp_seconds",
            "When the instance's TLS certificate expires (unix time)",
            labels=["instance"],
        )
        token = GaugeMetricFamily(
            "twofauth_token_expiry_timestamp_seconds",
            "When the personal access token the monitor uses expires (unix time)",
            labels=["instance"],
        )
        for (instance, check), result in sorted(self.monitor.latest.items()):
            if (instance, check) not in configured:
                continue
            if result.skew_s is not None:
                skew.add_metric([instance], result.skew_s)
            if result.cert_days is not None:
                cert.add_metric([instance], round(result.started_at + result.cert_days * 86400))
            if result.token_days is not None:
                token.add_metric([instance], round(result.started_at + result.token_days * 86400))
        yield from (skew, cert, token)

    def _versions(self, states: dict[tuple[str, str], CheckState]) -> Metric:
        info = InfoMetricFamily(
            "twofauth_instance", "The 2FAuth version each instance reports", labels=["instance"]
        )
        versions = {i: s.version for (i, _), s in states.items() if s.version}
        for inst in self.monitor.settings.instances:
            if inst.name in versions:
                info.add_metric([inst.name], {"version": versions[inst.name]})
        return info

    def _own(self) -> Iterator[Metric]:
        stats = self.monitor.stats
        runs = CounterMetricFamily(
            "twofauth_monitor_runs", "Check runs by outcome", labels=["instance", "check", "status"]
        )
        for (instance, check, status), n in sorted(stats.runs.items()):
            runs.add_metric([instance, check, status], n)
        yield runs
        skipped = CounterMetricFamily(
            "twofauth_monitor_skipped_runs",
            "Runs skipped because the previous run of the same check was still going",
            labels=["instance", "check"],
        )
        for (instance, check), n in sorted(stats.skipped_overlap.items()):
            skipped.add_metric([instance, check], n)
        yield skipped
        yield SummaryMetricFamily(
            "twofauth_monitor_scheduler_lag_seconds",
            "How late runs start after their scheduled time",
            count_value=stats.lag_count,
            sum_value=stats.lag_total,
        )
        recent = list(stats.lags)
        yield GaugeMetricFamily(
            "twofauth_monitor_scheduler_lag_max_seconds",
            "The largest start delay among the recent runs",
            value=max(recent, default=0.0),
        )
        if stats.last_run_at is not None:
            yield GaugeMetricFamily(
                "twofauth_monitor_last_run_timestamp_seconds",
                "When the monitor last ran any check (unix time)",
                value=stats.last_run_at,
            )
        yield GaugeMetricFamily(
            "twofauth_monitor_start_time_seconds",
            "When the monitor started (unix time)",
            value=stats.started_at,
        )
        store = self.monitor.store
        if store is not None:
            yield GaugeMetricFamily(
                "twofauth_monitor_database_writable",
                "1 when the last write to the history database succeeded",
                value=1.0 if store.healthy else 0.0,
            )
            yield GaugeMetricFamily(
                "twofauth_monitor_database_pending_results",
                "Results kept in memory, waiting to be written",
                value=len(store.writer.pending),
            )


_KINDS = {str(k) for k in Kind}


class _Extra(Collector):
    """Other parts' collectors, read at every scrape."""

    def __init__(self, collectors: Iterable[Any]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterable[Metric]:
        for collector in list(self.collectors):
            yield from collector.collect()


class _Located(Collector):
    """The samples of `inner`, each with the monitor's `location` label when one is configured
    (read at each scrape, so a reload that sets or changes it applies at once)."""

    def __init__(self, inner: CollectorRegistry, monitor: Monitor) -> None:
        self.inner = inner
        self._monitor = weakref.ref(monitor)

    def collect(self) -> Iterator[Metric]:
        monitor = self._monitor()
        location = monitor.settings.location if monitor is not None else None
        for metric in self.inner.collect():
            if location is not None:
                metric.samples = [
                    s._replace(labels={**s.labels, "location": location}) for s in metric.samples
                ]
            yield metric


class MonitorMetrics:
    """One registry per monitor: its collector, the other parts' collectors and the latency
    histogram. Building it adds the histogram's listener to the monitor: build one per monitor."""

    def __init__(self, monitor: Monitor, collectors: Iterable[Any] = ()) -> None:
        inner = CollectorRegistry(auto_describe=False)
        inner.register(MonitorCollector(monitor))
        self.extra = _Extra(collectors)  # objects with collect() -> Iterable[Metric]
        inner.register(self.extra)
        self.latency = Histogram(
            "twofauth_check_latency_seconds",
            "How long each check took, from its results",
            ["instance", "check"],
            buckets=LATENCY_BUCKETS,
            registry=inner,
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Located(inner, monitor))
        self._monitor = weakref.ref(monitor)
        self._observed: set[tuple[str, str]] = set()
        monitor.listeners.append(self.observe)

    def observe(self, result: Result, transition: Transition | None, maintenance: bool) -> None:
        monitor = self._monitor()
        if result.latency_ms is None or monitor is None or monitor.settings.instance(result.instance) is None:
            return
        self.latency.labels(result.instance, result.check).observe(result.latency_ms / 1000)
        self._observed.add((result.instance, result.check))

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape body and its content type, OpenMetrics when the scraper asks for it."""
        monitor = self._monitor()
        if monitor is not None:  # checks removed by a reload leave the histogram too
            configured = {(i.name, c) for i in monitor.settings.instances for c in i.enabled_checks()}
            for gone in self._observed - configured:
                self.latency.remove(*gone)
                self._observed.discard(gone)
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
