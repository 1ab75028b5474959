"""Alerting's tables and SQL: alert state per check, alert events, the outbox and delivery attempts.

An alert decision (state + event + one outbox row per notifier) is written in one transaction, so
a crash leaves either all of it or none; the worker then moves each outbox row from pending to
delivered or failed, recording every attempt.
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

alerts_migrations = Migrations("alerts")


@alerts_migrations()
# Over 60 lines on purpose: table definitions, one statement each, and a migration that has run
# on users' databases is never rewritten.
def m001_alerts(db: Database) -> None:
    db.table("alert_state").create(
        {
            "instance": str,
            "check": str,
            "alerted": str,  # up, degraded or down: what people were last told
            "since": float,
            "last_result_id": int,  # results.id of the last result evaluated
            "data": str,  # JSON of the evaluator's counts
            "updated_at": float,
        },
        pk=("instance", "check"),
    )
    db.table("alert_events").create(
        {
            "id": int,
            "instance": str,
            "check": str,
            "event": str,
            "old_status": str,
            "new_status": str,
            "kind": str,
            "message": str,
            "since": float,
            "at": float,
            "created_at": float,
        },
        pk="id",
        not_null={"instance", "check", "event", "at"},
    )
    db.table("alert_events").create_index(["instance", "check", "at"])
    db.table("outbox").create(
        {
            "id": int,
            "event_id": int,
            "delivery_id": str,  # the idempotency id receivers see
            "notifier": str,  # the notifier's name: never its URL, which may carry a token
            "instance": str,
            "check": str,
            "state": str,  # pending, delivered or failed
            "attempts": int,
            "created_at": float,
            "next_attempt_at": float,
            "delivered_at": float,
            "last_status": int,
            "last_error": str,
        },
        pk="id",
        not_null={"event_id", "delivery_id", "notifier", "state", "created_at"},
        defaults={"attempts": 0},
        foreign_keys=[("event_id", "alert_events", "id")],
    )
    db.table("outbox").create_index(["delivery_id"], unique=True)
    db.table("outbox").create_index(["state", "instance", "check", "notifier", "id"])
    db.table("outbox").create_index(["instance", "state"])
    db.table("delivery_attempts").create(
        {
            "id": int,
            "outbox_id": int,
            "notifier": str,
            "at": float,
            "duration_ms": float,
            "status": int,  # HTTP status when there was one
            "outcome": str,  # delivered, retry or failed
            "error": str,  # redacted
        },
        pk="id",
        foreign_keys=[("outbox_id", "outbox", "id")],
    )
    db.table("delivery_attempts").create_index(["outbox_id"])


@alerts_migrations()
def m002_incidents(db: Database) -> None:
    """One alert per incident: an instance's incident state, and each event's lines (one per check)."""
    db.table("alert_incidents").create({"instance": str, "data": str, "updated_at": float}, pk="instance")
    db.table("alert_events").add_column("checks", str)  # JSON list, one line per check
    # what was alerted check by check before is the instance's open incident: not alerted again
    levels = {"up": 0, "degraded": 1, "down": 2}
    incidents: dict[str, dict[str, Any]] = {}
    for row in db.query("select * from alert_state where alerted != 'up' order by instance, \"check\""):
        data = json.loads(row["data"] or "{}")
        inc = incidents.setdefault(
            row["instance"], {"instance": row["instance"], "level": "up", "checks": {}}
        )
        if levels.get(row["alerted"], 0) > levels.get(inc["level"], 0):
            inc["level"] = row["alerted"]
        since = data.get("problem_since") or row["since"]
        inc["since"] = min(inc.get("since") or since, since)
        inc["notified_at"] = max(inc.get("notified_at") or 0.0, data.get("notified_at") or 0.0) or None
        inc["checks"][row["check"]] = {
            "status": row["alerted"], "since": since, "kind": data.get("kind"), "message": data.get("message", "")
        }  # fmt: skip
    for inc in incidents.values():
        db.table("alert_incidents").insert(
            {"instance": inc["instance"], "data": json.dumps(inc), "updated_at": 0.0}
        )


_OUTBOX_COLUMNS = """o.id, o.event_id, o.delivery_id, o.notifier, o.instance, o."check", o.state, o.attempts,
    o.created_at, o.next_attempt_at, o.delivered_at, o.last_status, o.last_error"""
# a delivery waits for the older pending ones of its instance and notifier (an instance's events
# arrive in order: the down before the resolved)
_HEAD = """not exists (select 1 from outbox p where p.state = 'pending' and p.instance = o.instance
    and p.notifier = o.notifier and p.id < o.id)"""
_INSERT_EVENT = """insert into alert_events (instance, "check", event, old_status, new_status, kind, message,
    since, at, created_at, checks) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_INSERT_OUTBOX = """insert into outbox (event_id, delivery_id, notifier, instance, "check", state, attempts,
    created_at, next_attempt_at) values (?, ?, ?, ?, ?, 'pending', 0, ?, ?)"""
