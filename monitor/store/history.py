"""The write side of the history: results, rollups, check state and incidents, and pruning.

`record` computes the state change in memory and queues the write; `flush` writes the queue
in one transaction. When the database cannot be written (read-only, disk full, locked) the
queue is kept (bounded) and retried on the next flush, so checks go on and nothing recorded in
memory is lost until the queue limit; `healthy` and `last_error` tell the web server's /ready.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from monitor.models import DAY, HOUR, Result, Status, Step
from monitor.plural import plural
from monitor.secrets import redact
from monitor.store.raw import Learnt, RawRows, ResultRow
from monitor.store.schema import STATUS_CODES

log = logging.getLogger("monitor.store")


@dataclass(frozen=True, slots=True)
class CheckState:
    instance: str
    check: str
    status: str
    kind: str | None
    message: str
    since: float
    last_at: float
    latency_ms: float | None
    consecutive: int
    version: str | None = None
    steps: str | None = None  # JSON: the steps of the latest run
    release: str | None = None  # what the answers showed about the 2FAuth release
    notice: str | None = None  # standing advice (the latest run's)

    def row(self) -> tuple[Any, ...]:
        """The check_state row, in field order (astuple's deep copy would cost each write)."""
        return tuple(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class Transition:
    """A check changed state."""

    instance: str
    check: str
    old_status: str | None  # None for the first result ever
    new_status: str
    kind: str | None
    message: str
    since: float  # when the old state began
    at: float  # when the new state began


_UPSERT_ROLLUP = """insert into {table} (instance, "check", bucket, count, up, degraded, down, maintenance,
        latency_sum, latency_n, latency_min, latency_max)
    values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    on conflict (instance, "check", bucket) do update set
        count = count + excluded.count, up = up + excluded.up, degraded = degraded + excluded.degraded,
        down = down + excluded.down, maintenance = maintenance + excluded.maintenance,
        latency_sum = latency_sum + excluded.latency_sum,
        latency_n = latency_n + excluded.latency_n,
        latency_min = min(coalesce(latency_min, excluded.latency_min),
                          coalesce(excluded.latency_min, latency_min)),
        latency_max = max(coalesce(latency_max, excluded.latency_max),
                          coalesce(excluded.latency_max, latency_max))"""
_SAVE_STATE = """insert or replace into check_state
    (instance, "check", status, kind, message, since, last_at, latency_ms, consecutive, version, steps,
     release, notice)
    values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


# Called inside the write transaction, after the batch's rows are in (alerting's evaluation: its
# state is then committed with the results it has seen, or not at all). It must not raise; it
# returns what to do once the transaction has ended (True: committed), or None.
WriteHook = Callable[[sqlite3.Connection, list[ResultRow]], Callable[[bool], None] | None]


@dataclass(slots=True)
class _Pending:
    row: ResultRow
    state: CheckState
    transition: Transition | None


def _add_to_rollups(sums: dict[tuple[str, str, str, int], list[Any]], row: ResultRow) -> None:
    """Add one result row to its hourly and daily buckets: [runs, up, degraded, down, maintenance,
    latency sum, latency count, latency min, latency max]."""
    instance, check, at, status, _, _, latency, *_, maint = row
    # a run during maintenance counts only as maintenance, never as up or down
    counts = [1 if status == s and not maint else 0 for s in ("up", "degraded", "down")]
    for table, size in (("rollups_hourly", HOUR), ("rollups_daily", DAY)):
        key = (table, instance, check, int(at // size * size))
        acc = sums.get(key)
        if acc is None:
            sums[key] = [1, *counts, maint, latency or 0.0, 0 if latency is None else 1, latency, latency]
            continue
        acc[0] += 1
        for i, n in enumerate(counts, start=1):
            acc[i] += n
        acc[4] += maint
        if latency is not None:
            acc[5] += latency
            acc[6] += 1
            acc[7] = latency if acc[7] is None else min(acc[7], latency)
            acc[8] = latency if acc[8] is None else max(acc[8], latency)


class HistoryWriter:
    def __init__(self, db: Database, *, max_pending: int = 100_000) -> None:
        self.db = db
        self.states: dict[tuple[str, str], CheckState] = {}
        self.pending: deque[_Pending] = deque()
        self.max_pending = max_pending
        self.healthy = True
        self.last_error: str | None = None
        self.write_seconds_total = 0.0
        self.writes_total = 0
        self.hooks: list[WriteHook] = []
        for row in db.query("select * from check_state"):
            self.states[(row["instance"], row["check"])] = CheckState(**row)
        self.raw = RawRows(db)

    def record(self, result: Result, *, maintenance: bool = False) -> Transition | None:
        """Queue a result; returns the state change it makes, if any."""
        key = (result.instance, result.check)
        old = self.states.get(key)
        status = str(result.status)
        kind = str(result.kind) if result.kind else None
        message = redact(result.message)
        at = result.started_at
        transition = None
        if old is None or old.status != status:
            transition = Transition(
                result.instance,
                result.check,
                old.status if old else None,
                status,
                kind,
                message,
                old.since if old else at,
                at,
            )
        steps = _steps_json(result.steps)
        state = self.states[key] = _next_state(result, old, status, kind, message, steps)
        if len(self.pending) >= self.max_pending:
            self.pending.popleft()
            log.error(
                "the database has not been writable for long: %d results are queued, so the oldest "
                "is dropped",
                self.max_pending,
            )
        self.pending.append(
            _Pending(_row(result, status, kind, message, steps, maintenance), state, transition)
        )
        return transition

    def flush(self) -> bool:
        """Write everything queued in one transaction; False (and the queue kept) on failure."""
        if not self.pending:
            return True
        batch = list(self.pending)
        started = time.perf_counter()
        after: list[Callable[[bool], None]] = []
        try:
            with self.db.conn:
                learnt = self._write(batch)
                rows = [item.row for item in batch]
                for hook in self.hooks:
                    if (done := hook(self.db.conn, rows)) is not None:
                        after.append(done)
        except sqlite3.Error as exc:
            for done in after:
                done(False)
            error = f"cannot write the database: {exc}"
            if self.healthy or error != self.last_error:
                log.error("%s; %d results kept in memory", error, len(self.pending))
            self.healthy, self.last_error = False, error
            return False
        self.raw.learn(learnt)
        for _ in batch:
            self.pending.popleft()
        for done in after:
            done(True)
        elapsed = time.perf_counter() - started
        self.write_seconds_total += elapsed
        self.writes_total += 1
        if not self.healthy:
            log.info("database writable again; %s written", plural(len(batch), "queued result"))
        self.healthy, self.last_error = True, None
        return True

    def _write(self, batch: list[_Pending]) -> Learnt:
        """One batch: results with executemany, rollups summed per bucket first, the last state of
        each check, and incidents in the order their results came (one statement per result,
        about 45 us, was most of the write time)."""
        conn = self.db.conn
        learnt = self.raw.insert(conn, [item.row for item in batch])
        sums: dict[tuple[str, str, str, int], list[Any]] = {}
        states: dict[tuple[str, str], CheckState] = {}
        for item in batch:
            _add_to_rollups(sums, item.row)
            states[(item.state.instance, item.state.check)] = item.state
            self._write_incident(item)
        for table in ("rollups_hourly", "rollups_daily"):
            conn.executemany(
                _UPSERT_ROLLUP.format(table=table),
                [(i, c, bucket, *acc) for (t, i, c, bucket), acc in sums.items() if t == table],
            )
        conn.executemany(_SAVE_STATE, [s.row() for s in states.values()])
        return learnt

    def _write_incident(self, item: _Pending) -> None:
        conn = self.db.conn
        s, t = item.state, item.transition
        if t is not None:
            conn.execute(
                'update incidents set ended_at = ? where instance = ? and "check" = ? and ended_at is null',
                (t.at, t.instance, t.check),
            )
            if t.new_status != Status.UP:
                conn.execute(
                    """insert into incidents (instance, "check", status, kind, message, started_at, last_message)
                       values (?, ?, ?, ?, ?, ?, ?)""",
                    (t.instance, t.check, t.new_status, t.kind, t.message, t.at, t.message),
                )
        elif s.status != Status.UP:
            conn.execute(
                'update incidents set last_message = ? where instance = ? and "check" = ? and ended_at is null',
                (s.message, s.instance, s.check),
            )

    def prune(
        self,
        *,
        raw_retention: float,
        rollup_retention: float,
        success_retention: float | None = None,
        now: float | None = None,
    ) -> dict[str, int]:
        """Delete raw results and rollups past their retention; returns rows deleted per table.

        Raw results of `up` runs may be kept for less time (`success_retention`) than failures:
        the rollups already hold their counts and latency, the failures hold the messages."""
        now = time.time() if now is None else now
        deleted = {"results": 0}
        up_keep = raw_retention if success_retention is None else min(success_retention, raw_retention)
        series = [n for (n,) in self.db.conn.execute("select id from series")]
        with self.db.conn:
            for n in series:  # through the (series, id) key: a check's ids grow with its start times
                deleted["results"] += _delete_before(self.db.conn, n, now - raw_retention, "")
                if up_keep < raw_retention:
                    deleted["results"] += _delete_before(
                        self.db.conn, n, now - up_keep, f"and status = {STATUS_CODES['up']}"
                    )
            for table, column, keep in (
                ("rollups_hourly", "bucket", max(raw_retention, 35 * DAY)),
                ("rollups_daily", "bucket", rollup_retention),
                ("incidents", "started_at", rollup_retention),
            ):
                cur = self.db.conn.execute(f"delete from {table} where {column} < ?", (now - keep,))
                deleted[table] = cur.rowcount
        self.db.conn.execute(
            "pragma wal_checkpoint(truncate)" if sum(deleted.values()) > 10_000 else "select 1"
        )
        return deleted

    def forget(self, instance: str, check: str | None = None) -> None:
        """Drop in-memory state for checks removed from the configuration (their history stays)."""
        for key in [k for k in self.states if k[0] == instance and (check is None or k[1] == check)]:
            del self.states[key]


def _delete_before(conn: sqlite3.Connection, series: int, cutoff: float, only: str) -> int:
    """Delete a check's raw results that started before `cutoff` (and match `only`): the rows
    before its first id that started at or after it, found by reading forward from its oldest."""
    first = conn.execute(
        "select id from raw_results where series = ? and at >= ? order by id limit 1", (series, cutoff)
    ).fetchone()
    if first is None:
        sql, args = f"delete from raw_results where series = ? and at < ? {only}", (series, cutoff)
    else:
        sql, args = f"delete from raw_results where series = ? and id < ? {only}", (series, first[0])
    return conn.execute(sql, args).rowcount


def _steps_json(steps: list[Step]) -> str:
    """The steps as stored: Step.to_dict's keys, the outcome redacted (built by hand: asdict's deep
    copy was a tenth of a result's record time)."""
    return json.dumps(
        [
            {
                "name": s.name,
                "method": s.method,
                "path": s.path,
                "status": s.status,
                "duration_ms": s.duration_ms,
                "outcome": redact(s.outcome),
            }
            for s in steps
        ]
    )


def _next_state(
    result: Result, old: CheckState | None, status: str, kind: str | None, message: str, steps: str | None
) -> CheckState:
    """The check's state after `result`: its run goes on while the status stays the same."""
    at = result.started_at
    if old is None or old.status != status:
        since, consecutive = at, 1
    else:
        since, consecutive = old.since, old.consecutive + 1
    return CheckState(
        result.instance,
        result.check,
        status,
        kind,
        message,
        since,
        at,
        result.latency_ms,
        consecutive,
        result.version or (old.version if old else None),
        steps,
        result.release or (old.release if old else None),
        redact(result.notice) if result.notice else (old.notice if old and result.status != "up" else None),
    )


def _row(
    result: Result, status: str, kind: str | None, message: str, steps: str | None, maintenance: bool
) -> ResultRow:
    """The result as it is queued for `raw_results`."""
    return ResultRow(
        result.instance,
        result.check,
        result.started_at,
        status,
        kind,
        message,
        result.latency_ms,
        result.http_status,
        result.path,
        None if status == "up" else steps,  # an up run's steps are kept only as the latest
        result.skew_s,
        result.cert_days,
        result.token_days,
        result.version,
        1 if maintenance else 0,
    )
