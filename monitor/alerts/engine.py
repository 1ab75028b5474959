"""The alert listener: after the scheduler records a result, evaluate every result of that check
the alert state has not seen yet (read back from the store), fold it into its instance's incident
(incident.py: one alert per incident), and write the check's new state, the incident, the events
and their outbox rows in one transaction.

Reading results back rather than trusting the one handed over is what makes a crash harmless:
the scheduler commits a result before it calls listeners, so after a SIGKILL in between,
`reconcile` at start finds the results no alert state has seen and makes the alerts that were due.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from monitor.alerts.evaluate import DOWN, AlertState, Event, evaluate, level
from monitor.alerts.incident import LEVELS, Incident, hold_for, note_cause, pending, plan, step
from monitor.config import Alerts, NotifyTarget, Settings
from monitor.models import Result, Status
from monitor.store import Store, Transition
from monitor.store.alerts import AlertStore


class Rechecks(Protocol):
    """What a retry needs of the running scheduler (monitor.scheduler.Monitor has both)."""

    async def run_now(self, instance: str, check: str) -> Result | None: ...

    async def handle_result(self, result: Result) -> None: ...


log = logging.getLogger("monitor.alerts")

SLACK = 86400.0  # how much earlier than the last result seen an unseen one may start (clock steps)


def route(event: Event, rules: Alerts, settings: Settings) -> list[str]:
    """The notifiers that get this event: `notify` entries naming it, or every notifier when empty."""
    configured = [n.name for n in settings.notifiers]
    targets = rules.notify or [NotifyTarget(name=name) for name in configured]
    return [t.name for t in targets if event.event in t.events and t.name in configured]


def _coalesce(events: list[Event]) -> list[Event]:
    """Within one catch-up, a reminder followed by a later event is stale: drop it."""
    return [e for i, e in enumerate(events) if e.event != "reminder" or i == len(events) - 1]


def _log_alert(event: Event, names: list[str], held: float, advise: bool) -> None:
    """A problem sent to someone is a WARNING; a recovery, or an alert nobody is to receive (a
    monitor without notifiers is legitimate), is INFO, the latter with advice when `advise`."""
    checks = ", ".join(c["check"] for c in event.checks) or event.check
    why = f" {event.kind}: {event.message}" if event.kind else ""
    to = ", ".join(names)
    if not names:
        to = "no notifier" + (
            " (add one under notifiers: to be told; see docs/alerting.md)" if advise else ""
        )
    wait = f", held up to {held:.0f}s for the other checks" if held >= 1 else ""
    lvl = logging.INFO if event.event == "resolved" or not names else logging.WARNING
    log.log(
        lvl,
        "alert: %s %s (%s -> %s; %s)%s; to %s%s",
        event.instance,
        event.event,
        event.old_status,
        event.new_status,
        checks,
        why,
        to,
        wait,
        extra={"instance": event.instance, "check": event.check, "event": f"alert_{event.event}"},
    )


class Alerting:
    def __init__(
        self,
        store: Store,
        settings: Callable[[], Settings],
        *,
        clock: Callable[[], float] = time.time,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.db = AlertStore(store.db)
        self.settings = settings
        self.clock = clock
        self.on_enqueue = on_enqueue
        self.monitor: Rechecks | None = None  # set by alerts.start: the retry re-runs checks through it
        self.states = {key: AlertState.from_dict(data) for key, data in self.db.states().items()}
        self.incidents = {name: Incident.from_dict(data) for name, data in self.db.incidents().items()}
        self._superseded: dict[tuple[str, str], set[float]] = {}  # failures a retry stands in for
        self._retries: set[tuple[str, str, float]] = set()  # results that are themselves retries
        self._tasks: set[asyncio.Task[None]] = set()
        self._advised = False  # "no notifier" is explained once per start

    # --- evaluation ------------------------------------------------------------------------------

    def catch_up(self, instance: str, check: str) -> list[Event]:
        """Evaluate the check's results not seen yet; write its state, its instance's incident, the
        events and their outbox rows together."""
        settings = self.settings()
        inst = settings.instance(instance)
        if inst is None:
            return []
        rules = settings.alerts.for_instance(inst)
        key = (instance, check)
        state = self._state(key)
        if state is None:
            return []
        # runs of one check do not overlap, so nothing unseen started long before the last one seen
        rows = self.db.results_after(instance, check, state.last_result_id, (state.last_at or 0.0) - SLACK)
        if not rows:
            return []
        new = AlertState.from_dict(state.to_dict())
        before = self._incident(instance).to_dict()
        incident = Incident.from_dict(self._incident(instance).to_dict())  # its own copy of the lines
        # a check with no state yet has not run since the incident began: an event waits for it
        others = [c for c in inst.enabled_checks() if c != check]
        states = [new] + [self.states.get((instance, c)) or AlertState(instance, c) for c in others]
        events = self._evaluate(new, incident, states, rows, rules, self._superseded.get(key, set()))
        events = _coalesce(events)
        if inst.alerts is not None and not inst.alerts.enabled:
            events = []
        now = self.clock()
        waiting = pending(incident, states, LEVELS[incident.level])
        hold = hold_for([inst.check_interval(c) for c in inst.enabled_checks()])
        decided = plan(incident, events, now, hold, waiting)
        planned = [(e, due, route(e, rules, settings)) for e, due in decided.events]
        data = incident.to_dict()
        self.db.save(
            new.to_dict(),
            [(asdict(e), [(n, str(uuid.uuid4())) for n in names], due) for e, due, names in planned],
            now,
            incident=data if data != before else None,  # all up and nothing alerted: no write
            held=decided.held,
            update=decided.update,
            release=decided.release,
        )
        self.states[key] = new
        self.incidents[instance] = Incident.from_dict(data)
        for event, due, names in planned:
            _log_alert(event, names, due - now, advise=not names and not self._advised)
            self._advised = self._advised or not names
        if decided.release is not None and decided.update is not None:  # let go before its time
            named = ", ".join(c["check"] for c in decided.update[1].get("checks", ()))
            log.info("the held alert of %s goes out now, naming %s", instance, named)
        if (any(names for *_, names in planned) or decided.release) and self.on_enqueue is not None:
            self.on_enqueue()
        return [e for e, _, _ in planned]

    def _state(self, key: tuple[str, str]) -> AlertState | None:
        """The check's alert state; for a check never evaluated, one starting from its current run
        (not from old history); None for a check with no result yet."""
        state = self.states.get(key)
        if state is not None:
            return state
        checked = self.store.states().get(key)
        if checked is None:
            return None
        start = self.db.last_id_before(*key, checked.since)
        return AlertState(*key, last_result_id=start, last_at=checked.since)

    def _incident(self, instance: str) -> Incident:
        return self.incidents.get(instance) or Incident(instance)

    @staticmethod
    def _evaluate(
        new: AlertState,
        incident: Incident,
        states: list[AlertState],
        rows: list[Any],
        rules: Alerts,
        skip: set[float],
    ) -> list[Event]:
        """Advance `new` and the incident over the rows; the failures a retry stands in for (`skip`)
        are passed over. Returns the instance's events."""
        events: list[Event] = []
        for row in rows:
            new.last_result_id = row["id"]
            if row["started_at"] in skip:
                skip.discard(row["started_at"])
                continue
            maintenance = bool(row["maintenance"])
            evaluate(new, row["status"], row["started_at"], rules, kind=row["kind"],
                     message=row["message"] or "", maintenance=maintenance)  # fmt: skip
            if not maintenance:
                note_cause(new, row["status"], row["kind"], row["message"] or "", level(row["status"], rules))
            events += step(incident, states, new, row, rules)
        return events

    def reconcile(self) -> list[Event]:
        """At start: make the alerts that were due when the monitor stopped (or was killed)."""
        events: list[Event] = []
        for instance, check in sorted(self.store.states()):
            events += self.catch_up(instance, check)
        return events

    # --- the scheduler's listener ------------------------------------------------------------------

    def listener(self, result: Result, transition: Transition | None, maintenance: bool) -> None:
        key = (result.instance, result.check)
        is_retry = (*key, result.started_at) in self._retries
        self._retries.discard((*key, result.started_at))
        if not is_retry and not maintenance and result.status == Status.DOWN:
            self._maybe_retry(result)
        try:
            self.catch_up(*key)
        except sqlite3.Error as exc:
            log.error("cannot write the alert state of %s/%s: %s; retried with the next result", *key, exc)

    def _maybe_retry(self, result: Result) -> None:
        settings = self.settings()
        inst = settings.instance(result.instance)
        if inst is None or self.monitor is None:
            return
        delay = settings.alerts.for_instance(inst).retry
        state = self.states.get((result.instance, result.check))
        if delay <= 0 or (state is not None and state.alerted == DOWN):
            return  # no retry asked, or already alerted: a second look would change nothing
        self._superseded.setdefault((result.instance, result.check), set()).add(result.started_at)
        task = asyncio.ensure_future(self._run_again(result.instance, result.check, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_again(self, instance: str, check: str, delay: float) -> None:
        await asyncio.sleep(delay)
        monitor = self.monitor
        again = await monitor.run_now(instance, check) if monitor is not None else None
        if monitor is None or again is None:
            return
        self._retries.add((instance, check, again.started_at))
        await monitor.handle_result(again)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
