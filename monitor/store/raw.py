"""Raw results as stored (schema m004): texts that repeat become integers, ids are handed out in
the write transaction, so a failed write hands out nothing and two writers never share an id.

A queued result is a `ResultRow` of plain values; `RawRows.insert` turns a batch of them into
`raw_results` rows inside the caller's transaction and `learn` keeps the ids it made once that
transaction has committed.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any, NamedTuple

from sqlite_utils import Database

from monitor.store.schema import STATUS_CODES


class ResultRow(NamedTuple):
    instance: str
    check: str
    started_at: float
    status: str
    kind: str | None
    message: str
    latency_ms: float | None
    http_status: int | None
    path: str | None
    steps: str | None
    skew_s: float | None
    cert_days: float | None
    token_days: float | None
    version: str | None
    maintenance: int


_INSERT = (
    "insert into raw_results (series, id, at, status, latency_us, http_from_200, path, version, kind, "
    "message, steps, skew_ms, cert_mdays, token_mdays, maintenance) "
    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_MILLI_MAX = 2**62  # within SQLite's 64-bit integers, for any finite value a target answers


class Learnt(NamedTuple):
    series: dict[tuple[str, str], int]
    texts: dict[str, int]


class RawRows:
    def __init__(self, db: Database) -> None:
        self.series = {(i, c): n for n, i, c in db.execute('select id, instance, "check" from series')}
        self.texts = {v: n for n, v in db.execute("select id, value from texts")}

    def series_of(self, instance: str) -> list[int]:
        return [n for (i, _), n in self.series.items() if i == instance]

    def insert(self, conn: sqlite3.Connection, rows: list[ResultRow]) -> Learnt:
        """Insert the rows (in the caller's transaction); what it learnt, for `learn` after commit."""
        learnt = Learnt({}, {})
        # the update takes the write lock first, so the ids below are this writer's alone
        (last,) = conn.execute(
            "update result_ids set last = last + ? returning last", (len(rows),)
        ).fetchone()
        first = last - len(rows) + 1
        conn.executemany(
            _INSERT,
            [self._raw(conn, learnt, first + i, row) for i, row in enumerate(rows)],
        )
        return learnt

    def learn(self, learnt: Learnt) -> None:
        self.series.update(learnt.series)
        self.texts.update(learnt.texts)

    def _raw(self, conn: sqlite3.Connection, learnt: Learnt, rid: int, r: ResultRow) -> tuple[Any, ...]:
        key = (r.instance, r.check)
        series = self.series.get(key) or learnt.series.get(key)
        if series is None:
            conn.execute('insert or ignore into series (instance, "check") values (?, ?)', key)
            (series,) = conn.execute(
                'select id from series where instance = ? and "check" = ?', key
            ).fetchone()
            learnt.series[key] = series
        return (
            series,
            rid,
            r.started_at,
            STATUS_CODES[r.status],
            _milli(r.latency_ms),
            None if r.http_status is None else r.http_status - 200,  # 200 is 0: no byte
            self._text(conn, learnt, r.path),
            self._text(conn, learnt, r.version),
            self._text(conn, learnt, r.kind),
            r.message,
            r.steps,
            _milli(r.skew_s),
            _milli(r.cert_days),
            _milli(r.token_days),
            r.maintenance,
        )

    def _text(self, conn: sqlite3.Connection, learnt: Learnt, value: str | None) -> int | None:
        if value is None:
            return None
        found = self.texts.get(value) or learnt.texts.get(value)
        if found is None:
            conn.execute("insert or ignore into texts (value) values (?)", (value,))
            (found,) = conn.execute("select id from texts where value = ?", (value,)).fetchone()
            learnt.texts[value] = found
        return found


def _milli(value: float | None) -> int | None:
    """Thousandths, as stored: 1 to 3 bytes instead of a float's 8, and exact for the values the
    checks round to 1 or 2 decimal places (the view divides by 1000.0 and gets the same float)."""
    if value is None or not math.isfinite(value):  # a hostile answer's inf or nan: not a figure
        return None
    return max(-_MILLI_MAX, min(_MILLI_MAX, round(value * 1000)))
