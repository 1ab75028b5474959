"""Scale: N checks at a 60 s interval (N instances, live check on `/up`) against simulators on
loopback, measured over one full interval after every check has started: scheduling lag p50/p99,
CPU share, peak RSS, SQLite write time per batch.

The monitor is `2fauth-monitor run` with the stats hook of bench/monitor_proc.py (SIGUSR1 writes
its lag samples and store counters). Goals (issue 12): p99 start lag < 1 s, peak RSS < 200 MB,
start-up (spawn until its /live answers) < 10 s.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    Procs,
    count_rows,
    cpu_seconds,
    live_instances,
    percentile,
    proc_status_kb,
    wait_until,
)

LAG_GOAL_S = 1.0
RSS_GOAL_MB = 200
STARTUP_GOAL_S = 10.0


def _snapshot(proc: Any, stats_file: Path, count: int) -> dict[str, Any]:
    proc.popen.send_signal(signal.SIGUSR1)

    def lines() -> list[str]:
        text = stats_file.read_text() if stats_file.exists() else ""
        found = text.splitlines()
        return found if len(found) >= count else []

    return json.loads(wait_until(lines, 30, "the monitor's stats snapshot")[count - 1])


def measure(procs: Procs, checks: int, interval: float, window: float, sims: list[str]) -> dict[str, Any]:
    names = [f"c{n:05d}" for n in range(checks)]
    db = procs.dir / f"scale-{checks}.db"
    stats_file = procs.dir / f"scale-{checks}.jsonl"
    config = {
        "storage": {"path": str(db)},
        "instances": live_instances(names, sims, interval),
    }
    started = time.monotonic()
    proc, _ = procs.monitor(config, name=f"monitor-{checks}", stats_file=stats_file)
    startup_s = time.monotonic() - started
    rss_started_mb = proc_status_kb(proc.pid, "VmRSS") / 1024
    spread = min(interval, 2 + checks / 200)  # the scheduler's first-run spread (Monitor.start)
    time.sleep(spread + min(5.0, interval / 4))  # every check has run once
    proc.check_alive()
    first = _snapshot(proc, stats_file, 1)
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(window)
    proc.check_alive()
    cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
    last = _snapshot(proc, stats_file, 2)
    peak_mb = proc_status_kb(proc.pid, "VmHWM") / 1024
    proc.stop()
    runs = last["runs"] - first["runs"]
    writes = last["writes_total"] - first["writes_total"]
    lags, start_lags = last["lags"], last["start_lags"]
    if runs < checks * window / interval * 0.9 or not lags:
        raise BenchError(f"{checks} checks: only {runs} runs in {window:.0f}s (see {proc.log_path})")
    rows = count_rows(db)
    not_up = count_rows_where(db, "status != 'up'")
    not_up_kinds = kinds_not_up(db)
    cpu = cpu1 - cpu0
    figures = {
        "checks": checks,
        "interval_s": interval,
        "window_s": round(t1 - t0, 1),
        "runs": runs,
        "runs_per_s": round(runs / (t1 - t0), 1),
        "not_up": not_up,
        "not_up_kinds": not_up_kinds,
        "rows": rows,
        "startup_s": round(startup_s, 1),
        "lag_p50_s": round(percentile(lags, 50), 4),
        "lag_p99_s": round(percentile(lags, 99), 4),
        "lag_max_s": round(max(lags), 4),
        "start_lag_p50_s": round(percentile(start_lags, 50), 4),
        "start_lag_p99_s": round(percentile(start_lags, 99), 4),
        "cpu_share_of_one_core": round(cpu / (t1 - t0), 3),
        "cpu_ms_per_check": round(cpu / runs * 1000, 3),
        "rss_after_start_mb": round(rss_started_mb, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "write_ms_per_batch": round(
            (last["write_seconds_total"] - first["write_seconds_total"]) / max(writes, 1) * 1000, 3
        ),
        "results_per_batch": round(runs / max(writes, 1), 1),
    }
    figures["meets_goals"] = (
        figures["start_lag_p99_s"] < LAG_GOAL_S
        and figures["peak_rss_mb"] < RSS_GOAL_MB
        and figures["startup_s"] < STARTUP_GOAL_S
    )
    return figures


def count_rows_where(db: Path, where: str) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(f"select count(*) from results where {where}").fetchone()[0])
    finally:
        conn.close()


def kinds_not_up(db: Path) -> dict[str, int]:
    """How many results were not up, by kind (slow, timeout, connect...)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("select kind, count(*) from results where status != 'up' group by kind")
        return {str(kind): int(n) for kind, n in rows}
    finally:
        conn.close()


def run(small: bool = False, sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Each size in turn (default 10,000; small: 200 checks at 2 s), then the largest meeting the goals."""
    if small:
        sizes, interval, window, n_sims = (200,), 2.0, 4.0, 1
    else:
        sizes, interval, window, n_sims = (sizes or (10_000,)), 60.0, 60.0, 2
    results = []
    with Procs("scale") as procs:
        sims = [procs.simulator(f"simulator-{i}") for i in range(n_sims)]
        for size in sizes:
            results.append(measure(procs, size, interval, window, [url for _, url in sims]))
        for sim, _ in sims:
            sim.check_alive()
    meeting = [r["checks"] for r in results if r["meets_goals"]]
    return {
        "runs": results,
        "largest_meeting_goals": max(meeting, default=0),
        "checks_made": sum(r["runs"] for r in results),
    }