_EVENT_COLUMNS = ("check", "event", "new_status", "kind", "message", "checks")

Planned = tuple[dict[str, Any], list[tuple[str, str]], float]  # event, (notifier, delivery id)s, due at


class AlertStore:
    """SQL for alerting, on the Store's connection (the event loop's thread)."""

    def __init__(self, db: Database, *, migrate: bool = True) -> None:
        self.db = db
        if migrate:
            alerts_migrations.apply(db)  # no-op when the Store applied it already

    # --- evaluation ---------------------------------------------------------------------------

    def states(self) -> dict[tuple[str, str], dict[str, Any]]:
        out = {}
        for row in self.db.query("select * from alert_state"):
            data = json.loads(row["data"] or "{}")
            data.update(instance=row["instance"], check=row["check"], last_result_id=row["last_result_id"])
            out[(row["instance"], row["check"])] = data
        return out

    def results_after(
        self, instance: str, check: str, after_id: int, started_from: float, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Results of one check recorded after `after_id`, oldest first (the newest `limit` of them).

        `started_from` bounds the index range scanned: no result to see started before it.
        """
        rows = self.db.execute(
            """select id, started_at, status, kind, message, maintenance from results
               where instance = ? and "check" = ? and started_at >= ? and id > ?
               order by id desc limit ?""",
            (instance, check, started_from, after_id, limit),
        ).fetchall()
        keys = ("id", "started_at", "status", "kind", "message", "maintenance")
        return [dict(zip(keys, r, strict=True)) for r in reversed(rows)]

    def last_id_before(self, instance: str, check: str, started_at: float) -> int:
        """The last result id of a check before a time: where to start when no alert state exists."""
        row = self.db.execute(
            """select max(id) from results where instance = ? and "check" = ? and started_at < ?""",
            (instance, check, started_at),
        ).fetchone()
        return int(row[0] or 0)

    def incidents(self) -> dict[str, dict[str, Any]]:
        return {r["instance"]: json.loads(r["data"]) for r in self.db.query("select * from alert_incidents")}

    def write(
        self,
        state: dict[str, Any],
        events: list[Planned],
        now: float,
        *,
        incident: dict[str, Any] | None = None,
        held: int | None = None,
        update: tuple[int, dict[str, Any]] | None = None,
        release: int | None = None,
    ) -> None:
        """One check's new alert state, its instance's incident, new events with their outbox rows,
        a held event's new columns (`update`) or its release, in the caller's transaction. `held`:
        the index in `events` of the one now held, whose id the incident keeps."""
        conn = self.db.conn
        data = {k: v for k, v in state.items() if k not in ("instance", "check", "last_result_id")}
        conn.execute(
            """insert or replace into alert_state
               (instance, "check", alerted, since, last_result_id, data, updated_at)
               values (?, ?, ?, ?, ?, ?, ?)""",
            (state["instance"], state["check"], state["alerted"], state["since"],
             state["last_result_id"], json.dumps(data), now),
        )  # fmt: skip
        for i, (event, deliveries, due) in enumerate(events):
            event_id = self._insert_event(event, deliveries, due, now)
            if incident is not None and i == held:
                incident["held_event"] = event_id
        if update is not None:
            self._update_event(*update)
        if release is not None:
            conn.execute(
                """update outbox set next_attempt_at = ? where event_id = ? and state = 'pending'
                   and attempts = 0 and next_attempt_at > ?""",
                (now, release, now),
            )
        if incident is not None:
            conn.execute(
                "insert or replace into alert_incidents (instance, data, updated_at) values (?, ?, ?)",
                (incident["instance"], json.dumps(incident), now),
            )

    def _insert_event(
        self, event: dict[str, Any], deliveries: list[tuple[str, str]], due: float, now: float
    ) -> int:
        cur = self.db.conn.execute(
            _INSERT_EVENT,
            (event["instance"], event["check"], event["event"], event["old_status"], event["new_status"],
             event["kind"], event["message"], event["since"], event["at"], now,
             json.dumps(list(event.get("checks") or ()))),
        )  # fmt: skip
        event_id = int(cur.lastrowid or 0)
        for notifier, delivery_id in deliveries:
            self.db.conn.execute(
                _INSERT_OUTBOX,
                (event_id, delivery_id, notifier, event["instance"], event["check"], now, max(now, due)),
            )
        return event_id

    def _update_event(self, event_id: int, columns: dict[str, Any]) -> None:
        names = [c for c in _EVENT_COLUMNS if c in columns]
        values = [json.dumps(columns[c]) if c == "checks" else columns[c] for c in names]
        assignments = ", ".join(f'"{c}" = ?' for c in names)
        self.db.conn.execute(f"update alert_events set {assignments} where id = ?", (*values, event_id))
        if "check" in columns:
            self.db.conn.execute(
                'update outbox set "check" = ? where event_id = ?', (columns["check"], event_id)
            )

    # --- delivery -----------------------------------------------------------------------------

    def due(self, now: float, limit: int = 100) -> list[dict[str, Any]]:
        """Pending deliveries due now, each the oldest pending one of its check and notifier."""
        return list(
            self.db.query(
                f"""select {_OUTBOX_COLUMNS} from outbox o
                    where o.state = 'pending' and o.next_attempt_at <= ? and {_HEAD}
                    order by o.id limit ?""",
                [now, limit],
            )
        )

    def next_due(self) -> float | None:
        row = self.db.execute(
            f"select min(o.next_attempt_at) from outbox o where o.state = 'pending' and {_HEAD}"
        ).fetchone()
        return row[0]

    def event(self, event_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from alert_events where id = ?", [event_id]))
        return rows[0] if rows else None

    def record_attempt(
        self,
        row: dict[str, Any],
        *,
        at: float,
        duration_ms: float,
        status: int | None,
        outcome: str,
        error: str | None,
        next_attempt_at: float | None = None,
    ) -> None:
        """One attempt and the delivery's new state (delivered, pending again, or failed), together."""
        state = {"delivered": "delivered", "retry": "pending", "failed": "failed"}[outcome]
        with self.db.conn as conn:
            conn.execute(
                """insert into delivery_attempts (outbox_id, notifier, at, duration_ms, status, outcome, error)
                   values (?, ?, ?, ?, ?, ?, ?)""",
                (row["id"], row["notifier"], at, round(duration_ms, 2), status, outcome, error),
            )
            conn.execute(
                """update outbox set state = ?, attempts = attempts + 1, next_attempt_at = ?,
                       delivered_at = ?, last_status = ?, last_error = ? where id = ?""",
                (
                    state,
                    next_attempt_at,
                    at if outcome == "delivered" else None,
                    status,
                    error,
                    row["id"],
                ),
            )

    def fail_unsent(self, row: dict[str, Any], error: str) -> None:
        """Mark a delivery failed without an attempt (its notifier is no longer configured)."""
        with self.db.conn as conn:
            conn.execute(
                "update outbox set state = 'failed', last_error = ?, next_attempt_at = null where id = ?",
                (error, row["id"]),
            )

    # --- read side: status page and metrics ------------------------------------------------------

    def deliveries(self, instance: str | None = None, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
        """Pending and failed deliveries (newest first), with their event, for the status page."""
        out: dict[str, list[dict[str, Any]]] = {}
        for state in ("pending", "failed"):
            where, args = "o.state = ?", [state]
            if instance is not None:
                where += " and o.instance = ?"
                args.append(instance)
            out[state] = list(
                self.db.query(
                    f"""select {_OUTBOX_COLUMNS}, e.event, e.old_status, e.new_status, e.kind, e.message,
                            e.since, e.at from outbox o join alert_events e on e.id = o.event_id
                        where {where} order by o.id desc limit ?""",
                    [*args, limit],
                )
            )
        return out

    def outbox_counts(self) -> dict[tuple[str, str], int]:
        """{(notifier, state): count} for unfinished states (pending, failed) present."""
        return {
            (r[0], r[1]): r[2]
            for r in self.db.execute(
                "select notifier, state, count(*) from outbox where state != 'delivered' group by notifier, state"
            )
        }

    def oldest_pending(self) -> float | None:
        """created_at of the oldest pending delivery."""
        return self.db.execute("select min(created_at) from outbox where state = 'pending'").fetchone()[0]

    def prune(self, before: float) -> int:
        """Delete finished deliveries, their attempts and events older than `before`; returns events deleted."""
        with self.db.conn as conn:
            old = "select id from outbox where state != 'pending' and created_at < ?"
            conn.execute(f"delete from delivery_attempts where outbox_id in ({old})", (before,))
            conn.execute("delete from outbox where state != 'pending' and created_at < ?", (before,))
            cur = conn.execute(
                """delete from alert_events where at < ?
                   and not exists (select 1 from outbox o where o.event_id = alert_events.id)""",
                (before,),
            )
            return cur.rowcount
