"""History: 400 days of 60 s results for 100 checks written through the real store code
(`Store.record` + `flush`, `started_at` in the past, faster than real time), pruned every simulated
hour by the real `prune` as the monitor does; then the database size, the time of a prune and of a
write batch (the rollups are summed and upserted in each batch), and the status page server time
on that database (bench/page.py).

Cadence: the newest `full_days` (16: the 14 days of raw results kept, and two more so that the last
day's prunes delete full hours as a steady-state monitor does) get a result every 60 s. Older days,
whose raw results the monitor would already have pruned, get one result per check per hour: the
same hourly and daily rollup rows (the same keys and sizes; only their counts are smaller), 60 times
faster to write. `--full-history` writes every day at 60 s instead (about 20 minutes).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from bench import page
from bench.common import BenchError, Procs, percentile
from monitor.models import Kind, Result, Status, Step
from monitor.store import Store

DAY = 86400
RAW_RETENTION = 14 * DAY
ROLLUP_RETENTION = 400 * DAY
SIZE_GOAL_MB = 100.0


def _result(name: str, at: float, rng: random.Random, down: bool) -> Result:
    latency = round(rng.uniform(2.0, 40.0), 2)
    if down:
        return Result(
            name,
            "live",
            Status.DOWN,
            Kind.TIMEOUT,
            "no complete answer within 10s",
            latency_ms=10000.0,
            path="/up",
            steps=[Step("live", "GET", "/up", None, 10000.0, "no answer from GET /up in time")],
            started_at=at,
            version="8.0.1",
        )
    return Result(
        name,
        "live",
        Status.UP,
        None,
        "",
        latency_ms=latency,
        http_status=200,
        path="/up",
        steps=[Step("live", "GET", "/up", 200, latency, "ok")],
        started_at=at,
        version="8.0.1",
    )


# the default checks' up results as each records them: path, and the figures a TOTP run adds
SHAPES = {
    "live": {"path": "/up"},
    "ready": {"path": "/api/v1/twofaccounts/count"},
    "totp": {"path": "/api/v1/twofaccounts/otp", "skew_s": 0.4, "token_days": 180.25},
}


def _shaped(result: Result, check: str, rng: random.Random) -> Result:
    """`_result` as the `check` would record it (`mix`: live, ready and totp in turn)."""
    result.check = check
    if result.status == Status.UP:
        shape = SHAPES[check]
        result.path = shape["path"]
        result.steps = []
        if "skew_s" in shape:
            result.skew_s = round(rng.uniform(-1.5, 1.5), 1)
            result.token_days = round(float(shape["token_days"]) - rng.random(), 2)
    return result


def write_history(
    db: Path, names: list[str], days: int, full_days: int, now: float, mix: bool = False
) -> dict[str, Any]:
    """Write the history hour by hour: record every result, flush, prune as the monitor would."""
    rng = random.Random(6)
    store = Store(db)
    start = (now - days * DAY) // 3600 * 3600
    hours = int((now - start) // 3600)
    full_from = now - full_days * DAY
    flush_s: list[float] = []
    prune_s: list[float] = []
    steady_prune_s: list[float] = []
    written = 0
    began = time.perf_counter()
    try:
        for h in range(hours):
            hour = start + h * 3600
            step = 60 if hour >= full_from else 3600
            # one ten-minute outage per check per week, at a different hour for each check
            for i, name in enumerate(names):
                outage = (h + i * 7) % (7 * 24) == 0
                for t in range(0, 3600, step):
                    result = _result(name, hour + t + i * 0.3, rng, outage and t < 600)
                    if mix:
                        result = _shaped(result, ("live", "ready", "totp")[i % 3], rng)
                    store.record(result)
                    written += 1
            t0 = time.perf_counter()
            if not store.flush():
                raise BenchError(f"flush failed: {store.writer.last_error}")
            t1 = time.perf_counter()
            store.prune(raw_retention=RAW_RETENTION, rollup_retention=ROLLUP_RETENTION, now=hour + 3600)
            t2 = time.perf_counter()
            if step == 60:
                flush_s.append(t1 - t0)
            prune_s.append(t2 - t1)
            if hour >= now - DAY:
                steady_prune_s.append(t2 - t1)
        elapsed = time.perf_counter() - began
        tables = {
            t: store.db.conn.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("results", "rollups_hourly", "rollups_daily", "incidents", "check_state")
        }
        pages = dict(store.db.conn.execute("select name, sum(pgsize) from dbstat group by name").fetchall())
    finally:
        store.close()
    size = sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())
    by_table: dict[str, float] = {}
    for name, nbytes in pages.items():
        table = _table_of(name)
        by_table[table] = by_table.get(table, 0.0) + nbytes / 1e6
    return {
        "results_written": written,
        "write_seconds": round(elapsed, 1),
        "results_per_s": round(written / elapsed),
        "rows": tables,
        "db_mb": round(size / 1e6, 1),
        "mb_by_table": {k: round(v, 1) for k, v in sorted(by_table.items(), key=lambda kv: -kv[1])},
        "bytes_per_raw_result": round(by_table.get("results", 0) * 1e6 / max(tables["results"], 1)),
        "flush_ms_per_hour_batch_p50": round(percentile(flush_s, 50) * 1000, 1),
        "results_per_hour_batch": len(names) * 60,
        "prune_ms_p50": round(percentile(steady_prune_s or prune_s, 50) * 1000, 1),
        "prune_ms_max": round(max(steady_prune_s or prune_s) * 1000, 1),
        "meets_goal": size / 1e6 < SIZE_GOAL_MB,
    }


def _table_of(btree: str) -> str:
    """dbstat names indexes by their own name; fold them into their table."""
    for table in ("results", "rollups_hourly", "rollups_daily", "incidents", "check_state"):
        if table in btree:
            return table
    return "other"


SHORT_SUCCESS_RETENTION = 2 * DAY


def _size_with_success_retention(db: Path, keep: float) -> float:
    """The same history pruned as with `storage.success_retention` (failures keep 14 days), compacted."""
    store = Store(db)
    try:
        store.prune(raw_retention=RAW_RETENTION, rollup_retention=ROLLUP_RETENTION, success_retention=keep)
        store.db.conn.execute("vacuum")
    finally:
        store.close()
    return round(sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists()) / 1e6, 1)


def run(small: bool = False, full_history: bool = False, mix: bool = False) -> dict[str, Any]:
    """`mix`: the checks are live, ready and totp in turn (the defaults of 33 instances and a
    third), not 100 live checks."""
    checks, days, full_days, requests = (10, 20, 3, 10) if small else (100, 400, 16, 40)
    if full_history:
        full_days = days
    names = [f"h{n:03d}" for n in range(checks)]
    with Procs("history") as procs:
        db = procs.dir / "history.db"
        history = write_history(db, names, days, full_days, time.time(), mix)
        _, sim_url = procs.simulator()
        pages = page.measure(procs, db, names, sim_url, requests)
        shorter = _size_with_success_retention(db, SHORT_SUCCESS_RETENTION)
    return {
        "checks": checks,
        "days": days,
        "full_cadence_days": full_days,
        "checks_of": "live, ready, totp in turn" if mix else "live",
        **history,
        "page": pages,
        "db_mb_with_success_retention_2d": shorter,
        "meets_goal_with_success_retention_2d": shorter < SIZE_GOAL_MB,
        "checks_made": history["results_written"] + 3 * requests,
    }
