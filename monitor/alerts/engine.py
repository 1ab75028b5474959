"""Alert evaluation, in the store's write transaction: when the scheduler's group commit writes a
batch of results, every check in it has its results the alert state has not seen yet read back
(they are in the same transaction), folded into its instance's incident (incident.py: one alert
per incident), and the check's new state, the incident, the events and their outbox rows written
before the transaction commits. Results and the alerts they make are committed together or not at
all, and a batch pays for one transaction rather than one per result.

Reading results back rather than trusting the ones handed over is what makes a failure harmless:
when alerting's part of a write fails (rolled back to its savepoint, the results still written),
the next result of the check, or `reconcile` at the next start, finds the results no alert state
has seen and makes the alerts that were due.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from monitor.alerts.evaluate import DOWN, UP, AlertState, Event, evaluate, level
from monitor.alerts.incident import LEVELS, Incident, hold_for, note_cause, pending, plan, step
from monitor.config import Alerts, NotifyTarget, Settings
from monitor.models import Result, Status
from monitor.store import Store
from monitor.store.alerts import AlertStore
from monitor.store.raw import ResultRow


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


def _quiet(incident: Incident, states: list[AlertState], rows: list[dict[str, Any]]) -> bool:
    """Whether these results can change nothing but the check's counts: no incident is open or
    held, no check of the instance is alerted, and every result is up outside maintenance. Then
    `evaluate` makes no event and `step` and `plan` would leave the incident as it is, so the
    engine skips them (and the incident's copy): that is most results, and most of their cost."""
    if incident.level != UP or incident.held_event is not None or incident.checks:
        return False
    if any(s.alerted != UP for s in states):
        return False
    return all(row["status"] == UP and not row["maintenance"] for row in rows)


@dataclass(slots=True)
class _Done:
    """One check's catch-up, written: what to log and whom to wake once it is committed."""

    instance: str
    planned: list[tuple[Event, float, list[str]]]  # event, due at, notifier names
    now: float
    release: int | None
    update: tuple[int, dict[str, Any]] | None


class _Undo:
    """What a catch-up replaced in the engine's memory, put back when its transaction fails."""

    __slots__ = ("engine", "kept")

    def __init__(self, engine: Alerting) -> None:
        self.engine = engine
        self.kept: list[tuple[tuple[str, str], AlertState | None, Incident | None, set[float] | None]] = []

    def keep(self, key: tuple[str, str]) -> None:
        e = self.engine
        skip = e._superseded.get(key)
        self.kept.append(
            (key, e.states.get(key), e.incidents.get(key[0]), None if skip is None else set(skip))
        )

    def restore(self) -> None:
        e = self.engine
        for key, state, incident, skip in reversed(self.kept):
            _put(e.states, key, state)
            _put(e.incidents, key[0], incident)
            _put(e._superseded, key, skip)
        self.kept.clear()


def _put(table: dict[Any, Any], key: Any, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


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
        events and their outbox rows in one transaction of their own (start-up's reconcile)."""
        undo = _Undo(self)
        try:
            with self.store.db.conn:
                done = self._catch_up(instance, check, undo)
        except BaseException:
            undo.restore()
            raise
        return self._announce([done] if done else [])

    def in_write(self, conn: sqlite3.Connection, rows: list[ResultRow]) -> Callable[[bool], None] | None:
        """The store's write hook: evaluate the batch's checks inside the transaction that writes
        their results (the group commit), so results and the alerts they make commit together, at
        the cost of one transaction for the batch instead of one per result. A failure here rolls
        back only alerting's part (a savepoint): the results are written, and the next catch-up of
        the check (or the next start's reconcile) reads them again."""
        undo = _Undo(self)
        keys: dict[tuple[str, str], None] = {}
        for row in rows:
            self._note_retry(row)
            keys[(row.instance, row.check)] = None
        try:
            conn.execute("savepoint alerting")
            try:
                done = [d for key in keys if (d := self._catch_up(*key, undo)) is not None]
            except BaseException:
                conn.execute("rollback to alerting")
                raise
            finally:
                conn.execute("release alerting")
        except Exception as exc:  # one check's bad state must not stop the results being written
            undo.restore()
            failed = ", ".join(f"{i}/{c}" for i, c in keys)
            log.error("cannot write the alert state of %s: %s; retried with the next result", failed, exc)
            return None

        def finish(committed: bool) -> None:
            if committed:
                self._retries.difference_update((r.instance, r.check, r.started_at) for r in rows)
                self._announce(done)
            else:
                undo.restore()

        return finish

    def _catch_up(self, instance: str, check: str, undo: _Undo) -> _Done | None:
        """Evaluate and write (in the caller's transaction) one check's unseen results; the new
        state is kept in memory at once (`undo` restores what it replaced if the write fails)."""
        settings = self.settings()
        inst = settings.instance(instance)
        if inst is None:
            return None
        rules = settings.alerts.for_instance(inst)
        key = (instance, check)
        state = self._state(key)
        if state is None:
            return None
        # runs of one check do not overlap, so nothing unseen started long before the last one seen
        rows = self.db.results_after(instance, check, state.last_result_id, (state.last_at or 0.0) - SLACK)
        if not rows:
            return None
        undo.keep(key)
        new = state.copy()
        before = self._incident(instance)
        # a check with no state yet has not run since the incident began: an event waits for it
        enabled = inst.enabled_checks()
        others = [c for c in enabled if c != check]
        states = [new] + [self.states.get((instance, c)) or AlertState(instance, c) for c in others]
        now = self.clock()
        if _quiet(before, states, rows):  # most results: all is well and stays so
            for row in rows:
                new.last_result_id = row["id"]
                evaluate(new, UP, row["started_at"], rules, kind=row["kind"], message=row["message"] or "")
                note_cause(new, UP, row["kind"], row["message"] or "", 0)
            self.db.write(new.to_dict(), [], now)
            self.states[key] = new
            return None
        incident = before.copy()
        events = self._evaluate(new, incident, states, rows, rules, self._superseded.get(key, set()))
        events = _coalesce(events)
        if inst.alerts is not None and not inst.alerts.enabled:
            events = []
        waiting = pending(incident, states, LEVELS[incident.level])
        hold = hold_for([inst.check_interval(c) for c in enabled])
        decided = plan(incident, events, now, hold, waiting)
        planned = [(e, due, route(e, rules, settings)) for e, due in decided.events]
        data = incident.to_dict() if incident != before else None  # all up, nothing alerted: no write
        self.db.write(
            new.to_dict(),
            [(asdict(e), [(n, str(uuid.uuid4())) for n in names], due) for e, due, names in planned],
            now,
            incident=data,
            held=decided.held,
            update=decided.update,
            release=decided.release,
        )
        if data is not None:
            incident.held_event = data.get("held_event")  # the id the write gave a newly held event
        self.states[key] = new
        self.incidents[instance] = incident
        return _Done(instance, planned, now, decided.release, decided.update)

    def _announce(self, done: list[_Done]) -> list[Event]:
        """Once the decisions are committed: log each alert, wake the outbox worker."""
        wake = False
        for d in done:
            for event, due, names in d.planned:
                _log_alert(event, names, due - d.now, advise=not names and not self._advised)
                self._advised = self._advised or not names
            if d.release is not None and d.update is not None:  # let go before its time
                named = ", ".join(c["check"] for c in d.update[1].get("checks", ()))
                log.info("the held alert of %s goes out now, naming %s", d.instance, named)
            wake = wake or any(names for *_, names in d.planned) or d.release is not None
        if wake and self.on_enqueue is not None:
            self.on_enqueue()
        return [e for d in done for e, _, _ in d.planned]

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

    # --- retries ------------------------------------------------------------------------------------

    def _note_retry(self, row: ResultRow) -> None:
        """A down result that is not itself a retry may be run again before it counts (`retry`)."""
        run = (row.instance, row.check, row.started_at)
        if run not in self._retries and not row.maintenance and row.status == Status.DOWN:
            self._maybe_retry(*run)

    def _maybe_retry(self, instance: str, check: str, started_at: float) -> None:
        settings = self.settings()
        inst = settings.instance(instance)
        if inst is None or self.monitor is None:
            return
        delay = settings.alerts.for_instance(inst).retry
        state = self.states.get((instance, check))
        if delay <= 0 or (state is not None and state.alerted == DOWN):
            return  # no retry asked, or already alerted: a second look would change nothing
        superseded = self._superseded.setdefault((instance, check), set())
        if started_at in superseded:
            return  # the same batch written again after a failed write: its retry is on its way
        superseded.add(started_at)
        task = asyncio.ensure_future(self._run_again(instance, check, delay))
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
