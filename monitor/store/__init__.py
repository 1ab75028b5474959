"""The only package that runs SQL: migrations, record, rollups, queries, prune.

`Store` opens one SQLite file (WAL) and owns one connection, which belongs to the thread that
opened it (the event loop's thread in `run`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from monitor.sanitize import bound_result
from monitor.store import queries
from monitor.store.alerts import alerts_migrations
from monitor.store.history import CheckState, HistoryWriter, Transition, WriteHook
from monitor.store.schema import migrate

__all__ = ["CheckState", "Store", "StoreError", "Transition"]


class StoreError(Exception):
    """The database cannot be opened or migrated; the message says why in one line."""


class Store(queries.Queries):
    def __init__(self, path: str | Path, *, read_only: bool = False, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self.read_only = read_only
        try:
            if self.path != ":memory:" and not read_only:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            if read_only:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            else:
                conn = sqlite3.connect(self.path, timeout=busy_timeout)
            conn.execute(f"pragma busy_timeout = {int(busy_timeout * 1000)}")
            self.db = Database(conn)
            if not read_only:
                if self.path != ":memory:":
                    self.db.enable_wal()
                conn.execute("pragma synchronous = normal")
                conn.execute("pragma foreign_keys = on")
                migrate(self.db, alerts_migrations)  # every table, alerting's too
            elif not self.db["raw_results"].exists():
                raise StoreError(
                    f"the database {self.path} has not been converted to this version's schema yet: "
                    "run the monitor (2fauth-monitor run) on it once"
                )
            self.writer = HistoryWriter(self.db)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the database {self.path}: {exc}") from None

    @property
    def healthy(self) -> bool:
        return self.writer.healthy

    def record(self, result, *, maintenance: bool = False) -> Transition | None:
        return self.writer.record(bound_result(result), maintenance=maintenance)

    def flush(self) -> bool:
        return self.writer.flush()

    def on_write(self, hook: WriteHook) -> None:
        """Run `hook` inside every write transaction of results (see history.WriteHook)."""
        self.writer.hooks.append(hook)

    def prune(
        self,
        *,
        raw_retention: float,
        rollup_retention: float,
        success_retention: float | None = None,
        now: float | None = None,
    ) -> dict[str, int]:
        return self.writer.prune(
            raw_retention=raw_retention,
            rollup_retention=rollup_retention,
            success_retention=success_retention,
            now=now,
        )

    def states(self) -> dict[tuple[str, str], CheckState]:
        """Each check's current state: the writer's, or for a read-only store, what is committed."""
        if self.read_only:
            return {
                (r["instance"], r["check"]): CheckState(**r)
                for r in self.db.query("select * from check_state")
            }
        return dict(self.writer.states)

    def integrity_ok(self) -> bool:
        return self.db.conn.execute("pragma integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.db.conn.close()
