"""One alert per incident: an instance's checks, each evaluated on its own (evaluate.py), make one
incident per instance, and people hear of the incident, not of each check.

- The instance's level is the worst level its checks are alerted at. It rising makes a "down" or
  "degraded" event, it falling a "degraded" (no longer down) or, once every check is back, one
  "resolved"; while down, a "reminder" every `remind_every`.
- One cause fails several checks a few seconds apart (each reaches its own threshold on its own
  schedule), so a down or degraded event is held until every other check of the instance has
  either joined the incident or shown it is not failing, at most `hold_for` (a little over the
  longest check interval). While held, the event's lines are brought up to date.
- The cause is the first failing check in the page's order (a check needs the ones before it: the
  TOTP flow cannot work while the web server does not answer); a later check down while it is
  down is shown as its consequence. A check's kind is the one most of its failing runs had, and
  its message the latest run of that kind, so a line never mixes two runs and a transient first
  run never heads an incident.

Pure, like evaluate.py: the engine reads and writes the state in the same transaction as the
checks' states and the events, so a crash loses nothing (see engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from monitor.alerts.evaluate import DEGRADED, DOWN, UP, AlertState, Event, Stored
from monitor.checks import SPECS
from monitor.config import Alerts

LEVELS = {UP: 0, DEGRADED: 1, DOWN: 2}
HOLD_MAX = 600.0  # seconds: no down alert waits longer for the other checks


@dataclass(slots=True)
class Incident(Stored):
    """What people were last told about one instance, and the checks of its open incident."""

    instance: str
    level: str = UP  # up, degraded or down: the last event's status
    since: float | None = None  # when the incident's first failing run started
    notified_at: float | None = None  # the last down, degraded or reminder event
    reminders: int = 0
    held_event: int | None = None  # alert_events.id of the event waiting for the other checks
    held_until: float | None = None
    held_old: str | None = None  # the held event's old status: what people knew before it
    cause: str | None = None  # the check the last down or degraded event named as the cause
    began: float | None = None  # when the problem of the check that made the last event began
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # check -> its line's data


def note_cause(state: AlertState, status: str, kind: str | None, message: str, lvl: int) -> None:
    """Count one run's cause in the check's current problem (after evaluate() has seen it)."""
    if lvl == 0:
        if state.alerted == UP:
            state.causes = {}  # no problem, or a blip that never reached the threshold, is over
        return
    if state.alerted == UP and state.streak_bad == 1:
        state.causes = {}  # a new problem begins
    runs, _ = state.causes.get(kind or "", [0, ""])
    state.causes[kind or ""] = [runs + 1, message]


def main_kind(causes: dict[str, list[Any]]) -> tuple[str | None, str]:
    """The kind most runs had (the latest counted wins a tie) and its latest message."""
    if not causes:
        return None, ""
    kind = max(reversed(list(causes)), key=lambda k: causes[k][0])
    return kind or None, causes[kind][1]


def order(check: str) -> int:
    names = list(SPECS)
    return names.index(check) if check in names else len(names)


def lines(incident: Incident) -> list[dict[str, Any]]:
    """One line per check of the incident, in the page's order; the cause's consequences marked."""
    out: list[dict[str, Any]] = []
    cause: str | None = None
    for check in sorted(incident.checks, key=order):
        data = incident.checks[check]
        spec = SPECS.get(check)
        line = {
            "check": check,
            "label": spec.label if spec else check,
            "status": data["status"],
            "kind": data.get("kind"),
            "message": data.get("message") or "",
            "since": data.get("since"),
            "consequence_of": None,
        }
        if data["status"] == DOWN:
            if cause is None:
                cause = check
            else:
                line["consequence_of"] = cause
        out.append(line)
    return out


def headline(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The line of the incident's cause: the first down check, else the first degraded one."""
    for status in (DOWN, DEGRADED):
        for line in found:
            if line["status"] == status:
                return line
    return found[0] if found else None


def join(incident: Incident, state: AlertState) -> None:
    """Bring one check's line up to date from its state, when it is part of the incident."""
    data = incident.checks.get(state.check)
    if state.alerted == UP and data is None:
        return
    kind, message = main_kind(state.causes)
    if data is None:
        data = incident.checks[state.check] = {"status": state.alerted, "since": state.problem_since}
    if LEVELS[state.alerted] > LEVELS[data["status"]]:
        data["status"] = state.alerted  # the worst it was, for the recovery
    if kind is not None or not data.get("kind"):
        data.update(kind=kind, message=message)


def pending(incident: Incident, states: list[AlertState], lvl: int) -> bool:
    """Whether another check may still join: it has not run since the incident began, or it is
    failing but not yet alerted at the incident's level."""
    began = incident.began or incident.since or 0.0
    for s in states:
        if LEVELS[s.alerted] >= lvl:
            continue
        if s.last_at is None or s.last_at < began:
            return True
        if (s.streak_down if lvl == 2 else s.streak_bad) > 0:
            return True
    return False


def hold_for(intervals: list[float]) -> float:
    """How long a new down or degraded event may wait for the other checks."""
    return min(HOLD_MAX, 1.2 * max(intervals, default=0.0) + 5.0)


