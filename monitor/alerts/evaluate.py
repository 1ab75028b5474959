"""Alert decisions from a check's run of results: thresholds, de-escalation, resolve, reminders.

Pure: `evaluate` takes the stored alert state and one result (status and its time) and returns the
events that result makes; the caller writes state and events in one transaction. Time comes from
the results themselves, so a timeline replays the same way live, after a crash, or in a test.

A result's level: down 2, degraded 1 (0 when `alert_on_degraded` is off), up 0.
- `failure_threshold` consecutive downs -> "down"; as many consecutive non-up results, while
  nothing is alerted, -> "degraded" (a warning).
- while "down" is alerted, `success_threshold` consecutive non-down results ending degraded -> "degraded".
- while anything is alerted, `success_threshold` consecutive ups -> "resolved" (sent when `send_on_resolved`).
- while "down" is alerted, every `remind_every` -> "reminder".
- a result during maintenance makes no event and restarts every count.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Self

from monitor.config import Alerts

DOWN, DEGRADED, UP = "down", "degraded", "up"


def _copied(value: Any) -> Any:
    """A copy of JSON-shaped data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


class Stored:
    """A dataclass kept as JSON in the database: to and from a dict (unknown keys are dropped).
    Copies are made for every result evaluated, so they copy only the containers (`asdict` deep-
    copied each leaf and was most of alerting's cost per result)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Its fields, the containers copied (the dict does not share them with the object)."""
        out: dict[str, Any] = {}
        names: tuple[str, ...] = self.__slots__  # a slots dataclass's fields, in order
        for name in names:
            value = getattr(self, name)
            out[name] = _copied(value) if value.__class__ in (dict, list) else value
        return out

    def copy(self) -> Self:
        """An independent copy: changing it (or its containers) leaves this one as it was."""
        return type(self)(**self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class AlertState(Stored):
    """What people were last told about one check, and the counts that lead to the next message."""

    instance: str
    check: str
    alerted: str = UP  # up, degraded or down
    since: float | None = None  # when the alerted status began
    problem_since: float | None = None  # when the alerted problem began (for "resolved")
    notified_at: float | None = None  # the last down/degraded/reminder event
    reminders: int = 0
    streak_down: int = 0
    down_since: float | None = None
    streak_bad: int = 0
    bad_since: float | None = None
    streak_notdown: int = 0
    notdown_since: float | None = None
    streak_ok: int = 0
    last_result_id: int = 0
    last_at: float | None = None
    kind: str | None = None
    message: str = ""
    # the causes of the check's current problem: kind -> [runs, the latest message of that kind]
    causes: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    event: str  # down, degraded, resolved, reminder
    instance: str
    check: str
    old_status: str
    new_status: str
    kind: str | None
    message: str
    since: float
    at: float
    # an instance's event: one line per check of the incident (monitor/alerts/incident.py)
    checks: tuple[dict[str, Any], ...] = ()


def level(status: str, rules: Alerts) -> int:
    if status == DOWN:
        return 2
    if status == DEGRADED and rules.alert_on_degraded:
        return 1
    return 0


def _count(state: AlertState, lvl: int, at: float) -> None:
    for name, hit in (("down", lvl == 2), ("bad", lvl >= 1), ("notdown", lvl <= 1)):
        streak = getattr(state, f"streak_{name}") + 1 if hit else 0
        setattr(state, f"streak_{name}", streak)
        if streak == 1:
            setattr(state, f"{name}_since", at)
    state.streak_ok = state.streak_ok + 1 if lvl == 0 else 0


def _reset(state: AlertState) -> None:
    state.streak_down = state.streak_bad = state.streak_notdown = state.streak_ok = 0
    state.down_since = state.bad_since = state.notdown_since = None


def evaluate(
    state: AlertState,
    status: str,
    at: float,
    rules: Alerts,
    *,
    kind: str | None = None,
    message: str = "",
    maintenance: bool = False,
) -> list[Event]:
    """Apply one result to `state` (changed in place); returns the events it makes."""
    state.last_at = at
    if maintenance:
        _reset(state)
        return []
    state.kind, state.message = kind, message
    lvl = level(status, rules)
    _count(state, lvl, at)
    failures, successes = rules.failure_threshold, rules.success_threshold
    old = state.alerted

    def fire(event: str, new: str, since: float) -> list[Event]:
        return [Event(event, state.instance, state.check, old, new, kind, message, since, at)]

    def alert(new: str, since: float) -> list[Event]:
        state.alerted, state.since, state.notified_at, state.reminders = new, since, at, 0
        if state.problem_since is None:
            state.problem_since = since
        return fire(new, new, since)

    if old != DOWN and state.streak_down >= failures:
        return alert(DOWN, state.down_since or at)
    if old == UP and state.streak_bad >= failures:
        return alert(DEGRADED, state.bad_since or at)
    if old == DOWN and lvl == 1 and state.streak_notdown >= successes:
        return alert(DEGRADED, state.notdown_since or at)
    if old != UP and state.streak_ok >= successes:
        began = state.problem_since or state.since or at
        state.alerted, state.since, state.problem_since, state.notified_at = UP, at, None, None
        return fire("resolved", UP, began) if rules.send_on_resolved else []
    if (
        old == DOWN
        and lvl == 2
        and rules.remind_every > 0
        and state.notified_at is not None
        and at - state.notified_at >= rules.remind_every
    ):
        state.notified_at = at
        state.reminders += 1
        return fire("reminder", DOWN, state.since or at)
    return []
