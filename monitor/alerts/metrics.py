"""Alert delivery metrics for /metrics: the outbox by state, and delivery attempts by outcome.

`collect` may run on any thread, so it reads the worker's in-memory figures (refreshed on the
event loop after each round) and never the database.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from monitor.alerts.outbox import OutboxWorker


class DeliveryCollector:
    def __init__(self, worker: OutboxWorker) -> None:
        self.worker = worker

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: the label sets change as notifiers come and go

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "twofauth_monitor_alert_deliveries",
            "Alert deliveries in the outbox that are pending (not yet accepted) or failed (given up)",
            labels=["notifier", "state"],
        )
        counts = dict(self.worker.outbox_counts)
        for notifier in sorted({n.name for n in self.worker.settings().notifiers} | {n for n, _ in counts}):
            for state in ("pending", "failed"):
                outbox.add_metric([notifier, state], counts.get((notifier, state), 0))
        yield outbox
        attempts = CounterMetricFamily(
            "twofauth_monitor_alert_delivery_attempts",
            "Delivery attempts since the monitor started, by outcome (delivered, retry, failed)",
            labels=["notifier", "outcome"],
        )
        for (notifier, outcome), n in sorted(self.worker.attempts.items()):
            attempts.add_metric([notifier, outcome], n)
        yield attempts
        oldest = GaugeMetricFamily(
            "twofauth_monitor_alert_oldest_pending_seconds",
            "Age of the oldest pending delivery (0 when none is pending)",
        )
        oldest.add_metric([], self.worker.oldest_pending_age())
        yield oldest
