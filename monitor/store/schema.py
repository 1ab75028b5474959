"""The history schema, as sqlite-utils migrations. Other parts register their own migration sets."""

from __future__ import annotations

import logging
import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

history = Migrations("history")
log = logging.getLogger("monitor.store")

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


# Raw results, compact (m004): one integer per instance and check (`series`), per kind, path and
# version (`texts`); the status a small integer (up is 0, stored in no byte), the HTTP status less
# 200 (so 200 takes no byte either), the latency in microseconds, and the skew and the certificate
# and token days in thousandths (exact for the values the checks round to 1 or 2 places); in a
# table keyed by (series, id) WITHOUT ROWID, so the key is its only index. `results` is a view of
# it with the columns and values of the old table, for every reader.
STATUS_CODES = {"up": 0, "down": 1, "degraded": 2}
_STATUS_SQL = "case r.status when 0 then 'up' when 1 then 'down' when 2 then 'degraded' end"
RESULTS_SELECT = (
    """select r.id as id, s.instance as instance, s."check" as "check", r.at as started_at,
           """
    + _STATUS_SQL
    + """ as status, k.value as kind, r.message as message,
           r.latency_us / 1000.0 as latency_ms, r.http_from_200 + 200 as http_status, p.value as path,
           r.steps as steps, r.skew_ms / 1000.0 as skew_s, r.cert_mdays / 1000.0 as cert_days,
           r.token_mdays / 1000.0 as token_days,
           v.value as version, r.maintenance as maintenance
    from {raw} r join series s on s.id = r.series
    left join texts k on k.id = r.kind left join texts p on p.id = r.path
    left join texts v on v.id = r.version"""
)
# `{raw}`: raw_results, or a subquery of it
RESULTS_VIEW = "create view results as " + RESULTS_SELECT.format(raw="raw_results")


@history()
def m004_compact_results(db: Database) -> None:
    """Raw rows of about a third of their size (90 bytes each before): see RESULTS_VIEW. Converts
    the rows in place, ids kept (the alert state points at them)."""
    db.execute(
        'create table series (id integer primary key, instance text not null, "check" text not null, '
        'unique (instance, "check"))'
    )
    db.execute("create table texts (id integer primary key, value text not null unique)")
    db.execute(
        """create table raw_results (series integer not null, id integer not null, at real not null,
            status integer not null, latency_us integer, http_from_200 integer, path integer,
            version integer, kind integer, message text, steps text, skew_ms integer,
            cert_mdays integer, token_mdays integer, maintenance integer not null default 0,
            primary key (series, id)) without rowid"""
    )
    db.execute("create index raw_results_failures on raw_results (series, at) where status != 0")
    db.execute("create table result_ids (last integer not null)")
    db.execute("insert into result_ids values ((select coalesce(max(id), 0) from results))")
    db.execute(
        'insert into series (instance, "check") select distinct instance, "check" from results '
        'union select instance, "check" from check_state order by 1, 2'
    )
    db.execute(
        "insert into texts (value) select kind from results where kind is not null "
        "union select path from results where path is not null "
        "union select version from results where version is not null"
    )
    codes = " ".join(f"when '{name}' then {code}" for name, code in STATUS_CODES.items())
    db.execute(
        f"""insert into raw_results select s.id, r.id, r.started_at, case r.status {codes} end,
                   cast(round(r.latency_ms * 1000) as integer), r.http_status - 200, p.id, v.id, k.id,
                   r.message, r.steps, cast(round(r.skew_s * 1000) as integer),
                   cast(round(r.cert_days * 1000) as integer), cast(round(r.token_days * 1000) as integer),
                   coalesce(r.maintenance, 0)
            from results r join series s on s.instance = r.instance and s."check" = r."check"
            left join texts k on k.value = r.kind left join texts p on p.value = r.path
            left join texts v on v.value = r.version"""
    )
    db.execute("drop table results")
    db.execute(RESULTS_VIEW)


@history(transactional=False)
def m005_reclaim_space(db: Database) -> None:
    """Give the old table's pages back to the file system once (m004 freed about two thirds)."""
    try:
        db.execute("vacuum")
    except sqlite3.Error as exc:  # e.g. no room for the copy: the free pages are reused anyway
        log.warning("could not compact the database after converting its results: %s", exc)


def migrate(db: Database, *sets: Migrations) -> None:
    """Apply the history migrations and any other sets, each step in its own transaction."""
    for migrations in (history, *sets):
        migrations.apply(db)
