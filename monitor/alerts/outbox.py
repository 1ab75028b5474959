"""The outbox worker: sends due deliveries, oldest first and one at a time per check and notifier,
retries with exponential backoff and jitter (bounded), records every attempt, and marks a delivery
delivered only after the receiver accepted it.

At-least-once: a crash between a send and its record sends it again after the restart, with the
same delivery id (X-Monitor-Delivery), so receivers can drop the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import fields
from typing import Any
from urllib.parse import quote

from monitor.checks import SPECS
from monitor.config import Delivery, Settings
from monitor.notifiers import Alert, AlertCheck, Notifier, NotifierError, NotifierSettings, build
from monitor.secrets import redact
from monitor.store.alerts import AlertStore

log = logging.getLogger("monitor.alerts.outbox")

IDLE_WAIT = 30.0  # the longest sleep when nothing is due (a wake-up comes sooner on a new alert)
PRUNE_EVERY = 3600.0


def backoff(
    attempts: int, delivery: Delivery, retry_after: float | None = None, rand: float | None = None
) -> float:
    """Seconds before the next attempt, after `attempts` failed ones: doubling, jittered, bounded."""
    base = min(delivery.backoff_max, delivery.backoff_initial * 2 ** max(0, attempts - 1))
    delay = base * (0.5 + (random.random() if rand is None else rand) / 2)
    if retry_after:
        delay = max(delay, min(retry_after, delivery.backoff_max))
    return delay


def instance_link(settings: Settings, instance: str) -> str | None:
    base = settings.web.base_url
    return f"{base.rstrip('/')}/instances/{quote(instance, safe='')}" if base else None


def _checks(event: dict[str, Any]) -> tuple[AlertCheck, ...]:
    """The event's lines, one per check (none for an event stored before incidents grouped them)."""
    try:
        found = json.loads(event.get("checks") or "[]")
    except ValueError:
        return ()
    names = {f.name for f in fields(AlertCheck)}
    return tuple(AlertCheck(**{k: v for k, v in line.items() if k in names}) for line in found)


def alert_from(event: dict[str, Any], settings: Settings) -> Alert:
    inst = settings.instance(event["instance"])
    spec = SPECS.get(event["check"])
    return Alert(
        event=event["event"],
        instance=event["instance"],
        instance_label=inst.label if inst else event["instance"],
        check=event["check"],
        old_status=event["old_status"],
        new_status=event["new_status"],
        kind=event["kind"],
        message=event["message"] or "",
        since=event["since"] if event["since"] is not None else event["at"],
        at=event["at"],
        link=instance_link(settings, event["instance"]),
        check_label=spec.label if spec else event["check"],
        checks=_checks(event),
    )