def step(
    incident: Incident,
    states: list[AlertState],
    changed: AlertState,
    row: dict[str, Any],
    rules: Alerts,
) -> list[Event]:
    """Apply one result of one check (already evaluated into `changed`) to the instance's incident;
    `states` are every enabled check's states, `changed` among them. Returns the instance's events."""
    join(incident, changed)
    for s in states:
        if s is not changed and s.check in incident.checks:
            join(incident, s)
    now_level = max((LEVELS[s.alerted] for s in states), default=0)
    old = incident.level
    at = row["started_at"]
    if now_level > LEVELS[old] or (now_level and now_level < LEVELS[old]):
        new = DOWN if now_level == 2 else DEGRADED
        if old == UP:
            incident.since = min((s.problem_since for s in states if s.problem_since is not None), default=at)
        incident.level, incident.notified_at, incident.reminders = new, at, 0
        incident.began = changed.problem_since or at
        return [_rising(incident, new, old, at)]
    if old != UP and now_level == 0:
        out = [_event(incident, "resolved", old, UP, at)] if rules.send_on_resolved else []
        incident.level, incident.since, incident.checks, incident.notified_at = UP, None, {}, None
        incident.cause = None
        return out
    top = headline(lines(incident)) if old == DOWN and now_level == 2 else None
    if top and incident.cause and order(top["check"]) < order(incident.cause):
        # a check the cause needs went down too: a new cause, which people hear of
        incident.notified_at, incident.reminders, incident.began = at, 0, changed.problem_since or at
        return [_rising(incident, DOWN, DOWN, at)]
    if (
        old == DOWN
        and row["status"] == DOWN
        and not row["maintenance"]
        and rules.remind_every > 0
        and incident.notified_at is not None
        and at - incident.notified_at >= rules.remind_every
    ):
        incident.notified_at, incident.reminders = at, incident.reminders + 1
        return [_event(incident, "reminder", DOWN, DOWN, at)]
    return []


def _rising(incident: Incident, new: str, old: str, at: float) -> Event:
    event = _event(incident, new, old, new, at)
    incident.cause = event.check or None
    return event


def _event(incident: Incident, event: str, old: str, new: str, at: float) -> Event:
    found = lines(incident)
    top = headline(found) or {"check": "", "kind": None, "message": ""}
    return Event(
        event,
        incident.instance,
        top["check"],
        old,
        new,
        top["kind"],
        top["message"],
        incident.since if incident.since is not None else at,
        at,
        tuple(found),
    )


def refreshed(incident: Incident) -> dict[str, Any]:
    """A held event's columns brought up to date with the incident's lines."""
    found = lines(incident)
    top = headline(found) or {"check": "", "kind": None, "message": ""}
    return {"check": top["check"], "kind": top["kind"], "message": top["message"], "checks": found}


@dataclass(slots=True)
class Plan:
    """What to write for one catch-up: new events with when each is due, which of them stays held
    (its index), the held event's new columns, and the held event to release now."""

    events: list[tuple[Event, float]] = field(default_factory=list)
    held: int | None = None
    update: tuple[int, dict[str, Any]] | None = None
    release: int | None = None


def plan(incident: Incident, events: list[Event], now: float, hold: float, waiting: bool) -> Plan:
    """Hold a new down or degraded event for the other checks (`waiting`: some may still join),
    fold a later one into it, release it with a recovery or reminder or when nothing is left to
    wait for; `incident` keeps which event is held."""
    out = Plan()
    if incident.held_event is not None and now >= (incident.held_until or 0.0):
        out.release, incident.held_event = incident.held_event, None  # its time came: it is sent
    for e in events:
        rising = e.event in (DOWN, DEGRADED)
        if rising and out.held is not None:
            first, due = out.events[out.held]
            out.events[out.held] = (replace(e, old_status=first.old_status), due)
        elif rising and incident.held_event is not None:
            out.update = (incident.held_event, {"event": e.event, "new_status": e.new_status})
        elif rising:
            out.held, incident.held_old, incident.held_until = len(out.events), e.old_status, now + hold
            out.events.append((e, now + hold))
        else:
            _release(out, incident, now)
            out.events.append((e, now))
    if out.held is None and incident.held_event is None:
        return out
    columns = refreshed(incident) if incident.checks else {}  # what is held says what is known now
    if out.held is not None and columns:
        e, due = out.events[out.held]
        lines = tuple(columns.pop("checks"))
        out.events[out.held] = (replace(e, **columns, checks=lines), due)
    elif incident.held_event is not None and columns:
        out.update = (incident.held_event, {**(out.update or (0, {}))[1], **columns})
    incident.cause = columns.get("check") or incident.cause  # what the held event now names
    if not waiting:
        _release(out, incident, now)
    return out


def _release(out: Plan, incident: Incident, now: float) -> None:
    if out.held is not None:
        out.events[out.held] = (out.events[out.held][0], now)
        out.held = None
    if incident.held_event is not None:
        out.release, incident.held_event = incident.held_event, None
