"""The history schema, as sqlite-utils migrations. Other parts register their own migration sets."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

history = Migrations("history")

ROLLUP_COLUMNS = {
    "instance": str,
    "check": str,
    "bucket": int,  # unix seconds at the start of the hour or UTC day
    "count": int,
    "up": int,
    "degraded": int,
    "down": int,
    "maintenance": int,
    "latency_sum": float,
    "latency_n": int,
    "latency_min": float,
    "latency_max": float,
}


@history()
# Over 60 lines on purpose: table definitions, one statement each, and a migration that has run
# on users' databases is never rewritten.
def m001_initial(db: Database) -> None:
    db.table("results").create(
        {
            "id": int,
            "instance": str,
            "check": str,
            "started_at": float,
            "status": str,
            "kind": str,
            "message": str,
            "latency_ms": float,
            "http_status": int,
            "path": str,
            "steps": str,  # JSON list of steps
            "skew_s": float,
            "cert_days": float,
            "token_days": float,
            "version": str,
            "maintenance": int,
        },
        pk="id",
        not_null={"instance", "check", "started_at", "status"},
        defaults={"maintenance": 0},
    )
    db.table("results").create_index(["instance", "check", "started_at"])
    db.table("results").create_index(["started_at"])
    for table in ("rollups_hourly", "rollups_daily"):
        db.table(table).create(
            ROLLUP_COLUMNS,
            pk=("instance", "check", "bucket"),
            defaults={
                c: 0 for c in ("count", "up", "degraded", "down", "maintenance", "latency_sum", "latency_n")
            },
        )
    db.table("incidents").create(
        {
            "id": int,
            "instance": str,
            "check": str,
            "status": str,
            "kind": str,
            "message": str,
            "started_at": float,
            "ended_at": float,
            "last_message": str,
        },
        pk="id",
        not_null={"instance", "check", "status", "started_at"},
    )
    db.table("incidents").create_index(["instance", "check", "started_at"])
    db.table("incidents").create_index(["started_at"])
    db.table("check_state").create(
        {
            "instance": str,
            "check": str,
            "status": str,
            "kind": str,
            "message": str,
            "since": float,
            "last_at": float,
            "latency_ms": float,
            "consecutive": int,
            "version": str,
        },
        pk=("instance", "check"),
    )


@history()
def m002_compact_results(db: Database) -> None:
    """Raw results of an `up` run no longer carry their steps (the check's latest steps live in
    check_state), and pruning goes through the (instance, check, started_at) index, so the
    separate started_at index, a fifth of each row's cost, is dropped."""
    db.table("check_state").add_column("steps", str)
    db.execute("drop index if exists idx_results_started_at")


@history()
def m003_release_and_notice(db: Database) -> None:
    """What a check learnt about the 2FAuth release, and standing advice for the instance page."""
    db.table("check_state").add_column("release", str)
    db.table("check_state").add_column("notice", str)


def migrate(db: Database, *sets: Migrations) -> None:
    """Apply the history migrations and any other sets, each step in its own transaction."""
    for migrations in (history, *sets):
        migrations.apply(db)
