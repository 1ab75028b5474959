"""Alerting: thresholds, reminders and maintenance from stored state; a durable outbox; notifiers.

Wiring (the CLI calls `register()`):
- `attach(monitor)` (ATTACH hook, in the running loop before the first check): sets the
  scheduler's `in_maintenance`, makes the alerts that were due when the monitor last stopped
  (`Alerting.reconcile`), adds the listener and starts the outbox worker.
- `shutdown(monitor)` (SHUTDOWN hook): stops retries and the worker; unsent deliveries wait in
  the outbox for the next start.
- `deliveries(store, instance)`: pending and failed deliveries, for the status page's detail view.
- the `test-alert` command.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from monitor.alerts.engine import Alerting
from monitor.alerts.outbox import OutboxWorker

if TYPE_CHECKING:
    from monitor.scheduler import Monitor
    from monitor.store import Store

__all__ = ["Alerting", "OutboxWorker", "attach", "deliveries", "register", "running", "shutdown"]

log = logging.getLogger("monitor.alerts")

_running: dict[int, tuple[Alerting, OutboxWorker]] = {}


def register() -> None:
    """Add the test-alert command and the run hooks to the CLI."""
    from monitor import cli
    from monitor.alerts.command import add_command

    cli.EXTRA_COMMANDS.append(add_command)
    cli.ATTACH.append(attach)
    cli.SHUTDOWN.append(shutdown)


def attach(monitor: Monitor) -> None:
    """Maintenance hook, start-up reconcile, the listener and the outbox worker."""
    from monitor import maintenance

    monitor.in_maintenance = lambda instance, at: (
        maintenance.active(monitor.settings, instance, at) is not None
    )
    if monitor.store is None:
        return
    alerting = Alerting(monitor.store, lambda: monitor.settings)
    worker = OutboxWorker(alerting.db, lambda: monitor.settings)
    alerting.on_enqueue = worker.wake
    alerting.monitor = monitor
    due = alerting.reconcile()
    if due:
        log.warning("%d alerts were due when the monitor stopped; queued now", len(due))
    monitor.listeners.append(alerting.listener)
    worker.start()
    _running[id(monitor)] = (alerting, worker)
    _metrics(worker, add=True)


async def shutdown(monitor: Monitor) -> None:
    """Stop retries and the worker; what is unsent stays in the outbox."""
    pair = _running.pop(id(monitor), None)
    if pair is not None:
        alerting, worker = pair
        _metrics(worker, add=False)
        await alerting.stop()
        await worker.stop()


def running(monitor: Monitor) -> tuple[Alerting, OutboxWorker] | None:
    return _running.get(id(monitor))


def deliveries(store: Store, instance: str | None = None, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Pending and failed deliveries, newest first: {"pending": [...], "failed": [...]}.

    Each row: id, delivery_id, notifier (its name only), instance, check, state, attempts,
    created_at, next_attempt_at, last_status, last_error (redacted), and the event's event,
    old_status, new_status, kind, message, since, at.
    """
    from monitor.store.alerts import AlertStore

    if "outbox" not in store.db.table_names():
        return {"pending": [], "failed": []}
    return AlertStore(store.db, migrate=False).deliveries(instance, limit)


def _metrics(worker: OutboxWorker, *, add: bool) -> None:
    """Add the delivery collector to /metrics (or take it away at shutdown)."""
    try:
        extra = importlib.import_module("monitor.web.metrics").EXTRA_COLLECTORS
    except (ModuleNotFoundError, AttributeError):
        return  # no /metrics in this build
    from monitor.alerts.metrics import DeliveryCollector

    if add:
        extra.append(DeliveryCollector(worker))
    else:
        extra[:] = [c for c in extra if not (isinstance(c, DeliveryCollector) and c.worker is worker)]