class OutboxWorker:
    def __init__(
        self, db: AlertStore, settings: Callable[[], Settings], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.attempts: Counter[tuple[str, str]] = Counter()  # (notifier, outcome) since start
        self._notifiers: dict[str, tuple[NotifierSettings, Notifier]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pruned_at = 0.0
        self._closing: set[asyncio.Future[None]] = set()
        self.outbox_counts: dict[tuple[str, str], int] = {}  # for /metrics: refreshed on the loop
        self._oldest_pending: float | None = None

    def notifier(self, name: str) -> Notifier | None:
        """The configured notifier of that name, rebuilt when a reload changed it."""
        cfg = next((n for n in self.settings().notifiers if n.name == name), None)
        held = self._notifiers.get(name)
        if cfg is None:
            return None
        if held is None or held[0] != cfg:
            if held is not None:
                closing = asyncio.ensure_future(held[1].aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
            self._notifiers[name] = (cfg, build(cfg))
        return self._notifiers[name][1]

    # --- the loop ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                sent = await self.run_once()
                self._prune()
            except Exception:
                log.exception("the outbox worker failed; trying again")
                sent = 0
                await asyncio.sleep(1)
            self.refresh_counts()
            if sent or self._stopping:
                continue
            next_at = self.db.next_due()
            wait = IDLE_WAIT if next_at is None else min(IDLE_WAIT, max(0.05, next_at - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def run_once(self) -> int:
        """Send every delivery due now (each the head of its check and notifier); returns how many."""
        rows = self.db.due(self.clock())
        if not rows:
            return 0
        limit = asyncio.Semaphore(self.settings().alerts.delivery.concurrency)
        await asyncio.gather(*(self._deliver(row, limit) for row in rows))
        return len(rows)

    async def _deliver(self, row: dict[str, Any], limit: asyncio.Semaphore) -> None:
        async with limit:
            settings = self.settings()
            name = row["notifier"]
            notifier = self.notifier(name)
            event = self.db.event(row["event_id"])
            if notifier is None or event is None:
                self.db.fail_unsent(row, f"notifier '{name}' is no longer configured")
                self.attempts[(name, "failed")] += 1
                log.error(
                    "delivery %s dropped: notifier '%s' is no longer configured", row["delivery_id"], name
                )
                return
            at, started = self.clock(), time.perf_counter()
            status: int | None = None
            try:
                sent = await notifier.send(alert_from(event, settings), row["delivery_id"])
            except NotifierError as exc:
                error, permanent, status, retry_after = (
                    exc.message,
                    exc.permanent,
                    exc.status,
                    exc.retry_after,
                )
            except Exception as exc:  # a bug of ours: record it and retry rather than lose the alert
                log.exception("notifier %s failed unexpectedly", name)
                error, permanent, retry_after = f"unexpected error: {type(exc).__name__}", False, None
            else:
                took = (time.perf_counter() - started) * 1000
                self.db.record_attempt(
                    row, at=at, duration_ms=took, status=sent.status, outcome="delivered", error=None
                )
                self.attempts[(name, "delivered")] += 1
                log.info(
                    "delivered %s/%s %s to %s (%s)",
                    row["instance"],
                    row["check"],
                    event["event"],
                    name,
                    sent.detail,
                )
                return
            took = (time.perf_counter() - started) * 1000
            error = redact(error)[:500]
            self._failed(row, settings.alerts.delivery, at, took, status, error, permanent, retry_after)

    def _failed(
        self,
        row: dict[str, Any],
        delivery: Delivery,
        at: float,
        took: float,
        status: int | None,
        error: str,
        permanent: bool,
        retry_after: float | None,
    ) -> None:
        attempts = row["attempts"] + 1
        gave_up = (delivery.max_attempts and attempts >= delivery.max_attempts) or (
            at - row["created_at"] >= delivery.give_up_after
        )
        what = f"{row['instance']}/{row['check']} to {row['notifier']} (attempt {attempts})"
        if permanent or gave_up:
            self.db.record_attempt(row, at=at, duration_ms=took, status=status, outcome="failed", error=error)
            self.attempts[(row["notifier"], "failed")] += 1
            why = "a retry cannot help" if permanent else "giving up"
            log.error("delivery of %s failed: %s; %s", what, error, why)
            return
        wait = backoff(attempts, delivery, retry_after)
        self.db.record_attempt(
            row,
            at=at,
            duration_ms=took,
            status=status,
            outcome="retry",
            error=error,
            next_attempt_at=at + wait,
        )
        self.attempts[(row["notifier"], "retry")] += 1
        log.warning("delivery of %s failed: %s; next try in %.3gs", what, error, wait)

    def refresh_counts(self) -> None:
        self.outbox_counts = self.db.outbox_counts()
        self._oldest_pending = self.db.oldest_pending()

    def oldest_pending_age(self) -> float:
        return max(0.0, self.clock() - self._oldest_pending) if self._oldest_pending is not None else 0.0

    def _prune(self) -> None:
        now = self.clock()
        if now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            self.db.prune(now - self.settings().storage.rollup_retention)

    async def stop(self, timeout: float = 3.0) -> None:
        """Let in-flight sends finish (bounded), then stop; unsent deliveries wait in the outbox."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        for _, notifier in self._notifiers.values():
            with contextlib.suppress(Exception):
                await notifier.aclose()
        self._notifiers.clear()
