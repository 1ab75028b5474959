"""Alerting: thresholds, reminders and maintenance from stored state; a durable outbox; notifiers.

monitor/runtime.py wires it, in this order:
- `start(monitor)` (in the running loop, before the first check): sets the scheduler's
  `in_maintenance`, makes the alerts that were due when the monitor last stopped
  (`Alerting.reconcile`), hooks the evaluation into the store's writes of results (the scheduler's
  group commit) and starts the outbox worker. It returns the running
  parts, whose `collector` /metrics reads and whose `stop()` runs after the scheduler stops: it
  ends retries and the worker; unsent deliveries wait in the outbox for the next start.
- `deliveries(store, instance)`: pending and failed deliveries, for the status page's detail view.
- the `test-alert` command is in `command.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from monitor import maintenance
from monitor.alerts.engine import Alerting, Rechecks
from monitor.alerts.metrics import DeliveryCollector
from monitor.alerts.outbox import OutboxWorker
from monitor.config import Settings
from monitor.store import Store
from monitor.store.alerts import AlertStore

__all__ = ["Alerting", "OutboxWorker", "Running", "deliveries", "start"]

log = logging.getLogger("monitor.alerts")


class Scheduler(Rechecks, Protocol):
    """What alerting needs of the scheduler it runs beside (monitor.scheduler.Monitor): alerting
    and the scheduler are siblings, and neither imports the other."""

    settings: Settings
    store: Store | None
    in_maintenance: Callable[[str, float], bool]


@dataclass
class Running:
    """Alerting as it runs beside one monitor: the listener's engine, the worker, their metrics."""

    alerting: Alerting
    worker: OutboxWorker
    collector: DeliveryCollector

    async def stop(self) -> None:
        """Stop retries and the worker; what is unsent stays in the outbox."""
        await self.alerting.stop()
        await self.worker.stop()


def start(monitor: Scheduler) -> Running | None:
    """Maintenance hook, start-up reconcile, the write hook and the outbox worker (None without a store)."""
    monitor.in_maintenance = lambda instance, at: (
        maintenance.active(monitor.settings, instance, at) is not None
    )
    if monitor.store is None:
        return None
    alerting = Alerting(monitor.store, lambda: monitor.settings)
    worker = OutboxWorker(alerting.db, lambda: monitor.settings)
    alerting.on_enqueue = worker.wake
    alerting.monitor = monitor
    due = alerting.reconcile()
    if due:
        log.warning("%d alerts were due when the monitor stopped; queued now", len(due))
    monitor.store.on_write(alerting.in_write)
    worker.start()
    return Running(alerting, worker, DeliveryCollector(worker))


def deliveries(store: Store, instance: str | None = None, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Pending and failed deliveries, newest first: {"pending": [...], "failed": [...]}.

    Each row: id, delivery_id, notifier (its name only), instance, check, state, attempts,
    created_at, next_attempt_at, last_status, last_error (redacted), and the event's event,
    old_status, new_status, kind, message, since, at.
    """
    if "outbox" not in store.db.table_names():
        return {"pending": [], "failed": []}
    return AlertStore(store.db, migrate=False).deliveries(instance, limit)
